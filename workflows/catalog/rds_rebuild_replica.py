"""rds.rebuild-replica: delete a broken read replica and create it again with the same identifier and settings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workflows.catalog.rds_common import (
    INTENT_TAG,
    RdsId,
    create_replica,
    delete_our_replica,
    find_replica,
    ours,
    rds,
    replica_healthy,
)
from workflows.sdk import (
    Absent,
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


class RebuildParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    replica: RdsId = Field(description="identifier of the read replica to rebuild")
    max_lag_seconds: int = Field(default=30, ge=1, le=3600, description="replica lag that still counts as healthy")


def _settings(ctx: StepContext[RebuildParams]) -> dict[str, Any]:
    settings: dict[str, Any] = ctx.intent.plan.get("observed", {}).get("replica") or {}
    return settings


@workflow(
    name="rds.rebuild-replica",
    summary="Delete a broken read replica and recreate it with the same identifier and settings",
    risk=Risk.HIGH,
    blast_radius="the replica is gone until it is recreated: readers using it fail over or error",
    request_roles=("dba",),
    approve_roles=("dba-lead",),
    rollback_limits="the delete is irreversible; the recreated replica can be compensated (deleted) like any",
    timeout=4 * 3600.0,
)
class RebuildReplica(Workflow[RebuildParams]):
    """Delete (irreversible: two approvers), wait until gone, then the create-replica steps with the same settings."""

    def preflight(self, ctx: PreflightContext[RebuildParams]) -> PlanDraft:
        port = rds(ctx)
        found = port.describe_instance(ctx.params.replica)
        if found is None:
            raise PreconditionFailed(f"replica {ctx.params.replica} not found in {ctx.env.aws_region}")
        if not found.source_identifier:
            raise PreconditionFailed(f"{found.identifier} is not a read replica: refusing to delete a primary")
        source = port.describe_instance(found.source_identifier)
        if source is None or source.status != "available":
            state = source.status if source else "missing"
            raise PreconditionFailed(f"source {found.source_identifier} is {state}: a new replica could not sync")
        health = ", ".join(f"{s.kind}: {s.status}" for s in found.status_infos) or "no replication status reported"
        return PlanDraft(
            targets=(f"rds:{found.identifier}", f"rds:{found.source_identifier}"),
            mutations=(
                Mutation(action="delete", target=f"rds:{found.identifier}", detail=f"now {found.status}; {health}"),
                Mutation(
                    action="create",
                    target=f"rds:{found.identifier}",
                    detail=f"read replica of {found.source_identifier} as {found.instance_class}",
                ),
            ),
            observed={
                "replica": {"source": found.source_identifier, "class": found.instance_class, "arn": found.arn},
            },
            locks=(f"rds:{found.identifier}",),
        )

    @step(rollback=Rollback.IRREVERSIBLE, timeout=120.0, description="delete the broken replica")
    def delete_replica(self, ctx: StepContext[RebuildParams]) -> StepOutcome:
        port = rds(ctx)
        found = port.describe_instance(ctx.params.replica)
        if found is None or found.status == "deleting":
            return Done(output={"deleted": ctx.params.replica}, how="observed")
        port.delete_instance(ctx.params.replica)
        return Done(output={"deleted": ctx.params.replica, "arn": found.arn})

    @delete_replica.probe
    def _deleting(self, ctx: StepContext[RebuildParams]) -> Observation:
        found = rds(ctx).describe_instance(ctx.params.replica)
        if found is None or found.status == "deleting":
            return Done(output={"deleted": ctx.params.replica}, how="observed")
        return Absent(f"{ctx.params.replica} is {found.status}: the delete did not take effect")

    @step(
        rollback=Rollback.NONE,
        convergence_window=3600.0,
        idempotent="it only reads the instance",
        description="wait until the old replica is gone",
    )
    def await_deleted(self, ctx: StepContext[RebuildParams]) -> StepOutcome:
        found = rds(ctx).describe_instance(ctx.params.replica)
        if found is None:
            return Done(output={"gone": ctx.params.replica})
        return Pending(f"{ctx.params.replica} is {found.status}", retry_after=30.0, observed={"status": found.status})

    @step(rollback=Rollback.COMPENSATE, timeout=120.0, description="create the replica again")
    def recreate(self, ctx: StepContext[RebuildParams]) -> StepOutcome:
        s = _settings(ctx)
        return create_replica(ctx, ctx.params.replica, str(s["source"]), str(s["class"]))

    @recreate.probe
    def _find_new(self, ctx: StepContext[RebuildParams]) -> Observation:
        return find_replica(ctx, ctx.params.replica)

    @recreate.compensate
    def _delete_new(self, ctx: StepContext[RebuildParams]) -> StepOutcome:
        return delete_our_replica(ctx, ctx.params.replica)

    @step(
        rollback=Rollback.NONE,
        convergence_window=3600.0,
        idempotent="it only reads the replica's status and metrics",
        description="wait until the new replica is available and replicating with a healthy lag",
    )
    def await_healthy(self, ctx: StepContext[RebuildParams]) -> StepOutcome:
        return replica_healthy(ctx, ctx.params.replica, ctx.params.max_lag_seconds)

    @postcondition("the replica exists again, tagged with this intent, replicating from the same source")
    def rebuilt(self, ctx: StepContext[RebuildParams]) -> Evidence:
        found = rds(ctx).describe_instance(ctx.params.replica)
        s = _settings(ctx)
        ok = bool(found and ours(found.tags, ctx.intent.id) and found.source_identifier in (None, s.get("source")))
        return Evidence(ok, {"tag": found.tags.get(INTENT_TAG) if found else None})

    @postcondition("the replica has its former instance class")
    def same_class(self, ctx: StepContext[RebuildParams]) -> Evidence:
        found = rds(ctx).describe_instance(ctx.params.replica)
        actual = found.instance_class if found else None
        return Evidence(actual == _settings(ctx).get("class"), {"class": actual})
