"""rds.create-replica: a read replica of an RDS instance, tagged with the intent that created it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workflows.sdk import (
    Absent,
    AdapterFactory,
    AlreadyExists,
    DbInstance,
    Done,
    Environment,
    Evidence,
    Mutation,
    Observation,
    Pending,
    PermanentError,
    PlanDraft,
    PreconditionFailed,
    PreflightContext,
    RdsPort,
    RetryPolicy,
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

RDS_IDENTIFIER = r"^[a-zA-Z][a-zA-Z0-9-]{0,61}[a-zA-Z0-9]$"
INTENT_TAG, MANAGED_TAG, SOURCE_TAG = "opsbot:intent", "opsbot:managed", "opsbot:source"
CONVERGING_STATES = frozenset(
    {
        "creating",
        "backing-up",
        "modifying",
        "configuring-enhanced-monitoring",
        "configuring-log-exports",
        "rebooting",
        "starting",
        "upgrading",
        "maintenance",
        "storage-optimization",
        "resetting-master-credentials",
    }
)


class CreateReplicaParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(pattern=RDS_IDENTIFIER, description="identifier of the source DB instance")
    replica: str = Field(pattern=RDS_IDENTIFIER, description="identifier for the new read replica")
    instance_class: str = Field(
        default="db.t3.medium",
        pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$",
        description="instance class of the replica, e.g. db.r6g.large",
    )

    @field_validator("source", "replica")
    @classmethod
    def _no_double_hyphen(cls, value: str) -> str:
        if "--" in value:
            raise ValueError("RDS identifiers cannot contain two consecutive hyphens")
        return value


def _ours(instance: DbInstance, intent_id: str) -> bool:
    return instance.tags.get(INTENT_TAG) == intent_id


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
    """Preflight checks the source; one step creates the replica (tagged with the intent), one waits for it."""

    def preflight(self, ctx: PreflightContext[CreateReplicaParams]) -> PlanDraft:
        p, rds = ctx.params, _rds(ctx.adapters, ctx.env)
        source = rds.describe_instance(p.source)
        if source is None:
            raise PreconditionFailed(f"source instance {p.source} not found in {ctx.env.aws_region}")
        if source.status != "available":
            raise PreconditionFailed(f"source instance {p.source} is {source.status}, not available")
        existing = rds.describe_instance(p.replica)
        if existing is not None and existing.tags.get(MANAGED_TAG) != "true":
            raise PreconditionFailed(f"replica id {p.replica} is taken by an instance opsbot does not manage")
        mutation = Mutation(
            action="adopt" if existing else "create",
            target=f"rds:{p.replica}",
            detail=f"read replica of {p.source} as {p.instance_class}",
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
        p, rds = ctx.params, _rds(ctx.adapters, ctx.env)
        tags = {INTENT_TAG: ctx.intent.id, MANAGED_TAG: "true", SOURCE_TAG: p.source}
        try:
            created = rds.create_read_replica(
                replica_id=p.replica, source_id=p.source, instance_class=p.instance_class, tags=tags
            )
        except AlreadyExists:
            found = rds.describe_instance(p.replica)
            if found is None or not _ours(found, ctx.intent.id):
                owner = found.tags.get(INTENT_TAG, "nobody we know") if found else "unknown"
                raise UnsafeError(
                    f"{p.replica} already exists and is not ours (created by {owner})",
                    guidance="choose another replica id, or mark done if that instance is the one you wanted",
                ) from None
            return Done(
                output={"status": found.status},
                external_ids={"replica_id": found.identifier, "arn": found.arn},
                how="adopted",
            )
        ctx.checkpoint(replica_id=created.identifier, arn=created.arn)
        return Done(
            output={"status": created.status}, external_ids={"replica_id": created.identifier, "arn": created.arn}
        )

    @create_replica.probe
    def _find_replica(self, ctx: StepContext[CreateReplicaParams]) -> Observation:
        """After a crash: the replica exists with our tag (done), is absent (create again), or is someone else's."""
        p = ctx.params
        found = _rds(ctx.adapters, ctx.env).describe_instance(p.replica)
        if found is None:
            return Absent(f"no instance named {p.replica}: the create did not take effect")
        if not _ours(found, ctx.intent.id):
            raise UnsafeError(f"{p.replica} exists but carries another owner's tag")
        return Done(
            output={"status": found.status},
            external_ids={"replica_id": found.identifier, "arn": found.arn},
            how="observed",
        )

    @create_replica.compensate
    def _delete_replica(self, ctx: StepContext[CreateReplicaParams]) -> StepOutcome:
        """Delete the replica, only if it carries this intent's tag; already gone or going counts as done."""
        p, rds = ctx.params, _rds(ctx.adapters, ctx.env)
        found = rds.describe_instance(p.replica)
        if found is None or found.status == "deleting":
            return Done(output={"deleted": p.replica})
        if not _ours(found, ctx.intent.id):
            raise UnsafeError(f"refusing to delete {p.replica}: it is not tagged as created by this intent")
        rds.delete_instance(p.replica)
        return Done(output={"deleted": p.replica}, external_ids={"deleted": found.arn})

    @step(
        rollback=Rollback.NONE,
        timeout=60.0,
        convergence_window=3600.0,
        idempotent="it only reads the replica's status",
        description="wait until the replica is available",
    )
    def await_available(self, ctx: StepContext[CreateReplicaParams]) -> StepOutcome:
        p = ctx.params
        found = _rds(ctx.adapters, ctx.env).describe_instance(p.replica)
        if found is None:
            return Pending(f"{p.replica} is not visible yet (eventual consistency)", retry_after=10.0)
        if found.status == "available":
            return Done(output={"status": found.status, "endpoint": found.endpoint})
        if found.status in CONVERGING_STATES:
            return Pending(f"{p.replica} is {found.status}", retry_after=30.0, observed={"status": found.status})
        raise PermanentError(
            f"{p.replica} is {found.status}",
            guidance="inspect the instance in the RDS console; compensate to delete it",
        )

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
            bool(found and _ours(found, ctx.intent.id)), {"tag": found.tags.get(INTENT_TAG) if found else None}
        )


def _rds(adapters: AdapterFactory, env: Environment) -> RdsPort:
    return adapters.rds(env.aws_region)


def _replica(ctx: StepContext[CreateReplicaParams]) -> DbInstance | None:
    return _rds(ctx.adapters, ctx.env).describe_instance(ctx.params.replica)
