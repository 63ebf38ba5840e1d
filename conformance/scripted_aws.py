"""Scripted RDS, Secrets Manager and IAM over the scripted world, with AWS's quirks where workflows meet them.

Each adapter keeps its part of the state under its own keys: `rds` (instances), `snapshots`, `clusters`,
`metrics` (ReplicaLag datapoints, newest first), `rds_unorderable`, `secrets`, `iam` and `iam_lag`. Every
mutating call is one effect `<method>:<resource>`, counted only when it changes the world: a repeat that AWS
accepts and ignores (the same secret version, an attached policy) is a call but not an effect. Whether a call
changes anything is decided on a read just before it; two processes racing the very same no-op can miscount,
which no test here does.
"""

from __future__ import annotations

import copy
import secrets
import string
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from conformance.world import ScriptedWorld, State
from workflows.errors import AlreadyExists, PermanentError, TransientError
from workflows.outside import (
    CURRENT,
    PENDING,
    PREVIOUS,
    ClusterMember,
    DbCluster,
    DbInstance,
    DbSnapshot,
    IamRole,
    SecretVersion,
    StatusInfo,
)

T = TypeVar("T")
Raw = dict[str, Any]

ACCOUNT = "000000000000"
REPLICATION = "read replication"
MODIFYING_DESCRIBES = 2  # describes that show "modifying" once a class change starts
FAILOVER_DESCRIBES = 2  # describe_cluster calls that show "failing-over" before the writer moves
LAG_POINTS = 5  # one-minute ReplicaLag datapoints in the five minutes the adapter reads
_BUSY_DELAY = 30.0


def _changing(
    world: ScriptedWorld, method: str, target: str, apply: Callable[[State], T], changes: Callable[[State], bool]
) -> T:
    """A mutating call, counted as an effect only when `changes` says, on a read of the world just before, that
    it will change something."""
    return world.call(method, target, apply, effect=changes(world.read()))


# seeding and reading -------------------------------------------------------------------------------


def add_instance(
    world: ScriptedWorld,
    identifier: str,
    *,
    status: str = "available",
    instance_class: str = "db.t3.medium",
    **extra: Any,
) -> None:
    """Seed an RDS instance (extra: engine, engine_version, source_identifier, tags, cluster, pending, ...).

    An available replica (with a source_identifier) replicates with a lag of 0, as a created one does.
    """

    def apply(state: State) -> None:
        raw = _instance(identifier, status, instance_class, **extra)
        state.setdefault("rds", {})[identifier] = raw
        if raw["source_identifier"] and status == "available":
            _start_replicating(state, raw)

    world.seed(apply)


def instance(world: ScriptedWorld, identifier: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = world.read().get("rds", {}).get(identifier)
    return found


def apply_maintenance(world: ScriptedWorld, identifier: str) -> None:
    """The maintenance window comes: a class change that waited for it is applied."""

    def apply(state: State) -> None:
        raw = state["rds"][identifier]
        if "DBInstanceClass" in raw["pending"]:
            raw["instance_class"] = raw["pending"].pop("DBInstanceClass")
        raw["modify"] = None

    world.seed(apply)


def set_unorderable(world: ScriptedWorld, *instance_classes: str) -> None:
    """Make classes not orderable (every class is, otherwise)."""
    world.seed(lambda state: state.setdefault("rds_unorderable", []).extend(instance_classes))


def set_replica_lag(world: ScriptedWorld, instance_id: str, seconds: float | Sequence[float] | None) -> None:
    """ReplicaLag in CloudWatch: a number fills the five one-minute datapoints, a list gives them newest first,
    None leaves no datapoint (CloudWatch has no fresh data)."""
    if seconds is None:
        points: list[float] = []
    elif isinstance(seconds, int | float):
        points = [float(seconds)] * LAG_POINTS
    else:
        points = [float(s) for s in seconds]

    def apply(state: State) -> None:
        state.setdefault("metrics", {})[instance_id] = points

    world.seed(apply)


def set_replication(world: ScriptedWorld, instance_id: str, status: str | None) -> None:
    """The instance's `read replication` StatusInfo (`replicating` is normal); None removes it."""

    def apply(state: State) -> None:
        raw = state["rds"][instance_id]
        raw["status_infos"] = [s for s in raw["status_infos"] if s["kind"] != REPLICATION]
        if status is not None:
            raw["status_infos"].append({"kind": REPLICATION, "status": status, "normal": status == "replicating"})

    world.seed(apply)


def add_cluster(
    world: ScriptedWorld,
    cluster_id: str,
    writer: str,
    readers: Sequence[str] = (),
    instance_class: str = "db.r6g.large",
    *,
    engine: str = "aurora-postgresql",
    tags: dict[str, str] | None = None,
) -> None:
    """Seed an available Aurora cluster and its member instances."""

    def apply(state: State) -> None:
        state.setdefault("clusters", {})[cluster_id] = {
            "identifier": cluster_id,
            "status": "available",
            "engine": engine,
            "writer": writer,
            "tags": dict(tags or {}),
            "failover": None,
        }
        for member in (writer, *readers):
            state.setdefault("rds", {})[member] = _instance(
                member, "available", instance_class, engine=engine, cluster=cluster_id
            )

    world.seed(apply)


def add_secret(world: ScriptedWorld, secret_id: str, value: dict[str, Any]) -> str:
    """Seed a secret with one version, AWSCURRENT; returns the version id."""
    version_id = str(uuid.uuid4())

    def apply(state: State) -> None:
        state.setdefault("secrets", {})[secret_id] = {
            "arn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{secret_id}",
            "versions": {version_id: {"value": copy.deepcopy(value), "stages": [CURRENT]}},
        }

    world.seed(apply)
    return version_id


def secret_stages(world: ScriptedWorld, secret_id: str) -> dict[str, list[str]]:
    """Every version of a secret (labelled or not) and its labels."""
    versions = world.read()["secrets"][secret_id]["versions"]
    return {vid: list(v["stages"]) for vid, v in versions.items()}


def add_policy(world: ScriptedWorld, arn: str) -> None:
    """Seed an IAM policy that roles can attach."""
    world.seed(lambda state: _iam(state)["policies"].append(arn))


def add_role(
    world: ScriptedWorld,
    name: str,
    trusted_service: str,
    tags: dict[str, str] | None = None,
    policies: Sequence[str] = (),
) -> None:
    """Seed an IAM role (visible at once) with its attached policies."""

    def apply(state: State) -> None:
        _iam(state)["roles"][name] = _role(name, trusted_service, tags, policies, 0)

    world.seed(apply)


def set_iam_lag(world: ScriptedWorld, reads: int) -> None:
    """How many get_role calls miss a role after it is created (IAM's eventual consistency)."""

    def apply(state: State) -> None:
        state["iam_lag"] = reads

    world.seed(apply)


# RDS -----------------------------------------------------------------------------------------------


def _instance(identifier: str, status: str, instance_class: str, **extra: Any) -> Raw:
    return {
        "identifier": identifier,
        "status": status,
        "instance_class": instance_class,
        "engine": extra.get("engine", "postgres"),
        "arn": f"arn:aws:rds:us-east-1:{ACCOUNT}:db:{identifier}",
        "endpoint": f"{identifier}.scripted.local" if status == "available" else None,
        "source_identifier": extra.get("source_identifier"),
        "tags": dict(extra.get("tags") or {}),
        "describes": 0,
        "engine_version": extra.get("engine_version", "16.3"),
        "availability_zone": extra.get("availability_zone", "us-east-1a"),
        "multi_az": bool(extra.get("multi_az", False)),
        "pending": dict(extra.get("pending") or {}),
        "status_infos": [dict(s) for s in extra.get("status_infos") or []],
        "maintenance_window": extra.get("maintenance_window", "sun:05:00-sun:05:30"),
        "cluster": extra.get("cluster"),
        "port": extra.get("port", 5432),
        "modify": None,  # a class change being applied: {"to": class}
    }


def _as_instance(state: State, raw: Raw) -> DbInstance:
    replicas = sorted(i for i, r in state.get("rds", {}).items() if r["source_identifier"] == raw["identifier"])
    return DbInstance(
        identifier=raw["identifier"],
        status=raw["status"],
        instance_class=raw["instance_class"],
        engine=raw["engine"],
        arn=raw["arn"],
        endpoint=raw["endpoint"],
        source_identifier=raw["source_identifier"],
        tags=dict(raw["tags"]),
        engine_version=raw["engine_version"],
        availability_zone=raw["availability_zone"],
        multi_az=raw["multi_az"],
        pending=dict(raw["pending"]),
        status_infos=tuple(StatusInfo(s["kind"], s["status"], s["normal"]) for s in raw["status_infos"]),
        maintenance_window=raw["maintenance_window"],
        cluster=raw["cluster"],
        replicas=tuple(replicas),
        port=raw["port"],
    )


def _existing(state: State, identifier: str) -> Raw:
    raw: Raw | None = state.setdefault("rds", {}).get(identifier)
    if raw is None:
        raise PermanentError(f"DBInstanceNotFound: {identifier}")
    return raw


def _start_replicating(state: State, raw: Raw) -> None:
    """A replica that became available replicates, and CloudWatch starts reporting its lag."""
    if not any(s["kind"] == REPLICATION for s in raw["status_infos"]):
        raw["status_infos"].append({"kind": REPLICATION, "status": "replicating", "normal": True})
    state.setdefault("metrics", {}).setdefault(raw["identifier"], [0.0] * LAG_POINTS)


def _advance_modify(raw: Raw, converge_after: int) -> None:
    """AWS reports `available` for a while after accepting a class change, then `modifying`, then the class."""
    if raw["describes"] <= converge_after:
        return
    if raw["describes"] <= converge_after + MODIFYING_DESCRIBES:
        raw["status"] = "modifying"
        return
    raw["instance_class"], raw["status"], raw["modify"] = raw["modify"]["to"], "available", None
    raw["pending"].pop("DBInstanceClass", None)


def _modify_changes(raw: Raw | None, instance_class: str, apply_immediately: bool) -> bool:
    """Whether a modify changes anything: not when it asks again for what is already the case or under way."""
    if raw is None or raw["status"] != "available":
        return True  # refused: no effect is counted for a call that fails
    if raw["pending"].get("DBInstanceClass") == instance_class:
        return (raw["modify"] is not None) != apply_immediately
    return not (raw["instance_class"] == instance_class and not raw["pending"])


class ScriptedRds:
    """RdsPort over the scripted world: creates converge after `converge_after` describes, deletes likewise.

    Quirks modelled: a class change applied immediately still reads `available` (with the class pending) for
    `converge_after` describes, then `modifying` for two, and only then the new class; a busy instance refuses
    a modify or a snapshot with a TransientError (InvalidDBInstanceState); a failover moves the writer only
    after two describes of the cluster; a replica reports `read replication` only once available.
    """

    def __init__(self, world: ScriptedWorld) -> None:
        self.world = world

    def describe_instance(self, identifier: str) -> DbInstance | None:
        def apply(state: State) -> DbInstance | None:
            raw = state.setdefault("rds", {}).get(identifier)
            if raw is None:
                return None
            raw["describes"] += 1
            if raw["modify"] is not None:
                _advance_modify(raw, state["converge_after"])
            elif raw["status"] in ("creating", "modifying") and raw["describes"] > state["converge_after"]:
                raw["status"], raw["endpoint"] = "available", f"{identifier}.scripted.local"
                if raw["source_identifier"]:
                    _start_replicating(state, raw)
            elif raw["status"] == "deleting" and raw["describes"] > state["converge_after"]:
                del state["rds"][identifier]
                state.setdefault("metrics", {}).pop(identifier, None)
                return None
            return _as_instance(state, raw)

        return self.world.call("describe_instance", identifier, apply, effect=False)

    def create_read_replica(
        self, *, replica_id: str, source_id: str, instance_class: str, tags: dict[str, str]
    ) -> DbInstance:
        def apply(state: State) -> DbInstance:
            if replica_id in state.setdefault("rds", {}):
                raise AlreadyExists(f"DBInstanceAlreadyExists: {replica_id}")
            source = _existing(state, source_id)
            raw = _instance(
                replica_id,
                "creating",
                instance_class,
                source_identifier=source_id,
                tags=tags,
                engine=source["engine"],
                engine_version=source["engine_version"],
            )
            state["rds"][replica_id] = raw
            return _as_instance(state, raw)

        return self.world.call("create_read_replica", replica_id, apply, effect=True)

    def delete_instance(self, identifier: str) -> None:
        def apply(state: State) -> None:
            raw = _existing(state, identifier)
            raw["status"], raw["endpoint"], raw["describes"] = "deleting", None, 0

        self.world.call("delete_instance", identifier, apply, effect=True)

    def modify_instance_class(self, identifier: str, instance_class: str, *, apply_immediately: bool) -> DbInstance:
        """Asking again for the class an instance has, or for the change under way, is accepted and changes
        nothing; without apply_immediately the class waits for `apply_maintenance`."""

        def apply(state: State) -> DbInstance:
            raw = _existing(state, identifier)
            if raw["status"] != "available":
                raise TransientError(f"InvalidDBInstanceState: {identifier} is {raw['status']}", delay=_BUSY_DELAY)
            if _modify_changes(raw, instance_class, apply_immediately):
                raw["pending"].pop("DBInstanceClass", None)
                if instance_class != raw["instance_class"]:
                    raw["pending"]["DBInstanceClass"] = instance_class
                raw["modify"] = {"to": instance_class} if apply_immediately and raw["pending"] else None
                raw["describes"] = 0
            return _as_instance(state, raw)

        def changes(state: State) -> bool:
            return _modify_changes(state.get("rds", {}).get(identifier), instance_class, apply_immediately)

        return _changing(self.world, "modify_instance_class", identifier, apply, changes)

    def is_orderable(self, engine: str, engine_version: str, instance_class: str, zone: str | None) -> bool:
        """Every class is orderable, except those a test lists in `rds_unorderable`."""

        def apply(state: State) -> bool:
            return instance_class not in state.get("rds_unorderable", [])

        return self.world.call("is_orderable", instance_class, apply, effect=False)

    def create_snapshot(self, snapshot_id: str, instance_id: str, tags: dict[str, str]) -> DbSnapshot:
        def apply(state: State) -> DbSnapshot:
            if snapshot_id in state.setdefault("snapshots", {}):
                raise AlreadyExists(f"DBSnapshotAlreadyExists: {snapshot_id}")
            source = _existing(state, instance_id)
            if source["status"] != "available":
                raise TransientError(f"InvalidDBInstanceState: {instance_id} is {source['status']}", delay=_BUSY_DELAY)
            raw = {
                "identifier": snapshot_id,
                "instance": instance_id,
                "status": "creating",
                "arn": f"arn:aws:rds:us-east-1:{ACCOUNT}:snapshot:{snapshot_id}",
                "tags": dict(tags),
                "describes": 0,
            }
            state["snapshots"][snapshot_id] = raw
            return _as_snapshot(raw)

        return self.world.call("create_snapshot", snapshot_id, apply, effect=True)

    def describe_snapshot(self, snapshot_id: str) -> DbSnapshot | None:
        def apply(state: State) -> DbSnapshot | None:
            raw = state.setdefault("snapshots", {}).get(snapshot_id)
            if raw is None:
                return None
            raw["describes"] += 1
            if raw["status"] == "creating" and raw["describes"] > state["converge_after"]:
                raw["status"] = "available"
            return _as_snapshot(raw)

        return self.world.call("describe_snapshot", snapshot_id, apply, effect=False)

    def delete_snapshot(self, snapshot_id: str) -> None:
        def apply(state: State) -> None:
            if state.setdefault("snapshots", {}).pop(snapshot_id, None) is None:
                raise PermanentError(f"DBSnapshotNotFound: {snapshot_id}")

        self.world.call("delete_snapshot", snapshot_id, apply, effect=True)

    def describe_cluster(self, cluster_id: str) -> DbCluster | None:
        def apply(state: State) -> DbCluster | None:
            raw = state.setdefault("clusters", {}).get(cluster_id)
            if raw is None:
                return None
            failover = raw["failover"]
            if failover is not None:
                failover["describes"] += 1
                if failover["describes"] > FAILOVER_DESCRIBES:
                    raw["writer"], raw["status"], raw["failover"] = failover["to"], "available", None
            return _as_cluster(state, raw)

        return self.world.call("describe_cluster", cluster_id, apply, effect=False)

    def failover_cluster(self, cluster_id: str, target_instance: str) -> None:
        """Asynchronous: the cluster reads `failing-over` with the old writer for two describes. A failover to
        the writer itself is accepted and changes nothing (a choice of this world; AWS's answer is not modelled)."""

        def apply(state: State) -> None:
            raw = state.setdefault("clusters", {}).get(cluster_id)
            if raw is None:
                raise PermanentError(f"DBClusterNotFoundFault: {cluster_id}")
            if raw["failover"] is not None:
                raise TransientError(f"InvalidDBClusterStateFault: {cluster_id} is failing over", delay=_BUSY_DELAY)
            if target_instance not in _members(state, cluster_id):
                raise PermanentError(f"InvalidParameterValue: {target_instance} is not a member of {cluster_id}")
            if target_instance != raw["writer"]:
                raw["status"], raw["failover"] = "failing-over", {"to": target_instance, "describes": 0}

        def changes(state: State) -> bool:
            cluster = state.get("clusters", {}).get(cluster_id)
            return cluster is None or cluster["writer"] != target_instance or cluster["failover"] is not None

        _changing(self.world, "failover_cluster", cluster_id, apply, changes)

    def replica_lag_seconds(self, instance_id: str) -> list[float]:
        def apply(state: State) -> list[float]:
            return [float(p) for p in state.setdefault("metrics", {}).get(instance_id, [])]

        return self.world.call("replica_lag_seconds", instance_id, apply, effect=False)


def _as_snapshot(raw: Raw) -> DbSnapshot:
    return DbSnapshot(raw["identifier"], raw["instance"], raw["status"], raw["arn"], dict(raw["tags"]))


def _members(state: State, cluster_id: str) -> list[str]:
    return sorted(i for i, r in state.get("rds", {}).items() if r["cluster"] == cluster_id)


def _as_cluster(state: State, raw: Raw) -> DbCluster:
    members = tuple(ClusterMember(i, i == raw["writer"]) for i in _members(state, raw["identifier"]))
    return DbCluster(raw["identifier"], raw["status"], raw["engine"], members, dict(raw["tags"]))


# Secrets Manager -----------------------------------------------------------------------------------


def _secret(state: State, secret_id: str) -> Raw:
    raw: Raw | None = state.setdefault("secrets", {}).get(secret_id)
    if raw is None:
        raise PermanentError(f"ResourceNotFoundException: Secrets Manager can't find the secret {secret_id}")
    return raw


def _version(raw: Raw, secret_id: str, version_id: str) -> Raw:
    found: Raw | None = raw["versions"].get(version_id)
    if found is None:
        raise PermanentError(f"InvalidParameterException: {secret_id} has no version {version_id}")
    return found


class ScriptedSecrets:
    """SecretsPort over the scripted world.

    Quirks modelled: a version token names one value (the same value again is ignored, another is refused);
    a new pending version takes AWSPENDING off the old one; promoting needs the version that carries
    AWSCURRENT now, so a promote sent twice fails the second time, as does removing AWSPENDING from a version
    without it (moto refuses both; AWS refuses a mismatched RemoveFromVersionId): workflows observe first.
    """

    def __init__(self, world: ScriptedWorld) -> None:
        self.world = world

    def versions(self, secret_id: str) -> list[SecretVersion]:
        """The labelled versions; one without a label is deprecated and not listed."""

        def apply(state: State) -> list[SecretVersion]:
            versions = _secret(state, secret_id)["versions"]
            return [SecretVersion(vid, tuple(v["stages"])) for vid, v in versions.items() if v["stages"]]

        return self.world.call("versions", secret_id, apply, effect=False)

    def get_value(self, secret_id: str, *, version_id: str | None = None, stage: str | None = None) -> dict[str, Any]:
        def apply(state: State) -> dict[str, Any]:
            raw = _secret(state, secret_id)
            wanted = stage or (None if version_id else CURRENT)
            for vid, version in raw["versions"].items():
                if (version_id is None or vid == version_id) and (wanted is None or wanted in version["stages"]):
                    value: dict[str, Any] = copy.deepcopy(version["value"])
                    return value
            raise PermanentError(f"ResourceNotFoundException: {secret_id} has no version {version_id or wanted}")

        return self.world.call("get_value", secret_id, apply, effect=False)

    def put_pending(self, secret_id: str, token: str, value: dict[str, Any]) -> str:
        """A new version under `token`, labelled AWSPENDING; the same token and value again is a no-op (no effect
        counted), the same token with another value a PermanentError (ResourceExistsException)."""

        def apply(state: State) -> str:
            raw = _secret(state, secret_id)
            existing = raw["versions"].get(token)
            if existing is not None:
                if existing["value"] != value:
                    raise PermanentError(
                        f"ResourceExistsException: version {token} of {secret_id} exists with another value"
                    )
                return token
            for version in raw["versions"].values():
                version["stages"] = [s for s in version["stages"] if s != PENDING]
            raw["versions"][token] = {"value": copy.deepcopy(value), "stages": [PENDING]}
            return token

        def changes(state: State) -> bool:
            return token not in state.get("secrets", {}).get(secret_id, {}).get("versions", {})

        return _changing(self.world, "put_pending", f"{secret_id}/{token}", apply, changes)

    def promote(self, secret_id: str, version_id: str, current_version_id: str) -> None:
        def apply(state: State) -> None:
            raw = _secret(state, secret_id)
            target, current = _version(raw, secret_id, version_id), _version(raw, secret_id, current_version_id)
            if CURRENT not in current["stages"]:
                raise PermanentError(
                    f"InvalidParameterException: {CURRENT} is not attached to {current_version_id} of {secret_id}"
                )
            if target is current:
                return
            for version in raw["versions"].values():
                version["stages"] = [s for s in version["stages"] if s != PREVIOUS]
            current["stages"] = [s for s in current["stages"] if s != CURRENT] + [PREVIOUS]
            target["stages"].append(CURRENT)

        _changing(self.world, "promote", secret_id, apply, lambda _: version_id != current_version_id)

    def remove_pending(self, secret_id: str, version_id: str) -> None:
        def apply(state: State) -> None:
            version = _version(_secret(state, secret_id), secret_id, version_id)
            if PENDING not in version["stages"]:
                raise PermanentError(f"InvalidParameterException: {PENDING} is not attached to {version_id}")
            version["stages"].remove(PENDING)

        self.world.call("remove_pending", f"{secret_id}/{version_id}", apply, effect=True)

    def new_password(self) -> str:
        """32 letters and digits, each kind present (GetRandomPassword without punctuation); never stored."""

        def apply(state: State) -> str:
            return _password()

        return self.world.call("new_password", "", apply, effect=False)


def _password(length: int = 32) -> str:
    """Random letters and digits with each kind present, like RequireEachIncludedType."""
    kinds = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
    while True:
        password = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))
        if all(any(c in kind for c in password) for kind in kinds):
            return password


# IAM -----------------------------------------------------------------------------------------------


def _iam(state: State) -> Raw:
    raw: Raw = state.setdefault("iam", {"roles": {}, "policies": []})
    return raw


def _role(name: str, trusted_service: str, tags: dict[str, str] | None, policies: Sequence[str], hidden: int) -> Raw:
    return {
        "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "trusted": [trusted_service],
        "tags": dict(tags or {}),
        "policies": list(policies),
        "hidden": hidden,  # get_role calls that still miss it
    }


def _as_role(name: str, raw: Raw) -> IamRole:
    return IamRole(name, raw["arn"], dict(raw["tags"]), tuple(raw["trusted"]))


def _existing_role(state: State, name: str) -> Raw:
    raw: Raw | None = _iam(state)["roles"].get(name)
    if raw is None:
        raise PermanentError(f"NoSuchEntity: role {name} not found")
    return raw


class ScriptedIam:
    """IamPort over the scripted world.

    Quirks modelled: a created role is missed by the first `iam_lag` get_role calls (eventual consistency);
    attaching an attached policy, or detaching a detached one, changes nothing and is not counted; a policy
    that does not exist cannot be attached (NoSuchEntity); a role with policies cannot be deleted
    (DeleteConflict).
    """

    def __init__(self, world: ScriptedWorld) -> None:
        self.world = world

    def get_role(self, name: str) -> IamRole | None:
        def apply(state: State) -> IamRole | None:
            raw = _iam(state)["roles"].get(name)
            if raw is None:
                return None
            if raw["hidden"] > 0:
                raw["hidden"] -= 1
                return None
            return _as_role(name, raw)

        return self.world.call("get_role", name, apply, effect=False)

    def create_role(self, name: str, trusted_service: str, tags: dict[str, str]) -> IamRole:
        def apply(state: State) -> IamRole:
            roles = _iam(state)["roles"]
            if name in roles:
                raise AlreadyExists(f"EntityAlreadyExists: role with name {name} already exists")
            roles[name] = _role(name, trusted_service, tags, (), int(state.get("iam_lag", 0)))
            return _as_role(name, roles[name])

        return self.world.call("create_role", name, apply, effect=True)

    def attached_policies(self, name: str) -> list[str]:
        def apply(state: State) -> list[str]:
            return list(_existing_role(state, name)["policies"])

        return self.world.call("attached_policies", name, apply, effect=False)

    def attach_policy(self, name: str, policy_arn: str) -> None:
        def apply(state: State) -> None:
            role = _existing_role(state, name)
            if policy_arn not in _iam(state)["policies"]:
                raise PermanentError(f"NoSuchEntity: policy {policy_arn} does not exist or is not attachable")
            if policy_arn not in role["policies"]:
                role["policies"].append(policy_arn)

        def changes(state: State) -> bool:
            role = state.get("iam", {}).get("roles", {}).get(name)
            return role is None or policy_arn not in role["policies"]

        _changing(self.world, "attach_policy", f"{name}/{policy_arn}", apply, changes)

    def detach_policy(self, name: str, policy_arn: str) -> None:
        """Detaching what is not attached (or from a role that is gone) is a no-op, as the boto adapter makes it."""

        def apply(state: State) -> None:
            role = _iam(state)["roles"].get(name)
            if role is not None and policy_arn in role["policies"]:
                role["policies"].remove(policy_arn)

        def changes(state: State) -> bool:
            role = state.get("iam", {}).get("roles", {}).get(name)
            return role is not None and policy_arn in role["policies"]

        _changing(self.world, "detach_policy", f"{name}/{policy_arn}", apply, changes)

    def delete_role(self, name: str) -> None:
        def apply(state: State) -> None:
            role = _existing_role(state, name)
            if role["policies"]:
                raise PermanentError(f"DeleteConflict: detach the policies of {name} before deleting it")
            del _iam(state)["roles"][name]

        self.world.call("delete_role", name, apply, effect=True)

    def policy_exists(self, policy_arn: str) -> bool:
        def apply(state: State) -> bool:
            return policy_arn in _iam(state)["policies"]

        return self.world.call("policy_exists", policy_arn, apply, effect=False)
