"""Injected time, ids and the fault-injection seam."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import UTC, datetime, timedelta


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class UuidIds:
    def new_id(self) -> str:
        return uuid.uuid4().hex[:16]


class NoFaults:
    def reached(self, point: str) -> None:
        return None


class KillAtPoint:
    """Crash the process with SIGKILL when the named point is reached: the crash-matrix seam."""

    def __init__(self, point: str) -> None:
        self.point = point

    def reached(self, point: str) -> None:
        if point == self.point:
            os.kill(os.getpid(), signal.SIGKILL)


def fault_point(step: str, phase: str) -> str:
    """The name of a crash point: `<step>:before_effect`, `<step>:after_effect`, `<step>:after_checkpoint`."""
    return f"{step}:{phase}"


PHASES = ("before_effect", "after_effect", "after_checkpoint")
