"""rds.snapshot: a manual snapshot of an instance, named after the intent, tagged, converged to available."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from workflows.catalog.rds_common import INTENT_TAG, RdsId, ours, owner_tags, rds
from workflows.sdk import (
    Absent,
    AlreadyExists,
    DbSnapshot,
    Done,
    Evidence,
    Mutation,
    Observation,
    Pending,
    PermanentError,
    PlanDraft,
    PreconditionFailed,
    PreflightContext,
    Risk,
    Rollback,
    StepContext,
    StepOutcome,
    UnsafeError,
    Workflow,
    postcondition,
    step,
    workflow,
)


class SnapshotParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instance: RdsId = Field(description="identifier of the DB instance to snapshot")


def snapshot_id(ctx: StepContext[SnapshotParams] | PreflightContext[SnapshotParams], intent_id: str) -> str:
    """Derived from the intent, so a rerun, a crash or a CI retry can only ever name the same snapshot."""
    return f"opsbot-{ctx.params.instance}-{intent_id}"[:255]


@workflow(
    name="rds.snapshot",
    summary="Take a manual snapshot of an RDS instance",
    risk=Risk.LOW,
    blast_radius="a snapshot of the instance (I/O is briefly suspended on single-AZ instances)",
    request_roles=("dba",),
    approve_roles=("dba-lead",),
    rollback_limits="compensation deletes the snapshot only if it carries this intent's tag",
    timeout=6 * 3600.0,
)
class Snapshot(Workflow[SnapshotParams]):
    """One step creates the snapshot under a name derived from the intent; one waits for it to be available."""

    def preflight(self, ctx: PreflightContext[SnapshotParams]) -> PlanDraft:
        found = rds(ctx).describe_instance(ctx.params.instance)
        if found is None:
            raise PreconditionFailed(f"instance {ctx.params.instance} not found in {ctx.env.aws_region}")
        if found.status != "available":
            raise PreconditionFailed(f"instance {ctx.params.instance} is {found.status}: a snapshot needs it available")
        io = "none (Multi-AZ takes it from the standby)" if found.multi_az else "a brief I/O suspension (single-AZ)"
        return PlanDraft(
            targets=(f"rds:{found.identifier}",),
            mutations=(
                Mutation(
                    action="create",
                    target="rds-snapshot:opsbot-<instance>-<intent id>",
                    detail=f"manual snapshot of {found.identifier} ({found.engine} {found.engine_version}); "
                    f"impact: {io}",
                ),
            ),
            observed={"instance": found.identifier, "status": found.status, "multi_az": found.multi_az},
            locks=(f"rds:{found.identifier}",),
        )

    @step(rollback=Rollback.COMPENSATE, timeout=120.0, description="start the snapshot")
    def create_snapshot(self, ctx: StepContext[SnapshotParams]) -> StepOutcome:
        name, port = snapshot_id(ctx, ctx.intent.id), rds(ctx)
        try:
            made = port.create_snapshot(name, ctx.params.instance, owner_tags(ctx.intent.id))
        except AlreadyExists:
            found = port.describe_snapshot(name)
            if found is None or not ours(found.tags, ctx.intent.id):
                raise UnsafeError(f"snapshot {name} exists and is not ours", guidance="mark done if it is") from None
            return Done(external_ids=_ids(found), how="adopted")
        ctx.checkpoint(**_ids(made))
        return Done(external_ids=_ids(made))

    @create_snapshot.probe
    def _find_snapshot(self, ctx: StepContext[SnapshotParams]) -> Observation:
        name = snapshot_id(ctx, ctx.intent.id)
        found = rds(ctx).describe_snapshot(name)
        if found is None:
            return Absent(f"no snapshot {name}: the create did not take effect")
        if not ours(found.tags, ctx.intent.id):
            raise UnsafeError(f"snapshot {name} exists but carries another owner's tag")
        return Done(external_ids=_ids(found), how="observed")

    @create_snapshot.compensate
    def _delete_snapshot(self, ctx: StepContext[SnapshotParams]) -> StepOutcome:
        name, port = snapshot_id(ctx, ctx.intent.id), rds(ctx)
        found = port.describe_snapshot(name)
        if found is None or found.status == "deleting":
            return Done(output={"deleted": name})
        if not ours(found.tags, ctx.intent.id):
            raise UnsafeError(f"refusing to delete snapshot {name}: it is not tagged as created by this intent")
        port.delete_snapshot(name)
        return Done(output={"deleted": name})

    @step(
        rollback=Rollback.NONE,
        convergence_window=6 * 3600.0,
        idempotent="it only reads the snapshot's status",
        description="wait until the snapshot is available",
    )
    def await_available(self, ctx: StepContext[SnapshotParams]) -> StepOutcome:
        name = snapshot_id(ctx, ctx.intent.id)
        found = rds(ctx).describe_snapshot(name)
        if found is None:  # not "done": botocore's waiter gets this wrong
            return Pending(f"snapshot {name} is not visible yet", retry_after=15.0)
        if found.status == "available":
            return Done(output={"status": found.status})
        if found.status in ("failed", "deleting", "deleted"):
            raise PermanentError(f"snapshot {name} is {found.status}", guidance="retry to take a new snapshot")
        return Pending(f"snapshot {name} is {found.status}", retry_after=60.0, observed={"status": found.status})

    @postcondition("the snapshot is available, of the requested instance, and tagged with this intent")
    def available_and_ours(self, ctx: StepContext[SnapshotParams]) -> Evidence:
        found = rds(ctx).describe_snapshot(snapshot_id(ctx, ctx.intent.id))
        ok = bool(found and found.status == "available" and found.instance == ctx.params.instance)
        ok = ok and found is not None and ours(found.tags, ctx.intent.id)
        detail = {"status": found.status, "tag": found.tags.get(INTENT_TAG)} if found else {"status": None}
        return Evidence(ok, detail)


def _ids(found: DbSnapshot) -> dict[str, str]:
    return {"snapshot_id": found.identifier, "arn": found.arn}
