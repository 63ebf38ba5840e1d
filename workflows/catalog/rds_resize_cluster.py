"""rds.resize-cluster: resize an Aurora cluster's readers one at a time, fail over to a resized reader, then
resize the old writer. The steps are repeated over the members the plan saw; a changed membership re-plans."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workflows.catalog.rds_common import InstanceClass, RdsId, await_class, change_class, class_done, observe_class, rds
from workflows.sdk import (
    Absent,
    DbCluster,
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


class ResizeClusterParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster: RdsId = Field(description="identifier of the Aurora DB cluster")
    instance_class: InstanceClass = Field(description="the new instance class for every member")


def _cluster(ctx: StepContext[ResizeClusterParams]) -> DbCluster:
    found = rds(ctx).describe_cluster(ctx.params.cluster)
    if found is None:
        raise PermanentError(f"cluster {ctx.params.cluster} no longer exists", guidance="check the RDS console")
    return found


def _planned_writer(ctx: StepContext[ResizeClusterParams]) -> str:
    observed: dict[str, Any] = ctx.intent.plan.get("observed", {})
    return str(observed.get("writer") or "")


def _resize_member(ctx: StepContext[ResizeClusterParams], member: str) -> StepOutcome:
    """Re-read the writer first: never resize the member that is the writer now (failover is asynchronous)."""
    cluster = _cluster(ctx)
    if cluster.writer == member:
        raise UnsafeError(
            f"{member} is the cluster's writer now, not a reader as planned",
            guidance="the cluster failed over on its own; re-plan the resize (cancel and request again)",
        )
    change_class(ctx, member, ctx.params.instance_class)
    return await_class(ctx, member, ctx.params.instance_class)


def _member_resized(ctx: StepContext[ResizeClusterParams], member: str) -> Observation:
    found = rds(ctx).describe_instance(member)
    if found is not None and class_done(found, ctx.params.instance_class):
        return Done(output={"class": found.instance_class}, how="observed")
    seen = observe_class(ctx, member, ctx.params.instance_class)
    if isinstance(seen, Done):
        return Pending(f"{member}: the change is requested and converging", retry_after=30.0)
    return seen


@workflow(
    name="rds.resize-cluster",
    summary="Resize every instance of an Aurora cluster: readers, failover, then the old writer",
    risk=Risk.HIGH,
    blast_radius="each member restarts in turn; one failover (writes pause for tens of seconds)",
    request_roles=("dba",),
    approve_roles=("dba-lead",),
    rollback_limits="no automatic undo: resize the cluster back with another rds.resize-cluster",
    timeout=12 * 3600.0,
)
class ResizeCluster(Workflow[ResizeClusterParams]):
    """One step per reader (as planned), a failover to the first resized reader, then the old writer."""

    def preflight(self, ctx: PreflightContext[ResizeClusterParams]) -> PlanDraft:
        p, port = ctx.params, rds(ctx)
        cluster = port.describe_cluster(p.cluster)
        if cluster is None:
            raise PreconditionFailed(f"cluster {p.cluster} not found in {ctx.env.aws_region}")
        if cluster.status != "available":
            raise PreconditionFailed(f"cluster {p.cluster} is {cluster.status}, not available")
        writer, readers = cluster.writer, cluster.readers
        if writer is None or not readers:
            raise PreconditionFailed(f"cluster {p.cluster} needs a writer and at least one reader to fail over to")
        classes = {}
        for member in (*readers, writer):
            found = port.describe_instance(member)
            if found is None or found.status != "available":
                raise PreconditionFailed(f"member {member} is {found.status if found else 'missing'}, not available")
            if not port.is_orderable(found.engine, found.engine_version, p.instance_class, found.availability_zone):
                raise PreconditionFailed(f"{p.instance_class} is not orderable for {member}")
            classes[member] = found.instance_class
        new = p.instance_class
        mutations = (
            *(Mutation(action="modify", target=f"rds:{m}", detail=f"reader: {classes[m]} → {new}") for m in readers),
            Mutation(action="failover", target=f"rds-cluster:{p.cluster}", detail=f"writer {writer} → {readers[0]}"),
            Mutation(action="modify", target=f"rds:{writer}", detail=f"old writer: {classes[writer]} → {new}"),
        )
        return PlanDraft(
            targets=(f"rds-cluster:{p.cluster}", *(f"rds:{m}" for m in (*readers, writer))),
            mutations=mutations,
            observed={"writer": writer, "readers": list(readers), "classes": classes},
            locks=(f"rds-cluster:{p.cluster}", *(f"rds:{m}" for m in (*readers, writer))),
            each={"readers": readers, "old_writer": (writer,)},
        )

    @step(
        rollback=Rollback.NONE,
        each="readers",
        timeout=120.0,
        convergence_window=3 * 3600.0,
        description="resize one reader and wait for it",
    )
    def resize_reader(self, ctx: StepContext[ResizeClusterParams]) -> StepOutcome:
        assert ctx.item is not None
        return _resize_member(ctx, ctx.item)

    @resize_reader.probe
    def _reader_resized(self, ctx: StepContext[ResizeClusterParams]) -> Observation:
        assert ctx.item is not None
        return _member_resized(ctx, ctx.item)

    @step(rollback=Rollback.NONE, timeout=120.0, convergence_window=1800.0, description="fail over to a resized reader")
    def failover(self, ctx: StepContext[ResizeClusterParams]) -> StepOutcome:
        cluster, old = _cluster(ctx), _planned_writer(ctx)
        if cluster.writer not in (None, old):
            return Done(output={"writer": cluster.writer}, how="observed")
        if cluster.status == "failing-over":
            return Pending(f"{cluster.identifier} is failing over", retry_after=15.0)
        target = str(ctx.intent.plan.get("each", {}).get("readers", [""])[0])
        rds(ctx).failover_cluster(cluster.identifier, target)
        after = _cluster(ctx)  # failover is asynchronous: done only when the cluster says so
        if after.writer not in (None, old):
            return Done(output={"writer": after.writer})
        return Pending(f"failover of {cluster.identifier} to {target} requested", retry_after=15.0)

    @failover.probe
    def _failed_over(self, ctx: StepContext[ResizeClusterParams]) -> Observation:
        cluster, old = _cluster(ctx), _planned_writer(ctx)
        if cluster.writer not in (None, old):
            return Done(output={"writer": cluster.writer}, how="observed")
        if cluster.status == "failing-over":
            return Pending(f"{cluster.identifier} is failing over", retry_after=15.0)
        return Absent(f"{old} is still the writer: no failover has happened")

    @step(
        rollback=Rollback.NONE,
        each="old_writer",
        timeout=120.0,
        convergence_window=3 * 3600.0,
        description="resize the former writer, now a reader",
    )
    def resize_old_writer(self, ctx: StepContext[ResizeClusterParams]) -> StepOutcome:
        assert ctx.item is not None
        return _resize_member(ctx, ctx.item)

    @resize_old_writer.probe
    def _old_writer_resized(self, ctx: StepContext[ResizeClusterParams]) -> Observation:
        assert ctx.item is not None
        return _member_resized(ctx, ctx.item)

    @postcondition("every member of the cluster has the requested class")
    def all_resized(self, ctx: StepContext[ResizeClusterParams]) -> Evidence:
        port, cluster = rds(ctx), _cluster(ctx)
        classes = {}
        for m in cluster.members:
            found = port.describe_instance(m.instance)
            classes[m.instance] = found.instance_class if found else None
        return Evidence(all(c == ctx.params.instance_class for c in classes.values()), {"classes": classes})

    @postcondition("the cluster is available with a writer")
    def available(self, ctx: StepContext[ResizeClusterParams]) -> Evidence:
        cluster = _cluster(ctx)
        return Evidence(cluster.status == "available" and cluster.writer is not None, {"writer": cluster.writer})
