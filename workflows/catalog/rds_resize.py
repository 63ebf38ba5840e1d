"""rds.resize: change an instance's class, now or in its maintenance window, and converge until it is applied."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.catalog.rds_common import InstanceClass, RdsId, await_class, change_class, observe_class, rds
from workflows.sdk import (
    Done,
    Evidence,
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
    Workflow,
    postcondition,
    step,
    workflow,
)


class ResizeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instance: RdsId = Field(description="identifier of the DB instance to resize")
    instance_class: InstanceClass = Field(description="the new instance class, e.g. db.r6g.large")
    apply: Literal["immediately", "next-window"] = Field(
        default="immediately", description="now (with downtime), or in the instance's maintenance window"
    )


@workflow(
    name="rds.resize",
    summary="Change the instance class of an RDS instance",
    risk=Risk.HIGH,
    blast_radius="the instance restarts on the new class: downtime for its clients",
    request_roles=("dba",),
    approve_roles=("dba-lead",),
    rollback_limits="compensation resizes back to the class observed at plan time (with the same downtime)",
    timeout=6 * 3600.0,
)
class Resize(Workflow[ResizeParams]):
    """Request the class change (ModifyDBInstance has no token: observe first), then converge on it."""

    def preflight(self, ctx: PreflightContext[ResizeParams]) -> PlanDraft:
        p, port = ctx.params, rds(ctx)
        found = port.describe_instance(p.instance)
        if found is None:
            raise PreconditionFailed(f"instance {p.instance} not found in {ctx.env.aws_region}")
        if found.status != "available":
            raise PreconditionFailed(f"instance {p.instance} is {found.status}, not available")
        if found.instance_class == p.instance_class and "DBInstanceClass" not in found.pending:
            raise PreconditionFailed(f"instance {p.instance} is already {p.instance_class}")
        if not port.is_orderable(found.engine, found.engine_version, p.instance_class, found.availability_zone):
            zone = found.availability_zone or "its zone"
            raise PreconditionFailed(f"{p.instance_class} is not orderable for {found.engine} in {zone}")
        downtime = (
            "Multi-AZ: a failover to the resized standby, typically one to two minutes of downtime"
            if found.multi_az
            else "single-AZ: the instance is unavailable while it restarts on the new class, often several minutes"
        )
        when = (
            "now"
            if p.apply == "immediately"
            else f"in the next maintenance window ({found.maintenance_window or 'not set'}, UTC)"
        )
        others = {k: v for k, v in found.pending.items() if k != "DBInstanceClass"}
        also = (
            f"; ApplyImmediately also applies what is already pending: {others}"
            if others and p.apply == "immediately"
            else ""
        )
        return PlanDraft(
            targets=(f"rds:{found.identifier}",),
            mutations=(
                Mutation(
                    action="modify",
                    target=f"rds:{found.identifier}",
                    detail=f"{found.instance_class} → {p.instance_class}, {when}; expected downtime: {downtime}{also}",
                ),
            ),
            observed={
                "class": found.instance_class,
                "pending": found.pending,
                "multi_az": found.multi_az,
                "zone": found.availability_zone,
                "maintenance_window": found.maintenance_window,
            },
            locks=(f"rds:{found.identifier}",),
            blast_radius=f"{found.identifier} restarts: {downtime}",
        )

    @step(rollback=Rollback.COMPENSATE, timeout=120.0, description="request the class change")
    def modify(self, ctx: StepContext[ResizeParams]) -> StepOutcome:
        p = ctx.params
        return change_class(ctx, p.instance, p.instance_class, immediately=p.apply == "immediately")

    @modify.probe
    def _requested(self, ctx: StepContext[ResizeParams]) -> Observation:
        return observe_class(ctx, ctx.params.instance, ctx.params.instance_class)

    @modify.compensate
    def _resize_back(self, ctx: StepContext[ResizeParams]) -> StepOutcome:
        original = str(ctx.intent.plan.get("observed", {}).get("class") or "")
        if not original:
            raise PreconditionFailed("the plan did not record the original class; resize back by hand")
        requested = change_class(ctx, ctx.params.instance, original, immediately=ctx.params.apply == "immediately")
        if ctx.params.apply == "next-window":
            return requested
        settled = await_class(ctx, ctx.params.instance, original)
        return settled if isinstance(settled, Done) else Pending(f"resizing back to {original}", retry_after=30.0)

    @step(
        rollback=Rollback.NONE,
        timeout=60.0,
        convergence_window=4 * 3600.0,
        idempotent="it only reads the instance",
        description="wait until the new class is applied and nothing is pending",
    )
    def await_resized(self, ctx: StepContext[ResizeParams]) -> StepOutcome:
        p = ctx.params
        if p.apply == "next-window":
            found = rds(ctx).describe_instance(p.instance)
            if found is not None and (
                found.pending.get("DBInstanceClass") == p.instance_class or found.instance_class == p.instance_class
            ):
                return Done(output={"scheduled": found.maintenance_window})
            return Pending(f"{p.instance}: the change to {p.instance_class} is not pending yet", retry_after=30.0)
        return await_class(ctx, p.instance, p.instance_class)

    @postcondition("the instance has the requested class (or, for next-window, it is pending)")
    def has_class(self, ctx: StepContext[ResizeParams]) -> Evidence:
        found = rds(ctx).describe_instance(ctx.params.instance)
        target = ctx.params.instance_class
        if found is None:
            return Evidence(False, {"instance": None})
        if ctx.params.apply == "next-window":
            ok = found.instance_class == target or found.pending.get("DBInstanceClass") == target
        else:
            ok = found.instance_class == target and found.status == "available" and not found.pending
        return Evidence(ok, {"class": found.instance_class, "status": found.status, "pending": found.pending})
