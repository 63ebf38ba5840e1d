"""Frozen domain objects of the control plane: intents, steps, approvals, audit events."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, NewType

IntentId = NewType("IntentId", str)
JSON = dict[str, Any]


class IntentStatus(StrEnum):
    """Where an intent stands; every change is a compare-and-set in the store."""

    PENDING_APPROVAL = "pending_approval"
    NEEDS_REAPPROVAL = "needs_reapproval"
    APPROVED = "approved"
    RUNNING = "running"
    CONVERGING = "converging"
    RETRYABLE = "retryable"
    BLOCKED = "blocked"
    UNSAFE = "unsafe"
    UNKNOWN = "unknown"
    FAILED = "failed"
    SUCCEEDED = "succeeded"
    DENIED = "denied"
    CANCELLED = "cancelled"
    MARKED_DONE = "marked_done"
    COMPENSATED = "compensated"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def needs_attention(self) -> bool:
        return self in _ATTENTION


_TERMINAL = frozenset(
    {
        IntentStatus.SUCCEEDED,
        IntentStatus.FAILED,
        IntentStatus.DENIED,
        IntentStatus.CANCELLED,
        IntentStatus.MARKED_DONE,
        IntentStatus.COMPENSATED,
    }
)
_ATTENTION = frozenset(
    {
        IntentStatus.NEEDS_REAPPROVAL,
        IntentStatus.BLOCKED,
        IntentStatus.UNSAFE,
        IntentStatus.UNKNOWN,
        IntentStatus.FAILED,
    }
)


class Mode(StrEnum):
    """Which way the executor walks the steps."""

    FORWARD = "forward"
    COMPENSATE = "compensate"


class StepStatus(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    PENDING = "pending"


class Decision(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class EventKind(StrEnum):
    """What an audit event records; the Slack thread and the digest read these."""

    ACTION_REFUSED = "action_refused"
    APPROVAL_EXPIRED = "approval_expired"
    APPROVAL_REFUSED = "approval_refused"
    APPROVED = "approved"
    CANCELLED = "cancelled"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    CLAIMED = "claimed"
    COMPENSATED = "compensated"
    COMPENSATION_REQUESTED = "compensation_requested"
    CONVERGENCE_WINDOW_EXCEEDED = "convergence_window_exceeded"
    CONVERGING = "converging"
    DENIED = "denied"
    DENY_REFUSED = "deny_refused"
    DUPLICATE_REQUEST = "duplicate_request"
    EXECUTOR_LOST = "executor_lost"
    INTERNAL_ERROR = "internal_error"
    MARKED_DONE = "marked_done"
    OBSERVED = "observed"
    REPLANNED = "replanned"
    REQUEST_REFUSED = "request_refused"
    REQUESTED = "requested"
    REQUEUED = "requeued"
    RESUMED = "resumed"
    RETRIES_EXHAUSTED = "retries_exhausted"
    RETRY = "retry"
    STALE_PLAN = "stale_plan"
    STEP_FAILED = "step_failed"
    STEP_RERUN = "step_rerun"
    STEP_RESOLVED_BY_OBSERVATION = "step_resolved_by_observation"
    STEP_RETRYABLE = "step_retryable"
    STEP_UNKNOWN = "step_unknown"
    STEP_UNSAFE = "step_unsafe"
    STILL_UNKNOWN = "still_unknown"
    SUCCEEDED = "succeeded"
    TIMEOUT = "timeout"


class Verdict(StrEnum):
    """The reconciler's classification of one operation."""

    SUCCEEDED = "succeeded"
    CONVERGING = "converging"
    RETRYABLE = "retryable"
    BLOCKED = "blocked"
    UNSAFE = "unsafe"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Intent:
    """One requested operation, as the store holds it."""

    id: IntentId
    workflow: str
    environment: str
    params: JSON
    requester: str
    idempotency_key: str
    plan: JSON
    plan_hash: str
    status: IntentStatus
    version: int
    mode: Mode
    attempts: int
    created_at: datetime
    updated_at: datetime
    lease_owner: str | None = None
    lease_token: str | None = None
    lease_expires_at: datetime | None = None
    next_check_at: datetime | None = None
    status_reason: str | None = None
    last_error: str | None = None
    started_at: datetime | None = None

    def evolve(self, **changes: Any) -> Intent:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class NewIntent:
    id: IntentId
    workflow: str
    environment: str
    params: JSON
    requester: str
    idempotency_key: str
    plan: JSON
    plan_hash: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Lease:
    """Proof that this executor owns an intent until `expires_at`; every step write is fenced by it."""

    intent_id: IntentId
    owner: str
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StepRecord:
    intent_id: IntentId
    seq: int
    name: str
    status: StepStatus
    idempotency_token: str
    attempts: int
    started_at: datetime
    external_ids: JSON = field(default_factory=dict)
    output: JSON = field(default_factory=dict)
    error: str | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Approval:
    intent_id: IntentId
    actor: str
    plan_hash: str
    decision: Decision
    created_at: datetime
    expires_at: datetime
    reason: str | None = None

    def valid_for(self, plan_hash: str, now: datetime) -> bool:
        return self.decision is Decision.APPROVE and self.plan_hash == plan_hash and now < self.expires_at


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An audit event before the store chains it."""

    kind: EventKind
    actor: str
    data: JSON = field(default_factory=dict)
    intent_id: IntentId | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    intent_id: IntentId | None
    kind: str
    actor: str
    data: JSON
    created_at: datetime
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    ok: bool
    checked: int
    problems: tuple[str, ...] = ()
    head: str = ""  # "<seq>:<hash>" of the last event: record it elsewhere to detect a truncated tail later
