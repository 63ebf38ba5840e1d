"""Injected time and ids, and the no-op fault seam production runs with (crash tests bring their own)."""

from __future__ import annotations

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
