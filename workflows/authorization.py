"""Who may take each operator action, per workflow and environment, and whether an intent's approval holds now.

Defaults, before any `policies.<workflow>.actions` override (nobody acts alone on a change to production):

| action        | roles                  | requester may | people                |
|---------------|------------------------|---------------|-----------------------|
| request       | request roles          | -             | 1                     |
| approve       | approve roles          | no            | the policy's approvals|
| deny          | approve roles          | no            | 1                     |
| cancel        | request + approve roles| yes           | 1                     |
| retry, resume | request + approve roles| yes           | 1 (the run is gated by a valid approval) |
| compensate    | request + approve roles| no            | 1 (it proposes a compensation plan, approved like any plan) |
| mark-done     | approve roles          | no            | the policy's approvals|
| run-now       | approve roles          | no            | 1 (the run is gated by a valid approval) |
| view          | every role the policy names | yes      | 1                     |

A role holds user ids and Slack user groups; a group is resolved through the `GroupDirectory` when it matters,
and a group that cannot be checked refuses rather than grants (`workflows.groups`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from workflows.authoring import WorkflowDefinition
from workflows.config import ActionRule, OpsConfig, Policy
from workflows.errors import PermissionDenied
from workflows.groups import MembershipUnknown, holds_role
from workflows.model import Approval, Decision, Intent
from workflows.ports import GroupDirectory
from workflows.states import Action

# Actions that lead to execution are refused where the policy no longer allows the environment.
_EXECUTES = frozenset({Action.REQUEST, Action.APPROVE, Action.RETRY, Action.RESUME, Action.COMPENSATE, Action.RUN_NOW})
# How a refusal names what was refused, where the action's name reads badly ("approve refused").
_REFUSED = {Action.APPROVE: "approval", Action.DENY: "denial", Action.VIEW: "viewing"}


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may take one action on one workflow in one environment."""

    action: Action
    roles: frozenset[str]
    requester: bool
    people: int


@dataclass(frozen=True, slots=True)
class ApprovalCheck:
    """Whether an intent's approvals are enough to run it now, and why not."""

    ok: bool
    approvers: tuple[str, ...]
    needed: int
    problems: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        got = f"{len(self.approvers)} of {self.needed} approval(s) hold"
        return f"{got}: {'; '.join(self.problems)}" if self.problems else got


def _policy(config: OpsConfig, spec: WorkflowDefinition) -> Policy:
    configured = config.policies.get(spec.name)
    if configured is not None:
        return configured
    return Policy(request=spec.request_roles, approve=spec.approve_roles, approvals=spec.approvals)


def rules(config: OpsConfig, spec: WorkflowDefinition, environment: str) -> Mapping[Action, Rule]:
    """Every action's rule for `spec` in `environment`: defaults, then the policy, then its environment override."""
    policy = _policy(config, spec)
    override = policy.by_environment.get(environment)
    approve = frozenset((override.approve if override and override.approve else None) or policy.approve)
    # A config may raise the number of approvers, never lower it below the workflow's contract.
    approvals = max(
        (override.approvals if override and override.approvals else None) or policy.approvals, spec.approvals
    )
    operators = frozenset(policy.request) | approve
    defaults = {
        Action.REQUEST: Rule(Action.REQUEST, frozenset(policy.request), True, 1),
        Action.APPROVE: Rule(Action.APPROVE, approve, False, approvals),
        Action.DENY: Rule(Action.DENY, approve, False, 1),
        Action.CANCEL: Rule(Action.CANCEL, operators, True, 1),
        Action.RETRY: Rule(Action.RETRY, operators, True, 1),
        Action.RESUME: Rule(Action.RESUME, operators, True, 1),
        Action.COMPENSATE: Rule(Action.COMPENSATE, operators, False, 1),
        Action.MARK_DONE: Rule(Action.MARK_DONE, approve, False, approvals),
        Action.RUN_NOW: Rule(Action.RUN_NOW, approve, False, 1),
    }
    out = {
        a: _merge(r, policy.actions.get(a), override.actions.get(a) if override else None) for a, r in defaults.items()
    }
    if out[Action.APPROVE].people < spec.approvals:
        out[Action.APPROVE] = Rule(Action.APPROVE, out[Action.APPROVE].roles, False, spec.approvals)
    viewers = frozenset(r for rule in out.values() for r in rule.roles)
    out[Action.VIEW] = _merge(Rule(Action.VIEW, viewers, True, 1), policy.actions.get(Action.VIEW), None)
    return out


def _merge(rule: Rule, *overrides: ActionRule | None) -> Rule:
    for o in overrides:
        if o is None:
            continue
        rule = Rule(
            rule.action,
            frozenset(o.roles) if o.roles is not None else rule.roles,
            o.requester if o.requester is not None else rule.requester,
            o.people if o.people is not None else rule.people,
        )
    return rule


def rule(config: OpsConfig, spec: WorkflowDefinition, environment: str, action: Action) -> Rule:
    return rules(config, spec, environment)[action]


def environment_allowed(config: OpsConfig, spec: WorkflowDefinition, environment: str) -> bool:
    allowed = _policy(config, spec).environments
    return allowed is None or environment in allowed


def refusal(
    config: OpsConfig,
    spec: WorkflowDefinition,
    environment: str,
    action: Action,
    actor: str,
    requesters: Iterable[str] = (),
    *,
    groups: GroupDirectory,
) -> str | None:
    """Why `actor` may not take `action` now, or None when they may. `requesters`: who asked for this plan."""
    if action in _EXECUTES and not environment_allowed(config, spec, environment):
        allowed = ", ".join(sorted(_policy(config, spec).environments or ()))
        return f"{spec.name} is not allowed in environment {environment!r} (allowed: {allowed})"
    r = rule(config, spec, environment, action)
    if actor in set(requesters) and not r.requester:
        if action is Action.APPROVE:
            return "you cannot approve your own request: another approver must review the plan"
        return f"you asked for this intent, so someone else must {action.value} it"
    if actor in set(requesters):
        return None
    try:
        holds = holds_role(config, groups, actor, r.roles)
    except MembershipUnknown as exc:
        return f"{exc}; {_REFUSED.get(action, action.value)} refused"
    if not holds:
        needs = ", ".join(sorted(r.roles)) or "a role no one holds"
        return f"{actor} may not {action.value} {spec.name} in {environment}: it needs one of the roles {needs}"
    return None


def require(
    config: OpsConfig,
    spec: WorkflowDefinition,
    environment: str,
    action: Action,
    actor: str,
    requesters: Iterable[str] = (),
    *,
    groups: GroupDirectory,
) -> None:
    """Raise PermissionDenied unless `actor` may take `action` now."""
    why = refusal(config, spec, environment, action, actor, requesters, groups=groups)
    if why is not None:
        raise PermissionDenied(why)


def requesters_of(intent: Intent) -> tuple[str, ...]:
    """Who asked for the intent's current plan: its requester, and whoever proposed a compensation plan."""
    proposer = str(intent.plan.get("requested_by") or "")
    return (intent.requester, proposer) if proposer and proposer != intent.requester else (intent.requester,)


def may(
    config: OpsConfig, spec: WorkflowDefinition, intent: Intent, action: Action, actor: str, *, groups: GroupDirectory
) -> bool:
    """Whether `actor` may take `action` on `intent` now (for showing buttons; the service checks again)."""
    requesters = (intent.requester,) if action is Action.VIEW else requesters_of(intent)
    return refusal(config, spec, intent.environment, action, actor, requesters, groups=groups) is None


def check_approvals(
    config: OpsConfig,
    spec: WorkflowDefinition,
    intent: Intent,
    approvals: Iterable[Approval],
    now: datetime,
    *,
    fresh: bool,
    groups: GroupDirectory,
) -> ApprovalCheck:
    """Whether enough distinct people approved this exact plan and may approve it *now*.

    `fresh`: each approval must also be unexpired (before a first run, and when an operator sends an intent back
    to execution). Automatic recovery after a crash continues under the approval it started with, but never
    under an approver whose role was revoked meanwhile, nor one whose user group cannot be checked now.
    """
    r = rule(config, spec, intent.environment, Action.APPROVE)
    if not environment_allowed(config, spec, intent.environment):
        return ApprovalCheck(False, (), r.people, (f"the policy no longer allows {spec.name} in {intent.environment}",))
    excluded = set(requesters_of(intent))
    latest: dict[str, Approval] = {}
    for a in approvals:
        current = a.decision is Decision.APPROVE and a.plan_hash == intent.plan_hash
        if current and (a.actor not in latest or a.expires_at > latest[a.actor].expires_at):
            latest[a.actor] = a
    counted: list[str] = []
    problems: list[str] = []
    for actor, a in sorted(latest.items()):
        if actor in excluded:
            continue
        try:
            holds = holds_role(config, groups, actor, r.roles)
        except MembershipUnknown as exc:
            problems.append(f"{actor}'s approver role cannot be checked: {exc}")
            continue
        if not holds:
            problems.append(f"{actor} no longer holds an approver role ({', '.join(sorted(r.roles))})")
        elif fresh and now >= a.expires_at:
            problems.append(f"{actor}'s approval expired at {a.expires_at.isoformat(timespec='seconds')}")
        else:
            counted.append(actor)
    return ApprovalCheck(len(counted) >= r.people, tuple(counted), r.people, tuple(problems))
