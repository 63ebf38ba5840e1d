"""The four answers every stuck or terminal intent carries, computed from stored state only."""

from __future__ import annotations

from dataclasses import dataclass

from workflows.authoring import WorkflowDefinition
from workflows.model import Intent, IntentStatus, StepRecord, StepStatus
from workflows.states import STATES, Action
from workflows.steps import COMPENSATION_SEQ_BASE, compensations

_EXPLAIN = {
    Action.APPROVE: "another approver reviews the plan (hash {hash}) and approves it",
    Action.DENY: "an approver rejects the plan",
    Action.RETRY: "run the failed step again; the steps already done are not repeated",
    Action.RESUME: "observe the in-flight step again now and continue from the checkpoints",
    Action.CANCEL: "stop here; nothing already changed is undone",
    Action.MARK_DONE: "approvers other than the requester record that it was completed by hand (reason required)",
    Action.COMPENSATE: "propose undoing the completed steps that declare a compensation ({steps}); approvers review it",
    Action.REQUEST: "its requester requests the same change again: a fresh plan, approved like any other",
    Action.RUN_NOW: "an approver starts it now, outside its maintenance window or before its start time (audited)",
}


# The same actions, said for an intent that waits for (re-)approval: nothing failed, the plan is what is decided.
_AWAITING = {
    Action.RETRY: "compute a fresh plan from the world as it is now, and ask for approval again",
}


@dataclass(frozen=True, slots=True)
class Guidance:
    requested: str
    changed: tuple[str, ...]
    uncertain: tuple[str, ...]
    actions: tuple[tuple[Action, str], ...]
    changed_any: bool = False  # some step is recorded done (`changed` says "nothing …" otherwise)

    @property
    def action_names(self) -> tuple[Action, ...]:
        return tuple(a for a, _ in self.actions)


def compensable_steps(spec: WorkflowDefinition, steps: list[StepRecord]) -> list[str]:
    """Completed forward steps whose compensation exists and has not yet run."""
    records = {r.seq: r for r in steps}
    undone = {r.name for r in steps if r.seq >= COMPENSATION_SEQ_BASE and r.status is StepStatus.SUCCEEDED}
    return [rec.name for rec, comp, _ in compensations(spec, records) if comp.name not in undone]


def available_actions(intent: Intent, spec: WorkflowDefinition, steps: list[StepRecord]) -> tuple[Action, ...]:
    """What the state table offers in the intent's status; Compensate only when there is something to undo."""
    offered = STATES[intent.status].actions
    return tuple(a for a in offered if a is not Action.COMPENSATE or compensable_steps(spec, steps))


def guidance(intent: Intent, spec: WorkflowDefinition, steps: list[StepRecord]) -> Guidance:
    params = " ".join(f"{k}={v}" for k, v in sorted(intent.params.items()))
    requested = (
        f"{intent.workflow} {params} in {intent.environment}, requested by {intent.requester} "
        f"(plan {intent.plan_hash[:12]})"
    )
    said = {st.name: st.description for st in spec.steps}
    changed = tuple(
        f"{_step(r.name, said)}: done" + (f" ({_ids(r.external_ids)})" if r.external_ids else "")
        for r in steps
        if r.status is StepStatus.SUCCEEDED
    )
    in_doubt = intent.status is IntentStatus.UNKNOWN or any(
        r.status in (StepStatus.STARTED, StepStatus.UNKNOWN, StepStatus.PENDING) for r in steps
    )
    changed_any = bool(changed)
    if not changed:
        changed = ("nothing confirmed: see what is uncertain",) if in_doubt else ("nothing has been changed",)
    uncertain = []
    for r in steps:
        if r.status in (StepStatus.STARTED, StepStatus.UNKNOWN):
            uncertain.append(f"{_step(r.name, said)}: outcome not yet observed" + (f" — {r.error}" if r.error else ""))
        elif r.status is StepStatus.PENDING:
            uncertain.append(f"{_step(r.name, said)}: requested, still converging")
    # A step that failed for good is not uncertain: its reason is the intent's, said once where the status is.
    if not uncertain and intent.status is IntentStatus.UNKNOWN and intent.status_reason:
        uncertain.append(intent.status_reason)
    if not uncertain:
        uncertain.append("nothing: every recorded step has an observed outcome")
    comp = ", ".join(compensable_steps(spec, steps)) or "none"
    explain = {**_EXPLAIN, **(_AWAITING if intent.status.awaiting_approval else {})}
    actions = tuple(
        (a, explain[a].format(hash=intent.plan_hash[:12], steps=comp)) for a in available_actions(intent, spec, steps)
    )
    return Guidance(requested, changed, tuple(uncertain), actions, changed_any)


def _step(name: str, said: dict[str, str]) -> str:
    """A step as people read it: its description, with its name (`create the read replica (create_replica)`)."""
    base = name.split("[", 1)[0]  # a repeated step is named `<step>[<item>]`
    description = said.get(base)
    return f"{description} ({name})" if description else name


def _ids(ids: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in ids.items())
