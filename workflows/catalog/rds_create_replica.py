"""rds.create-replica: a read replica of an RDS instance, tagged with the intent that created it, done only
when it is available and replicating with a healthy lag."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from workflows.catalog.rds_common import (
    INTENT_TAG,
    MANAGED_TAG,
    InstanceClass,
    RdsId,
    create_replica,
    delete_our_replica,
    find_replica,
    ours,
    rds,
    replica_healthy,
)
from workflows.sdk import (
    DbInstance,
    Evidence,
    Mutation,
    Observation,
    PlanDraft,
    PreconditionFailed,
    PreflightContext,
    RetryPolicy,
    Risk,
    Rollback,
    StepContext,
    StepOutcome,
    Workflow,
    postcondition,
    step,
    workflow,
)


class CreateReplicaParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: RdsId = Field(description="identifier of the source DB instance")
    replica: RdsId = Field(description="identifier for the new read replica")
    instance_class: InstanceClass = Field(default="db.t3.medium", description="instance class of the replica")
    max_lag_seconds: int = Field(default=30, ge=1, le=3600, description="replica lag that still counts as healthy")


@workflow(
    name="rds.create-replica",
    summary="Create an RDS read replica of a source instance",
    risk=Risk.MEDIUM,
    blast_radius="one new RDS instance; extra replication load on the source",
    request_roles=("dba",),
    approve_roles=("dba-lead",),
    rollback_limits="compensation deletes the replica only if it carries this intent's tag",
    retry=RetryPolicy(attempts=3, initial_delay=1.0, max_delay=10.0, requeues=3),
    timeout=2 * 3600.0,
)
class CreateReplica(Workflow[CreateReplicaParams]):
    """Preflight checks the source; one step creates the replica (tagged with the intent), one waits for health."""

    def preflight(self, ctx: PreflightContext[CreateReplicaParams]) -> PlanDraft:
        p, port = ctx.params, rds(ctx)
        source = port.describe_instance(p.source)
        if source is None:
            raise PreconditionFailed(f"source instance {p.source} not found in {ctx.env.aws_region}")
        if source.status != "available":
            raise PreconditionFailed(f"source instance {p.source} is {source.status}, not available")
        existing = port.describe_instance(p.replica)
        if existing is not None and existing.tags.get(MANAGED_TAG) != "true":
            raise PreconditionFailed(f"replica id {p.replica} is taken by an instance opsbot does not manage")
        mutation = Mutation(
            action="adopt" if existing else "create",
            target=f"rds:{p.replica}",
            detail=f"read replica of {p.source} as {p.instance_class}; done when replicating with lag under "
            f"{p.max_lag_seconds}s",
        )
        return PlanDraft(
            targets=(f"rds:{p.source}", f"rds:{p.replica}"),
            mutations=(mutation,),
            observed={
                "source": {
                    "id": source.identifier,
                    "status": source.status,
                    "class": source.instance_class,
                    "engine": source.engine,
                    "arn": source.arn,
                },
                "replica": None
                if existing is None
                else {"id": existing.identifier, "status": existing.status, "intent": existing.tags.get(INTENT_TAG)},
            },
            locks=(f"rds:{p.replica}",),
            blast_radius=f"one new instance; replication load on {p.source}",
        )

    @step(rollback=Rollback.COMPENSATE, timeout=120.0, description="create the read replica")
    def create_replica(self, ctx: StepContext[CreateReplicaParams]) -> StepOutcome:
        p = ctx.params
        return create_replica(ctx, p.replica, p.source, p.instance_class)

    @create_replica.probe
    def _find_replica(self, ctx: StepContext[CreateReplicaParams]) -> Observation:
        return find_replica(ctx, ctx.params.replica)

    @create_replica.compensate
    def _delete_replica(self, ctx: StepContext[CreateReplicaParams]) -> StepOutcome:
        return delete_our_replica(ctx, ctx.params.replica)

    @step(
        rollback=Rollback.NONE,
        timeout=60.0,
        convergence_window=3600.0,
        idempotent="it only reads the replica's status and metrics",
        description="wait until the replica is available and replicating with a healthy lag",
    )
    def await_available(self, ctx: StepContext[CreateReplicaParams]) -> StepOutcome:
        return replica_healthy(ctx, ctx.params.replica, ctx.params.max_lag_seconds)

    @postcondition("the replica exists and replicates from the source")
    def exists(self, ctx: StepContext[CreateReplicaParams]) -> Evidence:
        found = _replica(ctx)
        source = found.source_identifier if found else None
        return Evidence(found is not None and source in (None, ctx.params.source), {"source": source})

    @postcondition("the replica has the requested instance class")
    def expected_class(self, ctx: StepContext[CreateReplicaParams]) -> Evidence:
        found = _replica(ctx)
        actual = found.instance_class if found else None
        return Evidence(actual == ctx.params.instance_class, {"class": actual})

    @postcondition("the replica has an endpoint address")
    def endpoint_present(self, ctx: StepContext[CreateReplicaParams]) -> Evidence:
        found = _replica(ctx)
        return Evidence(bool(found and found.endpoint), {"endpoint": found.endpoint if found else None})

    @postcondition("the replica carries this intent's tag")
    def tagged(self, ctx: StepContext[CreateReplicaParams]) -> Evidence:
        found = _replica(ctx)
        return Evidence(
            bool(found and ours(found.tags, ctx.intent.id)), {"tag": found.tags.get(INTENT_TAG) if found else None}
        )


def _replica(ctx: StepContext[CreateReplicaParams]) -> DbInstance | None:
    return rds(ctx).describe_instance(ctx.params.replica)
