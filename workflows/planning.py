"""Preflight: turn a validated request into a Plan computed from observed state; compensation plans; the checks
of a stored plan against the workflow as it is deployed now."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from workflows.authoring import WorkflowDefinition
from workflows.context import PreflightContext
from workflows.deps import Runtime
from workflows.errors import DefinitionError, InvalidInput, PreconditionFailed, StepError
from workflows.model import Intent, StepRecord, StepStatus
from workflows.plan import Mutation, Plan, PlanPurpose, fingerprint
from workflows.steps import COMPENSATION_SEQ_BASE, compensations
from workflows.tickets import Ticket

LOCK_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}:[^\s]{1,160}$")


def parse_params(spec: WorkflowDefinition, raw: dict[str, Any]) -> BaseModel:
    """Validate raw key=value input against the workflow's model; one line per bad field."""
    try:
        return spec.params.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(input)"
            if err["type"] == "extra_forbidden":
                known = ", ".join(spec.params.model_fields)
                problems.append(f"{field}: unknown parameter (expected: {known})")
            elif err["type"] == "missing":
                desc = spec.params.model_fields[field].description if field in spec.params.model_fields else ""
                problems.append(f"{field}: required" + (f" ({desc})" if desc else ""))
            else:
                problems.append(f"{field}: {err['msg']}")
        raise InvalidInput(f"invalid parameters for {spec.name}:\n" + "\n".join(f"  {p}" for p in problems)) from None


def compute_plan(
    rt: Runtime,
    spec: WorkflowDefinition,
    params: BaseModel,
    environment: str,
    requested_by: str = "",
    intent_id: str | None = None,
    ticket: Ticket | None = None,
) -> Plan:
    env = rt.config.environment(environment)
    ctx = PreflightContext(params=params, environment=environment, env=env, adapters=rt.adapters, now=rt.clock.now())
    try:
        draft = spec.factory().preflight(ctx)
    except StepError as exc:
        raise PreconditionFailed(f"preflight for {spec.name} could not observe the target: {exc}") from None
    bad = [lock for lock in draft.locks if not LOCK_NAME.match(lock)]
    if bad:
        raise DefinitionError(f"workflow {spec.name!r}: preflight declared malformed locks {bad} (want kind:name)")
    missing = sorted({s.each for s in spec.steps if s.each is not None} - set(draft.each))
    if missing:
        raise DefinitionError(f"workflow {spec.name!r}: preflight lists no items for steps repeated over {missing}")
    locks = tuple(sorted(set(draft.locks)))
    return Plan(
        workflow=spec.name,
        environment=environment,
        params=params.model_dump(mode="json"),
        targets=draft.targets,
        mutations=draft.mutations,
        locks=locks,
        each={k: tuple(v) for k, v in draft.each.items()},
        conflicts=conflicts(rt, locks, intent_id),
        blast_radius=draft.blast_radius or spec.blast_radius,
        risk=spec.risk.value,
        rollback=spec.rollback,
        rollback_limits=spec.rollback_limits,
        verification=tuple(f"{p.name}: {p.description}" for p in spec.postconditions),
        fingerprint=fingerprint(draft.observed),
        observed=draft.observed,
        requested_by=requested_by,
        definition=spec.definition.hash,
        steps=spec.definition.steps,
        ticket=ticket.id if ticket else None,
        ticket_url=ticket.url if ticket else None,
    )


def ticket_of(plan: dict[str, Any]) -> Ticket | None:
    """The change ticket an earlier plan carried: a re-plan carries it on."""
    given = plan.get("ticket")
    return Ticket(str(given), plan.get("ticket_url")) if given else None


def conflicts(rt: Runtime, locks: tuple[str, ...], intent_id: str | None = None) -> tuple[str, ...]:
    """Which other intents hold, or wait for, the resources a plan needs."""
    if not locks:
        return ()
    with rt.store.transaction() as tx:
        holders, waiters = tx.lock_holders(locks), tx.lock_waiters(locks)
    held = [
        f"{h.resource} is held by intent {h.intent_id} ({h.workflow}, requested by @{h.requester}, {h.status.value})"
        for h in holders
        if h.intent_id != intent_id
    ]
    waiting = [
        f"{w.resource} is awaited by intent {w.intent_id} ({w.workflow}, requested by @{w.requester})"
        for w in waiters
        if w.intent_id != intent_id
    ]
    return tuple(held + waiting)


def compensation_plan(spec: WorkflowDefinition, intent: Intent, steps: list[StepRecord], requested_by: str) -> Plan:
    """Undoing what completed is a change of its own: a plan, reviewed and approved like the forward one."""
    records = {r.seq: r for r in steps}
    undo = [(rec, comp) for rec, comp, _ in compensations(spec, records)]
    if not undo:
        raise InvalidInput(f"intent {intent.id} has no completed step that declares a compensation")
    original = Plan.model_validate(intent.plan)
    mutations = tuple(
        Mutation(
            action="undo",
            target=", ".join(f"{k}={v}" for k, v in rec.external_ids.items()) or rec.name,
            detail=f"{comp.name} reverses {rec.name}",
        )
        for rec, comp in undo
    )
    done = [r for r in steps if r.seq < COMPENSATION_SEQ_BASE and r.status is StepStatus.SUCCEEDED]
    by_hand = [r.name for r in done if r.name not in {x.name for x, _ in undo}]
    completed = {r.name: r.external_ids for r in done}
    observed = {**original.observed, "completed": completed}  # what the plan saw stays readable by the steps
    return original.model_copy(
        update={
            "purpose": PlanPurpose.COMPENSATION,
            "requested_by": requested_by,
            "mutations": mutations,
            "targets": tuple(m.target for m in mutations),
            "rollback": {comp.name: "irreversible" for _, comp in undo},
            "rollback_limits": (
                "a compensation cannot itself be undone"
                + (f"; not undone automatically (undo by hand): {', '.join(by_hand)}" if by_hand else "")
            ),
            "verification": tuple(f"{comp.name}: reports done" for _, comp in undo),
            "observed": observed,
            "fingerprint": fingerprint(observed),
            "definition": spec.definition.hash,
            "steps": spec.definition.steps,
        }
    )


def definition_change(spec: WorkflowDefinition, plan: dict[str, Any]) -> str | None:
    """What changed in the workflow since `plan` was made, or None (plans from before fingerprints count as same)."""
    recorded = str(plan.get("definition") or "")
    if not recorded or recorded == spec.definition.hash:
        return None
    before = [str(s).split(":", 1)[0] for s in plan.get("steps") or ()]
    after = [s.name for s in spec.steps]
    if before != after:
        return f"steps were {' → '.join(before) or '?'}, now {' → '.join(after)}"
    old = set(str(s) for s in plan.get("steps") or ())
    differing = [s.name for s in spec.steps if s.shape() not in old]
    return f"the probes, compensations or rollback of {', '.join(differing) or 'its steps'} changed"


def plan_locks(intent: Intent) -> tuple[str, ...]:
    return tuple(str(lock) for lock in intent.plan.get("locks") or ())


def plan_items(intent: Intent) -> dict[str, tuple[str, ...]]:
    """The items the plan listed for steps declared `each=<key>`."""
    raw = intent.plan.get("each") or {}
    return {str(k): tuple(str(i) for i in v) for k, v in raw.items()} if isinstance(raw, dict) else {}
