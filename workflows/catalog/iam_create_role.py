"""iam.create-role: a role trusted by one AWS service, tagged with the intent, with one policy attached."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from workflows.catalog.rds_common import INTENT_TAG, ours, owner_tags
from workflows.sdk import (
    Absent,
    AlreadyExists,
    Done,
    Evidence,
    IamPort,
    IamRole,
    Mutation,
    Observation,
    Pending,
    PlanDraft,
    PreconditionFailed,
    PreflightContext,
    Risk,
    Rollback,
    StepContext,
    StepOutcome,
    TransientError,
    UnsafeError,
    Workflow,
    postcondition,
    step,
    workflow,
)


class CreateRoleParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str = Field(pattern=r"^[A-Za-z0-9+=,.@_-]{1,64}$", description="the role name")
    trusted_service: str = Field(
        pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.amazonaws\.com$",
        max_length=100,
        description="the service principal allowed to assume it, e.g. ec2.amazonaws.com",
    )
    policy_arn: str = Field(
        pattern=r"^arn:aws:iam::(aws|[0-9]{12}):policy/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,128}$",
        max_length=2048,
        description="the managed policy to attach",
    )


def _iam(ctx: StepContext[CreateRoleParams] | PreflightContext[CreateRoleParams]) -> IamPort:
    return ctx.adapters.iam()


def _ours_or_unsafe(found: IamRole, intent_id: str) -> IamRole:
    if not ours(found.tags, intent_id):
        owner = found.tags.get(INTENT_TAG, "no opsbot intent")
        raise UnsafeError(
            f"role {found.name} exists and was not created by this intent (tag: {owner})",
            guidance="choose another role name, or mark done if that role is the one you wanted",
        )
    return found


@workflow(
    name="iam.create-role",
    summary="Create an IAM role for an AWS service and attach a managed policy",
    risk=Risk.MEDIUM,
    blast_radius="one new role; whatever the service may do with the attached policy",
    request_roles=("platform",),
    approve_roles=("platform-lead",),
    rollback_limits="compensation detaches the policy and deletes the role only if this intent created it",
    timeout=3600.0,
)
class CreateRole(Workflow[CreateRoleParams]):
    """Create (never adopting a role this intent did not tag), attach, then wait until IAM shows both."""

    def preflight(self, ctx: PreflightContext[CreateRoleParams]) -> PlanDraft:
        p, iam = ctx.params, _iam(ctx)
        if not iam.policy_exists(p.policy_arn):
            raise PreconditionFailed(f"policy {p.policy_arn} does not exist")
        existing = iam.get_role(p.role)
        if existing is not None:
            raise PreconditionFailed(f"a role named {p.role} exists already ({existing.arn})")
        return PlanDraft(
            targets=(f"iam-role:{p.role}",),
            mutations=(
                Mutation(action="create", target=f"iam-role:{p.role}", detail=f"assumable by {p.trusted_service}"),
                Mutation(action="attach", target=f"iam-role:{p.role}", detail=p.policy_arn),
            ),
            observed={"role": None, "policy": p.policy_arn},
            locks=(f"iam-role:{p.role}",),
        )

    @step(rollback=Rollback.COMPENSATE, timeout=60.0, description="create the role, tagged with this intent")
    def create_role(self, ctx: StepContext[CreateRoleParams]) -> StepOutcome:
        p, iam = ctx.params, _iam(ctx)
        try:
            made = iam.create_role(p.role, p.trusted_service, owner_tags(ctx.intent.id))
        except AlreadyExists:
            found = iam.get_role(p.role)
            if found is None:  # it exists, but IAM's read side does not show it yet
                raise TransientError(f"role {p.role} exists but is not readable yet", delay=5.0) from None
            found = _ours_or_unsafe(found, ctx.intent.id)
            return Done(external_ids={"role_arn": found.arn}, how="adopted")
        ctx.checkpoint(role_arn=made.arn)
        return Done(external_ids={"role_arn": made.arn})

    @create_role.probe
    def _find_role(self, ctx: StepContext[CreateRoleParams]) -> Observation:
        # Absent may be IAM's lag, not absence: running again is still safe, because a second create is refused
        # with EntityAlreadyExists and then adopted only by its tag.
        found = _iam(ctx).get_role(ctx.params.role)
        if found is None:
            return Absent(f"no role {ctx.params.role} visible")
        found = _ours_or_unsafe(found, ctx.intent.id)
        return Done(external_ids={"role_arn": found.arn}, how="observed")

    @create_role.compensate
    def _delete_role(self, ctx: StepContext[CreateRoleParams]) -> StepOutcome:
        iam = _iam(ctx)
        found = iam.get_role(ctx.params.role)
        if found is None:
            return Done(output={"deleted": ctx.params.role})
        _ours_or_unsafe(found, ctx.intent.id)
        for arn in iam.attached_policies(ctx.params.role):
            iam.detach_policy(ctx.params.role, arn)
        iam.delete_role(ctx.params.role)
        return Done(output={"deleted": ctx.params.role})

    @step(
        rollback=Rollback.COMPENSATE,
        timeout=60.0,
        idempotent="attaching a policy that is attached changes nothing in IAM",
        description="attach the policy",
    )
    def attach_policy(self, ctx: StepContext[CreateRoleParams]) -> StepOutcome:
        _iam(ctx).attach_policy(ctx.params.role, ctx.params.policy_arn)
        return Done(output={"attached": ctx.params.policy_arn})

    @attach_policy.compensate
    def _detach_policy(self, ctx: StepContext[CreateRoleParams]) -> StepOutcome:
        iam = _iam(ctx)
        found = iam.get_role(ctx.params.role)
        if found is not None and ours(found.tags, ctx.intent.id):
            iam.detach_policy(ctx.params.role, ctx.params.policy_arn)
        return Done(output={"detached": ctx.params.policy_arn})

    @step(
        rollback=Rollback.NONE,
        timeout=30.0,
        convergence_window=300.0,
        idempotent="it only reads the role",
        description="wait until IAM shows the role with its policy (eventual consistency)",
    )
    def await_visible(self, ctx: StepContext[CreateRoleParams]) -> StepOutcome:
        iam, p = _iam(ctx), ctx.params
        found = iam.get_role(p.role)
        if found is None or p.policy_arn not in iam.attached_policies(p.role):
            return Pending(f"role {p.role} is not visible with its policy yet", retry_after=5.0)
        return Done(output={"role_arn": found.arn})

    @postcondition("the role exists, tagged with this intent, trusted by the requested service")
    def role_is_ours(self, ctx: StepContext[CreateRoleParams]) -> Evidence:
        found = _iam(ctx).get_role(ctx.params.role)
        ok = bool(found and ours(found.tags, ctx.intent.id) and ctx.params.trusted_service in found.trusted_services)
        return Evidence(ok, {"trusted": list(found.trusted_services) if found else None})

    @postcondition("the policy is attached")
    def policy_attached(self, ctx: StepContext[CreateRoleParams]) -> Evidence:
        attached = _iam(ctx).attached_policies(ctx.params.role)
        return Evidence(ctx.params.policy_arn in attached, {"attached": attached})
