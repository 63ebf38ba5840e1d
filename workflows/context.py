"""What a workflow's preflight and steps are given: its own typed params, the environment, adapters, outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from workflows.config import Environment
from workflows.model import Intent
from workflows.ports import AdapterFactory

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class PreflightContext(Generic[P]):
    params: P
    environment: str
    env: Environment
    adapters: AdapterFactory
    now: datetime


@dataclass(frozen=True, slots=True)
class StepContext(Generic[P]):
    """Handed to each step; `checkpoint` records external ids durably the moment they are known."""

    intent: Intent
    params: P
    env: Environment
    adapters: AdapterFactory
    token: str
    outputs: dict[str, dict[str, Any]]
    now: Callable[[], datetime]
    _checkpoint: Callable[[dict[str, Any]], None] = field(repr=False)
    item: str | None = None  # for a step declared `each=<key>`: the item this run of it is for

    def checkpoint(self, **external_ids: Any) -> None:
        self._checkpoint(external_ids)
