"""The Protocols through which the engine reaches the store, the clock and the outside world."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from workflows.model import (
    Approval,
    AuditEvent,
    AuditReport,
    EventDraft,
    Intent,
    IntentId,
    IntentStatus,
    Lease,
    LockHolder,
    Move,
    NewIntent,
    StepDone,
    StepRecord,
    StepStatus,
)
from workflows.outside import AdapterFactory as AdapterFactory
from workflows.outside import DatabasePort as DatabasePort
from workflows.outside import DbInstance as DbInstance
from workflows.outside import RdsPort as RdsPort

RUNNABLE = "opsbot_runnable"  # an intent became approved: executors look now rather than at their next poll
CHANGED = "opsbot_changed"  # an intent moved (payload: its id): the Slack projection looks at it now


class Clock(Protocol):
    def now(self) -> datetime: ...


class IdSource(Protocol):
    def new_id(self) -> str: ...


class GroupDirectory(Protocol):
    """Who is in a Slack user group that a role names (`@handle` or an `S…` id)."""

    def members(self, group: str) -> frozenset[str]:
        """Its members' user ids, known recently enough to decide on; raises `MembershipUnknown` otherwise."""
        ...


class FaultSeam(Protocol):
    """The one place crash points are named; production uses a no-op."""

    def reached(self, point: str) -> None: ...


class StoreTx(Protocol):
    """Operations inside one transaction owned by the caller."""

    def insert_intent(self, new: NewIntent) -> Intent | None: ...
    def get_intent(self, intent_id: IntentId) -> Intent | None: ...
    def get_intent_by_key(self, key: str) -> Intent | None: ...
    def list_intents(self, statuses: Iterable[IntentStatus] | None = None, limit: int = 100) -> list[Intent]: ...
    def move(self, intent: Intent, move: Move, now: datetime) -> Intent:
        """Change status as the state table allows (IllegalTransition otherwise); compare-and-set on version."""
        ...

    def take_over(self, intent: Intent, move: Move, now: datetime) -> Intent:
        """`move`, only if the intent's lease is unchanged and expired at `now`."""
        ...

    def retire_idempotency_key(self, intent: Intent) -> None:
        """Free a finished intent's derived key for a new request (its own key gets the intent id appended)."""
        ...

    def reschedule(self, intent: Intent, next_check_at: datetime | None) -> None:
        """Move the next check only (no version bump); raises ConcurrentModification if the intent moved."""
        ...

    def runnable(self, now: datetime, limit: int) -> list[Intent]:
        """Approved, due intents, locked against other claimers for this transaction."""
        ...

    def start_run(self, intent: Intent, lease: Lease, now: datetime) -> Intent: ...
    def clear_reauthorize(self, lease: Lease) -> None: ...
    def acquire_locks(self, intent_id: IntentId, resources: Iterable[str], now: datetime) -> LockHolder | None:
        """All of `resources` or none; returns the holder in the way when they cannot all be had."""
        ...

    def wait_for(self, intent_id: IntentId, resources: Iterable[str], now: datetime) -> None: ...
    def release_locks(self, intent_id: IntentId) -> list[IntentId]:
        """Free what the intent holds or waits for; returns the intents that waited for what it held."""
        ...

    def lock_holders(self, resources: Iterable[str]) -> list[LockHolder]: ...
    def lock_waiters(self, resources: Iterable[str]) -> list[LockHolder]: ...
    def agree(self, intent: Intent, action: str, actor: str, reason: str, now: datetime) -> list[str]: ...
    def notify(self, channel: str, payload: str = "") -> None:
        """Raise a signal that reaches its subscribers (in this process and others) once this transaction commits."""
        ...

    def due_for_reconcile(self, now: datetime, limit: int) -> list[Intent]: ...
    def next_check_at(self) -> datetime | None: ...
    def renew_lease(self, lease: Lease, until: datetime) -> None:
        """Extend (and so fence on) a lease; raises LeaseLost when it is no longer ours."""
        ...

    def steps(self, intent_id: IntentId) -> list[StepRecord]: ...
    def insert_step(self, record: StepRecord) -> None: ...
    def update_step(
        self,
        intent_id: IntentId,
        seq: int,
        *,
        status: StepStatus | None = None,
        external_ids: dict[str, Any] | None = None,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        attempts: int | None = None,
        finished_at: datetime | None = None,
    ) -> None: ...
    def add_approval(self, approval: Approval) -> None: ...
    def approvals(self, intent_id: IntentId) -> list[Approval]: ...
    def append_event(self, draft: EventDraft, now: datetime) -> None:
        """Audit `draft`; it joins the hash chain when the transaction commits."""
        ...

    def events(self, intent_id: IntentId | None = None) -> list[AuditEvent]: ...
    def audit_head(self) -> str: ...
    def count_by_status(self, ended_since: datetime) -> dict[IntentStatus, int]:
        """Open intents by status, and those that reached a final status since `ended_since`."""
        ...

    def undecided_requests(self, waiting_since: Mapping[tuple[str, str], datetime], limit: int) -> list[Intent]:
        """Requests awaiting approval with nothing run yet, of each (workflow, environment) in `waiting_since`,
        that have waited since before its time there; longest waiting first."""
        ...

    def needing_attention(
        self, approvals_before: datetime, converging_before: Mapping[str, datetime], limit: int
    ) -> tuple[list[Intent], int]:
        """What needs a human, longest waiting first (at most `limit`), and how many: statuses that need a human,
        intents waiting for a resource, approvals requested before `approvals_before`, and converging intents
        started before their workflow's entry in `converging_before` (any, for a workflow not named)."""
        ...


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[StoreTx]: ...
    def verify_audit(self, anchor: str | None = None) -> AuditReport: ...

    # The executor's hot path: each call is one fenced statement that commits on its own.
    def pinned(self) -> AbstractContextManager[None]: ...
    def checkpoint_started(self, lease: Lease, record: StepRecord, done: StepDone | None = None) -> None: ...
    def checkpoint_outcome(
        self,
        lease: Lease,
        seq: int,
        *,
        status: StepStatus | None = None,
        external_ids: dict[str, Any] | None = None,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        attempts: int | None = None,
        finished_at: datetime | None = None,
    ) -> None: ...
    def renew_lease(self, lease: Lease, until: datetime) -> None: ...
