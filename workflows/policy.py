"""Who may request and approve what: the config's policies, falling back to the workflow's contract."""

from __future__ import annotations

from dataclasses import dataclass

from workflows.config import OpsConfig
from workflows.errors import PermissionDenied
from workflows.registry import WorkflowSpec


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    request: frozenset[str]
    approve: frozenset[str]
    approvals: int
    environments: frozenset[str] | None


def effective_policy(config: OpsConfig, spec: WorkflowSpec) -> EffectivePolicy:
    configured = config.policies.get(spec.name)
    if configured is None:
        return EffectivePolicy(frozenset(spec.request_roles), frozenset(spec.approve_roles), spec.approvals, None)
    envs = frozenset(configured.environments) if configured.environments is not None else None
    # A config may raise the number of approvers, never lower it below the contract's.
    return EffectivePolicy(
        frozenset(configured.request), frozenset(configured.approve), max(configured.approvals, spec.approvals), envs
    )


def check_request(config: OpsConfig, spec: WorkflowSpec, actor: str, environment: str) -> None:
    policy = effective_policy(config, spec)
    if policy.environments is not None and environment not in policy.environments:
        allowed = ", ".join(sorted(policy.environments))
        raise PermissionDenied(f"{spec.name} is not allowed in environment {environment!r} (allowed: {allowed})")
    if not config.roles_of(actor) & policy.request:
        raise PermissionDenied(
            f"{actor} may not request {spec.name}: it needs one of the roles {', '.join(sorted(policy.request))}"
        )


def check_approver(config: OpsConfig, spec: WorkflowSpec, actor: str, requester: str) -> None:
    if actor == requester:
        raise PermissionDenied("you cannot approve your own request: another approver must review the plan")
    policy = effective_policy(config, spec)
    if not config.roles_of(actor) & policy.approve:
        raise PermissionDenied(
            f"{actor} may not approve {spec.name}: it needs one of the roles {', '.join(sorted(policy.approve))}"
        )


def holds_approver_role(config: OpsConfig, spec: WorkflowSpec, actor: str) -> bool:
    return bool(config.roles_of(actor) & effective_policy(config, spec).approve)
