"""Frozen domain objects of the control plane: intents, steps, approvals, audit events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NewType

from workflows.states import IntentStatus as IntentStatus

IntentId = NewType("IntentId", str)
JSON = dict[str, Any]


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
    ACTION_AGREED = "action_agreed"
    APPROVER_REVOKED = "approver_revoked"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    DEFINITION_CHANGED = "definition_changed"
    CLAIMED = "claimed"
    COMPENSATED = "compensated"
    COMPENSATION_REQUESTED = "compensation_requested"
    CONVERGENCE_WINDOW_EXCEEDED = "convergence_window_exceeded"
    CONVERGING = "converging"
    DENIED = "denied"
    DENY_REFUSED = "deny_refused"
    DUPLICATE_REQUEST = "duplicate_request"
    EXECUTOR_LOST = "executor_lost"
    EXPIRED = "expired"
    INTERNAL_ERROR = "internal_error"
    LOCK_RELEASED = "lock_released"
    LOCKS_ACQUIRED = "locks_acquired"
    MARKED_DONE = "marked_done"
    OBSERVED = "observed"
    REPLANNED = "replanned"
    REQUEST_REFUSED = "request_refused"
    REQUESTED = "requested"
    REQUESTED_AGAIN = "requested_again"
    REQUEUED = "requeued"
    RESUMED = "resumed"
    RETRIES_EXHAUSTED = "retries_exhausted"
    RETRY = "retry"
    RUN_NOW = "run_now"
    SCHEDULED = "scheduled"
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
    WAITING_FOR_LOCK = "waiting_for_lock"
    WINDOW_CLOSING = "window_closing"
    WINDOW_OPENED = "window_opened"


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
    reauthorize: bool = False
    traceparent: str | None = None
    not_before: datetime | None = None  # the start the request asked for (`at=`); fixed once requested
    windows_waived: bool = False  # an approver chose Run now: it no longer waits for a maintenance window

    @property
    def purpose(self) -> str:
        return str(self.plan.get("purpose") or "forward")


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
    traceparent: str | None = None  # the request's trace context: later spans join the intent's trace
    not_before: datetime | None = None  # `at=`: it starts no earlier than this once approved


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
class StepDone:
    """A step's success, held by the executor until its next write commits it (the next step's "started", or
    the verdict): a crash before that commit leaves the step started, which its probe resolves."""

    seq: int
    output: JSON
    external_ids: JSON
    finished_at: datetime


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


@dataclass(frozen=True, slots=True)
class NewPlan:
    """A plan replacing the intent's current one (re-planned, or a compensation plan)."""

    plan: JSON
    hash: str


@dataclass(frozen=True, slots=True)
class Move:
    """One status change, checked against the state table by the store; the store also clears the lease
    (unless the intent starts running), records `reason` as the last error where a human is needed, and
    bumps the version."""

    to: IntentStatus
    reason: str
    next_check_at: datetime | None = None
    mode: Mode | None = None
    new_plan: NewPlan | None = None
    count_attempt: bool = False  # an executor run ended
    fresh_budget: bool = False  # an operator sent it back: new timeout budget and requeue count
    reauthorize: bool | None = None
    windows_waived: bool | None = None  # True: Run now; False: a new plan waits for its windows again


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds (or waits for) a resource, as an operator needs to read it."""

    resource: str
    intent_id: IntentId
    workflow: str
    requester: str
    status: IntentStatus
