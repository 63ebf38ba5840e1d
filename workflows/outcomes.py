"""What a step or a probe can report back to the executor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Done:
    """The step's effect is in place; `external_ids` name what it created or touched."""

    output: dict[str, Any] = field(default_factory=dict)
    external_ids: dict[str, Any] = field(default_factory=dict)
    how: str = "executed"


@dataclass(frozen=True, slots=True)
class Pending:
    """The effect was requested and is converging; look again after `retry_after` seconds."""

    reason: str
    retry_after: float = 5.0
    observed: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Absent:
    """A probe found no trace of the effect: running the step is safe."""

    reason: str


@dataclass(frozen=True, slots=True)
class Unclear:
    """A probe could not tell whether the effect happened."""

    reason: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """One postcondition's verdict, with what was observed."""

    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


StepOutcome = Done | Pending
Observation = Done | Pending | Absent | Unclear
