"""The outside world as workflows see it: RDS, Secrets Manager, IAM and PostgreSQL, through small Protocols.

Every method raises the step contract (TransientError, PermanentError, AlreadyExists, OutcomeUnknown), never a
client or driver exception, and nothing it raises or returns carries a secret in clear (passwords are handled by
`SecretsPort.new_password`, `DatabasePort.set_password` and `DatabasePort.can_login` only, and never logged).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from workflows.config import Environment

# RDS ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """One entry of an instance's StatusInfos (`read replication`: `replicating`, `error`, `stopped`, ...)."""

    kind: str
    status: str
    normal: bool


@dataclass(frozen=True, slots=True)
class DbInstance:
    """What the engine knows of an RDS instance."""

    identifier: str
    status: str
    instance_class: str
    engine: str
    arn: str
    endpoint: str | None
    source_identifier: str | None
    tags: dict[str, str]
    engine_version: str = ""
    availability_zone: str | None = None
    multi_az: bool = False
    pending: dict[str, Any] = field(default_factory=dict)  # PendingModifiedValues, as AWS reports them
    status_infos: tuple[StatusInfo, ...] = ()
    maintenance_window: str | None = None  # PreferredMaintenanceWindow, e.g. "sun:05:00-sun:05:30"
    cluster: str | None = None  # DBClusterIdentifier for an Aurora member
    replicas: tuple[str, ...] = ()  # ReadReplicaDBInstanceIdentifiers
    port: int | None = None


@dataclass(frozen=True, slots=True)
class DbSnapshot:
    identifier: str
    instance: str
    status: str  # creating | available | deleting | failed ...
    arn: str
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class ClusterMember:
    instance: str
    writer: bool


@dataclass(frozen=True, slots=True)
class DbCluster:
    identifier: str
    status: str
    engine: str
    members: tuple[ClusterMember, ...]
    tags: dict[str, str]

    @property
    def writer(self) -> str | None:
        return next((m.instance for m in self.members if m.writer), None)

    @property
    def readers(self) -> tuple[str, ...]:
        return tuple(sorted(m.instance for m in self.members if not m.writer))


class RdsPort(Protocol):
    """RDS (and the CloudWatch metrics of its instances) as the engine needs it."""

    def describe_instance(self, identifier: str) -> DbInstance | None: ...
    def create_read_replica(
        self, *, replica_id: str, source_id: str, instance_class: str, tags: dict[str, str]
    ) -> DbInstance: ...
    def delete_instance(self, identifier: str) -> None:
        """Delete without a final snapshot (replicas cannot take one)."""
        ...

    def modify_instance_class(self, identifier: str, instance_class: str, *, apply_immediately: bool) -> DbInstance:
        """ModifyDBInstance for the class only. There is no idempotency token: callers observe first."""
        ...

    def is_orderable(self, engine: str, engine_version: str, instance_class: str, zone: str | None) -> bool: ...
    def create_snapshot(self, snapshot_id: str, instance_id: str, tags: dict[str, str]) -> DbSnapshot: ...
    def describe_snapshot(self, snapshot_id: str) -> DbSnapshot | None:
        """None when there is no such snapshot (never treated as done, unlike botocore's waiter)."""
        ...

    def delete_snapshot(self, snapshot_id: str) -> None: ...
    def describe_cluster(self, cluster_id: str) -> DbCluster | None: ...
    def failover_cluster(self, cluster_id: str, target_instance: str) -> None: ...
    def replica_lag_seconds(self, instance_id: str) -> list[float]:
        """CloudWatch `ReplicaLag`: the one-minute Maximum datapoints of the last five minutes, newest first
        (empty without fresh data; -1 as reported, which callers treat as unhealthy)."""
        ...


# Secrets Manager ---------------------------------------------------------------------------------

PENDING, CURRENT, PREVIOUS = "AWSPENDING", "AWSCURRENT", "AWSPREVIOUS"


@dataclass(frozen=True, slots=True)
class SecretVersion:
    version_id: str
    stages: tuple[str, ...]


class SecretsPort(Protocol):
    """Secrets Manager, in the terms of its rotation protocol."""

    def versions(self, secret_id: str) -> list[SecretVersion]: ...
    def get_value(self, secret_id: str, *, version_id: str | None = None, stage: str | None = None) -> dict[str, Any]:
        """The secret's JSON value (RDS format: engine, host, port, username, password, dbname)."""
        ...

    def put_pending(self, secret_id: str, token: str, value: dict[str, Any]) -> str:
        """PutSecretValue with ClientRequestToken=`token` and stage AWSPENDING; returns the version id (the token).

        Sending the same token and value again is a no-op, as in AWS; the same token with another value fails.
        """
        ...

    def promote(self, secret_id: str, version_id: str, current_version_id: str) -> None:
        """Move AWSCURRENT to `version_id` (AWS then labels the former current version AWSPREVIOUS)."""
        ...

    def remove_pending(self, secret_id: str, version_id: str) -> None: ...
    def new_password(self) -> str:
        """GetRandomPassword, with characters safe in a DSN and in SQL."""
        ...


# IAM -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IamRole:
    name: str
    arn: str
    tags: dict[str, str]
    trusted_services: tuple[str, ...]


class IamPort(Protocol):
    """IAM (global). Reads may lag writes by seconds: callers verify within a convergence window."""

    def get_role(self, name: str) -> IamRole | None: ...
    def create_role(self, name: str, trusted_service: str, tags: dict[str, str]) -> IamRole:
        """AlreadyExists when a role of that name exists (whoever made it)."""
        ...

    def attached_policies(self, name: str) -> list[str]: ...
    def attach_policy(self, name: str, policy_arn: str) -> None:
        """Naturally idempotent in IAM: attaching an attached policy changes nothing."""
        ...

    def detach_policy(self, name: str, policy_arn: str) -> None: ...
    def delete_role(self, name: str) -> None: ...
    def policy_exists(self, policy_arn: str) -> bool: ...


# PostgreSQL ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PgSession:
    """Another session in the database, as an operator needs to find it (never its query text)."""

    pid: int
    user: str
    application: str
    state: str
    seconds: float  # how long it has been in its transaction (or in its state when not in one)
    mode: str = ""  # the lock it holds, when found by lock preflight
    relation: str = ""

    def describe(self) -> str:
        held = f" holding {self.mode} on {self.relation}" if self.mode else ""
        app = self.application or "no application name"
        return f"pid {self.pid} ({self.user}, {app}, {self.state} for {self.seconds:.0f}s){held}"


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    version: str
    checksum: str


class DatabasePort(Protocol):
    """A configured PostgreSQL database (its admin DSN); every transaction short, under the configured timeouts."""

    def fetch_value(self, sql: str, params: tuple[Any, ...] = ()) -> Any: ...
    def advisory_lock(self, key: str) -> AbstractContextManager[None]:
        """A session-level advisory lock, taken with pg_try_advisory_lock on a connection that never sits in an
        open transaction; held by another session is a TransientError."""
        ...

    def replication_lag_seconds(self) -> float | None:
        """On a replica: now() - pg_last_xact_replay_timestamp(); None on a primary."""
        ...

    def replicas_lag_seconds(self) -> dict[str, float]:
        """On a primary: each standby's replay lag from pg_stat_replication (application_name -> seconds)."""
        ...

    # migrations
    def applied_migrations(self) -> list[AppliedMigration]:
        """Rows of opsbot_schema_migrations (empty when the table does not exist yet)."""
        ...

    def apply_migration(self, version: str, checksum: str, sql: str, *, transactional: bool) -> None:
        """Transactional: the file and its version row in one transaction. Otherwise: the single statement in
        autocommit (under the timeouts), then the version row. Lock timeout is a TransientError."""
        ...

    def index_valid(self, name: str) -> bool | None:
        """pg_index.indisvalid of an index by name; None when there is no such index."""
        ...

    def index_build_in_progress(self, name: str) -> bool:
        """Whether any session is building the index now (pg_stat_progress_create_index)."""
        ...

    def drop_index(self, name: str) -> None:
        """DROP INDEX CONCURRENTLY IF EXISTS."""
        ...

    def conflicting_sessions(self, relations: list[str], mode: str) -> list[PgSession]:
        """Other sessions holding a lock on one of `relations` that conflicts with `mode`."""
        ...

    def long_transactions(self, min_seconds: float) -> list[PgSession]: ...

    # roles and passwords (never logged, never returned)
    def role_exists(self, role: str) -> bool: ...
    def create_clone(self, role: str, clone: str) -> None:
        """CREATE ROLE <clone> LOGIN, granted <role> (so it has the role's privileges); no-op if it exists."""
        ...

    def set_password(self, role: str, password: str) -> None:
        """ALTER ROLE ... PASSWORD with a SCRAM-SHA-256 verifier computed here: the clear text never reaches
        the server, its logs or pg_stat_activity."""
        ...

    def can_login(self, role: str, password: str) -> bool:
        """A fresh connection as `role` with `password` to the same host, port and database."""
        ...

    def endpoint(self) -> tuple[str, int, str]:
        """(host, port, dbname) of this database, for an RDS-format secret."""
        ...


class AdapterFactory(Protocol):
    """Builds adapters for an environment; the engine never constructs clients itself."""

    def rds(self, region: str) -> RdsPort: ...
    def secrets(self, region: str) -> SecretsPort: ...
    def iam(self) -> IamPort: ...
    def database(self, env: Environment, name: str) -> DatabasePort: ...
