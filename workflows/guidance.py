"""The four answers every stuck or terminal intent carries, computed from stored state only."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from workflows.model import Intent, IntentStatus, Mode, StepRecord, StepStatus
from workflows.registry import Rollback, WorkflowSpec


class Action(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    RETRY = "retry"
    RESUME = "resume"
    CANCEL = "cancel"
    MARK_DONE = "mark-done"
    COMPENSATE = "compensate"


S = IntentStatus
_BY_STATUS: dict[IntentStatus, tuple[Action, ...]] = {
    S.PENDING_APPROVAL: (Action.APPROVE, Action.DENY, Action.CANCEL),
    S.NEEDS_REAPPROVAL: (Action.APPROVE, Action.RETRY, Action.CANCEL),
    S.APPROVED: (Action.CANCEL,),
    S.RUNNING: (),
    S.CONVERGING: (Action.RESUME, Action.CANCEL, Action.MARK_DONE),
    S.RETRYABLE: (Action.RETRY, Action.CANCEL, Action.MARK_DONE),
    S.BLOCKED: (Action.RESUME, Action.RETRY, Action.CANCEL, Action.MARK_DONE),
    S.UNSAFE: (Action.CANCEL, Action.MARK_DONE),
    S.UNKNOWN: (Action.RESUME, Action.CANCEL, Action.MARK_DONE),
    S.FAILED: (Action.RETRY, Action.MARK_DONE),
    S.SUCCEEDED: (),
    S.DENIED: (),
    S.CANCELLED: (),
    S.MARKED_DONE: (),
    S.COMPENSATED: (),
}
_COMPENSABLE_FROM = frozenset({S.SUCCEEDED, S.FAILED, S.BLOCKED, S.CANCELLED, S.RETRYABLE})

_EXPLAIN = {
    Action.APPROVE: "another approver reviews the plan (hash {hash}) and approves it",
    Action.DENY: "an approver rejects the plan",
    Action.RETRY: "run the failed step again (or, awaiting re-approval, compute a fresh plan)",
    Action.RESUME: "observe the in-flight step again now and continue from the checkpoints",
    Action.CANCEL: "stop here; nothing already changed is undone",
    Action.MARK_DONE: "an approver records that the operation was completed by hand (reason required)",
    Action.COMPENSATE: "undo the completed steps that declare a compensation ({steps})",
}


@dataclass(frozen=True, slots=True)
class Guidance:
    requested: str
    changed: tuple[str, ...]
    uncertain: tuple[str, ...]
    actions: tuple[tuple[Action, str], ...]

    @property
    def action_names(self) -> tuple[Action, ...]:
        return tuple(a for a, _ in self.actions)


def compensable_steps(spec: WorkflowSpec, steps: list[StepRecord]) -> list[str]:
    done = {r.name for r in steps if r.status is StepStatus.SUCCEEDED}
    return [s.name for s in spec.steps if s.rollback is Rollback.COMPENSATE and s.name in done]


def available_actions(intent: Intent, spec: WorkflowSpec, steps: list[StepRecord]) -> tuple[Action, ...]:
    actions = list(_BY_STATUS.get(intent.status, ()))
    if intent.mode is Mode.FORWARD and intent.status in _COMPENSABLE_FROM and compensable_steps(spec, steps):
        actions.append(Action.COMPENSATE)
    return tuple(actions)


def guidance(intent: Intent, spec: WorkflowSpec, steps: list[StepRecord]) -> Guidance:
    params = " ".join(f"{k}={v}" for k, v in sorted(intent.params.items()))
    requested = (
        f"{intent.workflow} {params} in {intent.environment}, requested by {intent.requester} "
        f"(plan {intent.plan_hash[:12]})"
    )
    changed = tuple(
        f"{r.name}: done" + (f" ({_ids(r.external_ids)})" if r.external_ids else "")
        for r in steps
        if r.status is StepStatus.SUCCEEDED
    ) or ("nothing has been changed",)
    uncertain = []
    for r in steps:
        if r.status in (StepStatus.STARTED, StepStatus.UNKNOWN):
            uncertain.append(f"{r.name}: outcome not yet observed" + (f" — {r.error}" if r.error else ""))
        elif r.status is StepStatus.PENDING:
            uncertain.append(f"{r.name}: requested, still converging")
        elif r.status is StepStatus.FAILED:
            uncertain.append(f"{r.name}: failed after {r.attempts} attempt(s): {r.error}")
    if intent.status in (S.UNKNOWN, S.UNSAFE, S.BLOCKED) and intent.status_reason:
        uncertain.append(f"{intent.status.value}: {intent.status_reason}")
    if not uncertain:
        uncertain.append("nothing: every recorded step has an observed outcome")
    comp = ", ".join(compensable_steps(spec, steps)) or "none"
    actions = tuple(
        (a, _EXPLAIN[a].format(hash=intent.plan_hash[:12], steps=comp)) for a in available_actions(intent, spec, steps)
    )
    return Guidance(requested, changed, tuple(uncertain), actions)


def _ids(ids: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in ids.items())
