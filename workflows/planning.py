"""Preflight: turn a validated request into a Plan, computed from observed state."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from workflows.context import PreflightContext
from workflows.deps import Runtime
from workflows.errors import InvalidInput, PreconditionFailed, StepError
from workflows.plan import Mutation, Plan, fingerprint
from workflows.registry import WorkflowSpec


def parse_params(spec: WorkflowSpec, raw: dict[str, Any]) -> BaseModel:
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


def compute_plan(rt: Runtime, spec: WorkflowSpec, params: BaseModel, environment: str) -> Plan:
    env = rt.config.environment(environment)
    ctx = PreflightContext(params=params, environment=environment, env=env, adapters=rt.adapters, now=rt.clock.now())
    try:
        draft = spec.factory().preflight(ctx)
    except StepError as exc:
        raise PreconditionFailed(f"preflight for {spec.name} could not observe the target: {exc}") from None
    return Plan(
        workflow=spec.name,
        environment=environment,
        params=params.model_dump(mode="json"),
        targets=draft.targets,
        mutations=tuple(Mutation(action=a, resource=r, detail=d) for a, r, d in draft.mutations),
        locks=draft.locks,
        blast_radius=draft.blast_radius or spec.blast_radius,
        risk=spec.risk.value,
        rollback=spec.rollback,
        rollback_limits=spec.rollback_limits,
        verification=tuple(f"{p.name}: {p.description}" for p in spec.postconditions),
        fingerprint=fingerprint(draft.observed),
        observed=draft.observed,
    )
