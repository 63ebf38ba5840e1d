"""The one state table: every intent status, where it may go, and what it offers an operator.

Slack, the CLI, the digest, guidance, the reconciler, the executor and the store all read this table; a status
change the table does not allow is refused by the store (`check_transition`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from workflows.errors import IllegalTransition


class IntentStatus(StrEnum):
    """Where an intent stands; every change is a compare-and-set in the store, checked against `STATES`."""

    PENDING_APPROVAL = "pending_approval"
    NEEDS_REAPPROVAL = "needs_reapproval"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    WAITING = "waiting"
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
    EXPIRED = "expired"
    MARKED_DONE = "marked_done"
    COMPENSATED = "compensated"

    @property
    def state(self) -> State:
        return STATES[self]

    @property
    def terminal(self) -> bool:
        return STATES[self].terminal

    @property
    def needs_human(self) -> bool:
        return STATES[self].needs_human

    @property
    def tells(self) -> bool:
        return STATES[self].tells

    @property
    def awaiting_approval(self) -> bool:
        return self in AWAITING_APPROVAL


class Action(StrEnum):
    """What an operator can ask of opsbot; who may take each one is the policy's (`workflows.authorization`)."""

    REQUEST = "request"
    APPROVE = "approve"
    DENY = "deny"
    RETRY = "retry"
    RESUME = "resume"
    CANCEL = "cancel"
    MARK_DONE = "mark-done"
    COMPENSATE = "compensate"
    RUN_NOW = "run-now"
    VIEW = "view"


@dataclass(frozen=True, slots=True)
class State:
    """One row of the table."""

    status: IntentStatus
    meaning: str
    next: frozenset[IntentStatus]
    actions: tuple[Action, ...] = ()
    terminal: bool = False
    needs_human: bool = False
    # Entering it is told to people: one post in the intent's thread, naming its requester and approvers. Every
    # status that needs a human, every end, and waiting behind another intent's lock; progress is only edited in.
    waits_on_others: bool = False

    @property
    def tells(self) -> bool:
        return self.needs_human or self.terminal or self.waits_on_others


S, A = IntentStatus, Action
_OPERATOR_EXITS = frozenset({S.CANCELLED, S.MARKED_DONE})
_REENTRY = frozenset({S.APPROVED, S.NEEDS_REAPPROVAL, S.PENDING_APPROVAL})  # retry/resume, or a compensation plan

_ROWS = (
    State(
        S.PENDING_APPROVAL,
        "planned; waiting for enough approvers to approve this exact plan",
        frozenset({S.APPROVED, S.SCHEDULED, S.DENIED, S.CANCELLED, S.EXPIRED}),
        (A.APPROVE, A.DENY, A.CANCEL),
    ),
    State(
        S.NEEDS_REAPPROVAL,
        "the approval expired, the world or the workflow changed, or an approver lost the role: approve again",
        frozenset({S.APPROVED, S.SCHEDULED, S.PENDING_APPROVAL, S.DENIED, S.CANCELLED, S.MARKED_DONE, S.EXPIRED}),
        (A.APPROVE, A.DENY, A.RETRY, A.CANCEL, A.MARK_DONE),
        needs_human=True,
    ),
    State(
        S.APPROVED,
        "approved; an executor picks it up within a second",
        frozenset({S.RUNNING, S.WAITING, S.SCHEDULED, S.CANCELLED}),  # scheduled: outside its window
        (A.CANCEL,),
    ),
    State(
        S.SCHEDULED,
        "approved; waits for its start time or its maintenance window to open, then starts by itself "
        "(or, when no window is long enough for its next step, for an approver to run it now)",
        frozenset({S.APPROVED, S.SCHEDULED, S.NEEDS_REAPPROVAL, S.CANCELLED}),
        (A.RUN_NOW, A.CANCEL),
    ),
    State(
        S.WAITING,
        "approved, waiting for another intent to release a resource it needs; starts by itself",
        frozenset({S.APPROVED, S.CANCELLED}),
        (A.CANCEL,),
        waits_on_others=True,
    ),
    State(
        S.RUNNING,
        "an executor holds its lease and is running its steps",
        frozenset(
            {
                S.SUCCEEDED,
                S.COMPENSATED,
                S.FAILED,
                S.UNSAFE,
                S.UNKNOWN,
                S.BLOCKED,
                S.RETRYABLE,
                S.CONVERGING,
                S.NEEDS_REAPPROVAL,
                S.SCHEDULED,  # the next step would run past its maintenance window's end
                S.APPROVED,  # taken over after its executor died
            }
        ),
    ),
    State(
        S.CONVERGING,
        "the change was requested; the reconciler watches it converge within its window",
        frozenset({S.APPROVED, S.CONVERGING, S.BLOCKED, S.UNKNOWN, S.UNSAFE, S.NEEDS_REAPPROVAL} | _OPERATOR_EXITS),
        (A.RESUME, A.CANCEL, A.MARK_DONE),
    ),
    State(
        S.RETRYABLE,
        "a step failed transiently; the reconciler requeues it with backoff",
        frozenset({S.BLOCKED, S.UNSAFE} | _REENTRY | _OPERATOR_EXITS),
        (A.RETRY, A.CANCEL, A.MARK_DONE, A.COMPENSATE),
    ),
    State(
        S.BLOCKED,
        "stopped: retries exhausted, out of time, or an internal error; a human decides",
        frozenset(_REENTRY | _OPERATOR_EXITS),
        (A.RESUME, A.RETRY, A.CANCEL, A.MARK_DONE, A.COMPENSATE),
        needs_human=True,
    ),
    State(
        S.UNSAFE,
        "stopped because continuing could harm something that is not ours, or the workflow changed under it",
        frozenset({S.PENDING_APPROVAL} | _OPERATOR_EXITS),
        (A.CANCEL, A.MARK_DONE, A.COMPENSATE),
        needs_human=True,
    ),
    State(
        S.UNKNOWN,
        "whether a step took effect could not be observed; the reconciler keeps looking, a human may resolve it",
        frozenset({S.APPROVED, S.UNKNOWN, S.UNSAFE, S.NEEDS_REAPPROVAL} | _OPERATOR_EXITS),
        (A.RESUME, A.CANCEL, A.MARK_DONE),
        needs_human=True,
    ),
    State(
        S.FAILED,
        "a step failed for good; what it changed stays as it is until a human retries, compensates or closes it",
        frozenset(_REENTRY | _OPERATOR_EXITS),
        (A.RETRY, A.CANCEL, A.MARK_DONE, A.COMPENSATE),
        needs_human=True,
    ),
    State(
        S.SUCCEEDED,
        "every step done and every postcondition verified",
        frozenset({S.PENDING_APPROVAL}),
        (A.COMPENSATE,),
        terminal=True,
    ),
    State(
        S.DENIED,
        "an approver rejected the plan",
        frozenset({S.PENDING_APPROVAL}),  # a denied compensation plan may be proposed again
        (A.COMPENSATE,),
        terminal=True,
    ),
    State(
        S.CANCELLED,
        "stopped by an operator; nothing already changed was undone",
        frozenset({S.PENDING_APPROVAL}),
        (A.COMPENSATE,),
        terminal=True,
    ),
    State(
        S.EXPIRED,
        "nobody approved or denied it in the time its policy allows, before anything ran; its requester can "
        "request it again",
        frozenset(),
        (A.REQUEST,),
        terminal=True,
    ),
    State(S.MARKED_DONE, "closed by approvers who completed or verified it by hand", frozenset(), terminal=True),
    State(S.COMPENSATED, "the completed steps were undone by their compensations", frozenset(), terminal=True),
)

STATES: Mapping[IntentStatus, State] = MappingProxyType({row.status: row for row in _ROWS})
AWAITING_APPROVAL = frozenset({S.PENDING_APPROVAL, S.NEEDS_REAPPROVAL})
# Executing or handed to a human after executing: the resource locks an intent took stay held.
HOLDS_LOCKS = frozenset(s for s in IntentStatus if not STATES[s].terminal and s not in (S.PENDING_APPROVAL, S.WAITING))


def allowed(current: IntentStatus, target: IntentStatus) -> bool:
    return target in STATES[current].next


def check_transition(current: IntentStatus, target: IntentStatus) -> None:
    """Raise IllegalTransition unless the table allows `current -> target`."""
    if not allowed(current, target):
        raise IllegalTransition(f"an intent cannot go from {current.value} to {target.value}")
