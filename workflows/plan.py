"""Plans: what preflight says will happen, and the hash an approval is bound to."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Mutation(BaseModel):
    """One expected change: what is done (`create`, `modify`, `delete` ...), to which target, and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    target: str
    detail: str = ""


class PlanPurpose(StrEnum):
    FORWARD = "forward"
    COMPENSATION = "compensation"  # undo what completed: approved like any other plan


class Plan(BaseModel):
    """The reviewed shape of one change; its hash binds approvals to exactly this content."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workflow: str
    environment: str
    params: dict[str, Any]
    targets: tuple[str, ...]
    mutations: tuple[Mutation, ...]
    locks: tuple[str, ...] = ()
    each: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="items of the repeated steps")
    conflicts: tuple[str, ...] = Field(default=(), description="other intents holding or waiting for these locks")
    blast_radius: str
    risk: str
    rollback: dict[str, str] = Field(description="step name -> compensate | none | irreversible")
    rollback_limits: str = ""
    verification: tuple[str, ...]
    fingerprint: str = Field(description="SHA-256 of the observed state this plan was computed from")
    observed: dict[str, Any] = Field(default_factory=dict)
    purpose: PlanPurpose = PlanPurpose.FORWARD
    requested_by: str = ""
    definition: str = Field(default="", description="fingerprint of the workflow definition the plan was made for")
    steps: tuple[str, ...] = Field(default=(), description="the definition's steps, to say what changed")
    ticket: str | None = Field(default=None, description="the change ticket the request carries")
    ticket_url: str | None = None

    def canonical(self) -> str:
        # A plan without a ticket hashes as plans did before tickets existed.
        unset = {name for name in ("ticket", "ticket_url") if getattr(self, name) is None}
        return canonical_json(self.model_dump(mode="json", exclude=unset))

    @property
    def hash(self) -> str:
        return sha256_hex(self.canonical())


def fingerprint(observed: dict[str, Any]) -> str:
    """A stable digest of observed state, so a changed world gives a different plan."""
    return sha256_hex(canonical_json(observed))
