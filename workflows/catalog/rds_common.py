"""What the RDS workflows share: identifiers, ownership tags, and the replica and instance-class step bodies."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from workflows.sdk import (
    Absent,
    AlreadyExists,
    DbInstance,
    Done,
    Observation,
    Pending,
    PermanentError,
    PreflightContext,
    RdsPort,
    StepContext,
    StepOutcome,
    UnsafeError,
)

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
        "renaming",
    }
)
HEALTHY_LAG_POINTS = 3  # consecutive one-minute ReplicaLag datapoints that must all be fresh and under the limit


def _no_double_hyphen(value: str) -> str:
    if "--" in value:
        raise ValueError("RDS identifiers cannot contain two consecutive hyphens")
    return value


RdsId = Annotated[
    str,
    Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,61}[a-zA-Z0-9]$", description="an RDS identifier"),
    AfterValidator(_no_double_hyphen),
]
InstanceClass = Annotated[
    str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$", max_length=40, description="an instance class, e.g. db.r6g.large")
]


def rds(ctx: PreflightContext[Any] | StepContext[Any]) -> RdsPort:
    return ctx.adapters.rds(ctx.env.aws_region)


def ours(tags: dict[str, str], intent_id: str) -> bool:
    return tags.get(INTENT_TAG) == intent_id


def owner_tags(intent_id: str, **extra: str) -> dict[str, str]:
    return {INTENT_TAG: intent_id, MANAGED_TAG: "true", **extra}


# replicas ----------------------------------------------------------------------------------------


def create_replica(ctx: StepContext[Any], replica: str, source: str, instance_class: str) -> StepOutcome:
    """Create a replica tagged with this intent; an existing one is adopted only when its tag proves it ours."""
    port = rds(ctx)
    try:
        created = port.create_read_replica(
            replica_id=replica,
            source_id=source,
            instance_class=instance_class,
            tags=owner_tags(ctx.intent.id, **{SOURCE_TAG: source}),
        )
    except AlreadyExists:
        found = port.describe_instance(replica)
        if found is None or not ours(found.tags, ctx.intent.id):
            owner = found.tags.get(INTENT_TAG, "nobody we know") if found else "unknown"
            raise UnsafeError(
                f"{replica} already exists and is not ours (created by {owner})",
                guidance="choose another replica id, or mark done if that instance is the one you wanted",
            ) from None
        return Done(output={"status": found.status}, external_ids=_replica_ids(found), how="adopted")
    ctx.checkpoint(replica_id=created.identifier, arn=created.arn)
    return Done(output={"status": created.status}, external_ids=_replica_ids(created))


def find_replica(ctx: StepContext[Any], replica: str) -> Observation:
    """After a crash: the replica exists with our tag (done), is absent (create again), or is someone else's."""
    found = rds(ctx).describe_instance(replica)
    if found is None:
        return Absent(f"no instance named {replica}: the create did not take effect")
    if not ours(found.tags, ctx.intent.id):
        raise UnsafeError(f"{replica} exists but carries another owner's tag")
    return Done(output={"status": found.status}, external_ids=_replica_ids(found), how="observed")


def delete_our_replica(ctx: StepContext[Any], replica: str) -> StepOutcome:
    """Delete the replica, only if it carries this intent's tag; already gone or going counts as done."""
    port = rds(ctx)
    found = port.describe_instance(replica)
    if found is None or found.status == "deleting":
        return Done(output={"deleted": replica})
    if not ours(found.tags, ctx.intent.id):
        raise UnsafeError(f"refusing to delete {replica}: it is not tagged as created by this intent")
    port.delete_instance(replica)
    return Done(output={"deleted": replica}, external_ids={"deleted": found.arn})


def replica_healthy(ctx: StepContext[Any], replica: str, max_lag_seconds: float) -> StepOutcome:
    """Done only when available, replicating (an absent `read replication` entry is not healthy) and its
    ReplicaLag is fresh and under the limit for the last few one-minute datapoints (missing or -1: unhealthy)."""
    port = rds(ctx)
    found = port.describe_instance(replica)
    if found is None:
        return Pending(f"{replica} is not visible yet (eventual consistency)", retry_after=10.0)
    if found.status in CONVERGING_STATES:
        return Pending(f"{replica} is {found.status}", retry_after=30.0, observed={"status": found.status})
    if found.status != "available":
        raise PermanentError(
            f"{replica} is {found.status}", guidance="inspect the instance in the RDS console; compensate to delete it"
        )
    replication = next((s for s in found.status_infos if s.kind == "read replication"), None)
    if replication is None or replication.status != "replicating":
        state = replication.status if replication else "not reported yet"
        if replication is not None and replication.status == "error":
            raise PermanentError(f"{replica}: read replication is in error", guidance="rebuild the replica")
        return Pending(f"{replica}: read replication {state}", retry_after=30.0, observed={"replication": state})
    lags = port.replica_lag_seconds(replica)
    recent = lags[:HEALTHY_LAG_POINTS]
    if len(recent) < HEALTHY_LAG_POINTS or any(lag < 0 or lag > max_lag_seconds for lag in recent):
        seen = ", ".join(f"{lag:g}s" for lag in recent) or "no fresh datapoints"
        return Pending(
            f"{replica}: replica lag not yet healthy ({seen}; limit {max_lag_seconds:g}s)",
            retry_after=60.0,
            observed={"lag": recent},
        )
    return Done(output={"status": found.status, "endpoint": found.endpoint, "lag": recent})


def _replica_ids(found: DbInstance) -> dict[str, str]:
    return {"replica_id": found.identifier, "arn": found.arn}


# instance classes --------------------------------------------------------------------------------


def class_done(found: DbInstance, target: str) -> bool:
    """The class is applied: the target class, available, and no class change still pending."""
    return found.instance_class == target and found.status == "available" and "DBInstanceClass" not in found.pending


def class_requested(found: DbInstance, target: str) -> bool:
    return found.pending.get("DBInstanceClass") == target or (
        found.instance_class == target and found.status in CONVERGING_STATES
    )


def change_class(ctx: StepContext[Any], identifier: str, target: str, *, immediately: bool = True) -> StepOutcome:
    """Request the class change unless it is done or already requested (ModifyDBInstance has no token: look first)."""
    port = rds(ctx)
    found = port.describe_instance(identifier)
    if found is None:
        raise PermanentError(f"{identifier} no longer exists", guidance="check the instance in the RDS console")
    if class_done(found, target) or class_requested(found, target):
        return Done(output={"class": found.instance_class, "pending": found.pending}, how="observed")
    port.modify_instance_class(identifier, target, apply_immediately=immediately)
    return Done(output={"requested": target})


def observe_class(ctx: StepContext[Any], identifier: str, target: str) -> Observation:
    """A class change is in place or requested (done), or was never requested (absent)."""
    found = rds(ctx).describe_instance(identifier)
    if found is None:
        raise PermanentError(f"{identifier} no longer exists", guidance="check the instance in the RDS console")
    if class_done(found, target) or class_requested(found, target):
        return Done(output={"class": found.instance_class, "pending": found.pending}, how="observed")
    return Absent(f"{identifier} has no change to {target} requested")


def await_class(ctx: StepContext[Any], identifier: str, target: str) -> StepOutcome:
    """Converged only when the class is applied and nothing is pending (AWS reports `available` before it starts
    modifying, and its own waiters are known to return too early)."""
    found = rds(ctx).describe_instance(identifier)
    if found is None:
        raise PermanentError(f"{identifier} no longer exists", guidance="check the instance in the RDS console")
    if class_done(found, target):
        return Done(output={"class": found.instance_class, "status": found.status})
    if found.status not in CONVERGING_STATES | {"available"}:
        raise PermanentError(f"{identifier} is {found.status}", guidance="inspect the instance in the RDS console")
    pending = found.pending.get("DBInstanceClass")
    return Pending(
        f"{identifier} is {found.status}, class {found.instance_class}" + (f", {pending} pending" if pending else ""),
        retry_after=30.0,
        observed={"status": found.status, "class": found.instance_class},
    )
