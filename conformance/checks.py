"""The static check of one workflow class: everything registration refuses, and what it cannot see."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from conformance.world import ScriptedAdapters, ScriptedWorld
from workflows.authoring import StepSpec, WorkflowDefinition, definition_of
from workflows.config import Environment
from workflows.context import PreflightContext, StepContext
from workflows.errors import DefinitionError
from workflows.model import Intent, IntentId, IntentStatus, Mode
from workflows.outcomes import Done, Pending

# The classic bad identifiers, by kind; a field that legitimately takes one kind says so in its schema:
# Field(json_schema_extra={"allows": ["path separators"]}).
BAD_IDENTIFIERS: Mapping[str, tuple[str, ...]] = {
    "empty": ("",),
    "overlong": ("a" * 300,),
    "whitespace": (" billing", "billing ", "bil ling", "bil\tling", "bil\nling", "billing\n"),
    "quotes": ("bil'ling", 'bil"ling', "bil`ling"),
    "semicolons": ("billing;drop", "billing;"),
    "path separators": ("bil/ling", "bil\\ling", "../billing"),
    "shell metacharacters": ("$(id)", "bil|ling", "bil&ling", "bil>ling", "bil*", "~bil"),
    # Cyrillic i, fullwidth b, a zero-width space: look like ASCII, are not
    "unicode lookalikes": ("b\u0456lling", "bill\u0456ng-db", "\uff42illing", "billing\u200b"),
    "control characters": ("bil\x00ling", "bil\x1bling"),
}


def check_workflow(
    cls: type[Any],
    example: Mapping[str, Any] | None = None,
    world: ScriptedWorld | None = None,
    env: Environment | None = None,
) -> list[str]:
    """Every problem found in `cls`; empty when it conforms.

    `example`: valid parameters (needed to test each field alone and to run the steps). `world`: a scripted world
    seeded so that the example's steps succeed; with it, each step is run once on the happy path to check that
    every external id it reports was checkpointed (`ctx.checkpoint`) before the step returned.
    """
    try:
        spec = definition_of(cls)
    except DefinitionError as exc:
        return [str(exc)]
    if example is None:
        return [f"workflow {spec.name!r}: give check_workflow an example of valid parameters"]
    problems = _identifier_problems(spec, example)
    if world is not None and not problems:
        problems += _checkpoint_problems(spec, example, world, env or Environment())
    return problems


def _identifier_problems(spec: WorkflowDefinition, example: Mapping[str, Any]) -> list[str]:
    problems = []
    try:
        spec.params.model_validate(dict(example))
    except ValidationError as exc:
        return [f"workflow {spec.name!r}: the example parameters are not valid: {exc.errors()[0]['msg']}"]
    for name, field in spec.params.model_fields.items():
        if field.annotation not in (str, str | None):
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        allowed = set(extra.get("allows") or ())  # type: ignore[arg-type]
        for kind, values in BAD_IDENTIFIERS.items():
            if kind in allowed:
                continue
            for bad in values:
                try:
                    spec.params.model_validate({**example, name: bad})
                except ValidationError:
                    continue
                problems.append(f"workflow {spec.name!r}: field {name!r} accepts {kind}: {bad!r}")
                break
    return problems


def _checkpoint_problems(
    spec: WorkflowDefinition, example: Mapping[str, Any], world: ScriptedWorld, env: Environment
) -> list[str]:
    params = spec.params.model_validate(dict(example))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    plan = _plan(spec, params, env, ScriptedAdapters(world), now)
    intent = Intent(
        id=IntentId("conformance0001"),
        workflow=spec.name,
        environment="conformance",
        params=params.model_dump(mode="json"),
        requester="kit",
        idempotency_key="kit",
        plan=plan,
        plan_hash="0" * 64,
        status=IntentStatus.RUNNING,
        version=1,
        mode=Mode.FORWARD,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    wf, adapters = spec.factory(), ScriptedAdapters(world)
    outputs: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    items: dict[str, list[str]] = plan["each"]
    runs: list[tuple[StepSpec, str | None]] = []
    for s in spec.steps:
        runs += [(s, str(i)) for i in items.get(s.each, ())] if s.each else [(s, None)]
    for step, item in runs:
        recorded: dict[str, Any] = {}
        ctx = StepContext(
            intent, params, env, adapters, f"kit-{step.name}", outputs, lambda: now, recorded.update, item
        )
        outcome = step.run(wf, ctx)
        for _ in range(10):  # a convergence wait: look again, as the reconciler would
            if not isinstance(outcome, Pending):
                break
            outcome = step.run(wf, ctx)
        if not isinstance(outcome, Done):
            problems.append(f"workflow {spec.name!r}: step {step.name!r} did not finish on the happy path")
            break
        missing = sorted(set(outcome.external_ids) - set(recorded))
        if outcome.how == "executed" and missing:
            problems.append(
                f"workflow {spec.name!r}: step {step.name!r} reports external ids {missing} it did not checkpoint "
                "when they became known (call ctx.checkpoint(...) right after the call that creates them)"
            )
        outputs[step.name] = outcome.output
    return problems


def _plan(spec: WorkflowDefinition, params: Any, env: Environment, adapters: Any, now: datetime) -> dict[str, Any]:
    """The plan the steps will read (observed state, repeated steps' items), from the workflow's own preflight."""
    draft = spec.factory().preflight(PreflightContext(params, "conformance", env, adapters, now))
    return {"observed": draft.observed, "each": {k: list(v) for k, v in draft.each.items()}, "locks": list(draft.locks)}
