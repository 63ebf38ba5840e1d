"""AWS through boto3: explicit standard retries, bounded timeouts, errors mapped to the step contract."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from adapters.postgres import PgAdapter, database
from workflows.config import Environment
from workflows.errors import AlreadyExists, ConfigError, OutcomeUnknown, PermanentError, TransientError
from workflows.outside import (
    CURRENT,
    PENDING,
    ClusterMember,
    DbCluster,
    DbInstance,
    DbSnapshot,
    IamRole,
    SecretVersion,
    StatusInfo,
)
from workflows.redaction import redact_text

log = structlog.get_logger("opsbot.aws")

_THROTTLING = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
_TRANSIENT = {"ServiceUnavailable", "InternalFailure", "InternalError", "RequestTimeout", "InternalServiceError"}
_TRANSIENT |= _THROTTLING | {"ConcurrentModification"}  # IAM's: the other change won, ours was not applied
_BUSY = {"InvalidDBInstanceState", "InvalidDBInstanceStateFault", "InvalidDBClusterStateFault"}
_EXISTS = {"DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault", "DBSnapshotAlreadyExists"}
_EXISTS |= {"DBSnapshotAlreadyExistsFault", "EntityAlreadyExists", "ResourceExistsException"}
_INSTANCE_NOT_FOUND = frozenset({"DBInstanceNotFound", "DBInstanceNotFoundFault"})
_SNAPSHOT_NOT_FOUND = frozenset({"DBSnapshotNotFound", "DBSnapshotNotFoundFault"})
_CLUSTER_NOT_FOUND = frozenset({"DBClusterNotFoundFault", "DBClusterNotFound"})
_NO_SUCH_ENTITY = frozenset({"NoSuchEntity", "NoSuchEntityException"})
_SECRET_NOT_FOUND = frozenset({"ResourceNotFoundException"})
# What an endpoint answers for an action it does not implement (AWS itself answers InvalidAction).
_UNSUPPORTED = frozenset({"InvalidAction", "NotImplemented", "UnsupportedOperation"})
_BUSY_DELAY = 30.0  # a modifying or backing-up instance stays busy for minutes

ClientHook = Callable[[Any], None]
Clock = Callable[[], datetime]


def boto_config(attempts: int = 3, read_timeout: float = 30.0) -> Config:
    """Explicit standard retry mode and bounded timeouts (botocore's legacy default mode is not used)."""
    # total_max_attempts counts the first try; botocore's max_attempts would count retries only.
    return Config(
        retries={"mode": "standard", "total_max_attempts": attempts}, connect_timeout=5, read_timeout=read_timeout
    )


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError (`DBInstanceNotFound`, `Throttling`, ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def classify(exc: Exception, operation: str) -> Exception:
    """Map a botocore failure onto transient / permanent / outcome-unknown, with secrets scrubbed."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = redact_text(exc.response.get("Error", {}).get("Message", "") or str(exc))
        if code in _EXISTS:
            return AlreadyExists(f"{operation}: {message}")
        if code in _TRANSIENT:
            return TransientError(f"{operation}: {code}: {message}", delay=5.0 if code in _THROTTLING else None)
        if code in _BUSY:
            return TransientError(f"{operation}: {code}: the resource is busy ({message})", delay=_BUSY_DELAY)
        return PermanentError(
            f"{operation}: {code}: {message}", guidance="check the parameters and the account's limits"
        )
    if isinstance(exc, ConnectTimeoutError | EndpointConnectionError):
        return TransientError(f"{operation}: could not reach AWS ({type(exc).__name__})")
    if isinstance(exc, ReadTimeoutError | ConnectionClosedError):
        return OutcomeUnknown(f"{operation}: the request was sent but no answer came back ({type(exc).__name__})")
    if isinstance(exc, BotoCoreError):
        return OutcomeUnknown(f"{operation}: {redact_text(str(exc))}")
    return exc


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _tags(raw: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw or []}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


class _Boto:
    """A pair of clients for one service: reads retry inside botocore, mutating calls are sent once.

    A lost answer to a mutating call then surfaces as an unknown outcome that the executor resolves by
    observation, rather than by botocore sending it again blindly.
    """

    def __init__(self, reads: Any, writes: Any) -> None:
        self._reads, self._writes = reads, writes

    def _read(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        return _invoke(self._reads, operation, kwargs)

    def _write(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        return _invoke(self._writes, operation, kwargs)

    def _lookup(self, operation: str, missing: Collection[str], **kwargs: Any) -> dict[str, Any] | None:
        """A read whose `missing` error codes mean "there is no such thing": None, never an error."""
        try:
            result: dict[str, Any] = getattr(self._reads, operation)(**kwargs)
        except ClientError as exc:
            if error_code(exc) in missing:
                return None
            raise classify(exc, operation) from None
        except BotoCoreError as exc:
            raise classify(exc, operation) from None
        return result

    def _pages(self, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        try:
            yield from self._reads.get_paginator(operation).paginate(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, operation) from None


def _invoke(client: Any, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        result: dict[str, Any] = getattr(client, operation)(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, operation) from None
    return result


# RDS ---------------------------------------------------------------------------------------------


class RdsAdapter(_Boto):
    """RdsPort on boto3, with CloudWatch (a reads client, same region) for the instances' metrics."""

    def __init__(self, reads: Any, writes: Any, metrics: Any, now: Clock = _utcnow) -> None:
        super().__init__(reads, writes)
        self._metrics, self._now = metrics, now

    def describe_instance(self, identifier: str) -> DbInstance | None:
        found = self._lookup("describe_db_instances", _INSTANCE_NOT_FOUND, DBInstanceIdentifier=identifier)
        instances = found["DBInstances"] if found else []
        return _instance(instances[0]) if instances else None

    def create_read_replica(
        self, *, replica_id: str, source_id: str, instance_class: str, tags: dict[str, str]
    ) -> DbInstance:
        raw = self._write(
            "create_db_instance_read_replica",
            DBInstanceIdentifier=replica_id,
            SourceDBInstanceIdentifier=source_id,
            DBInstanceClass=instance_class,
            Tags=_tag_list(tags),
        )["DBInstance"]
        return _instance(raw)

    def delete_instance(self, identifier: str) -> None:
        self._write("delete_db_instance", DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)

    def modify_instance_class(self, identifier: str, instance_class: str, *, apply_immediately: bool) -> DbInstance:
        raw = self._write(
            "modify_db_instance",
            DBInstanceIdentifier=identifier,
            DBInstanceClass=instance_class,
            ApplyImmediately=apply_immediately,
        )["DBInstance"]
        return _instance(raw)

    def is_orderable(self, engine: str, engine_version: str, instance_class: str, zone: str | None) -> bool:
        """Whether RDS offers the class for this engine version (in `zone`, when given).

        No option for the class is an answer: not orderable. But when RDS lists no option at all for a running
        instance's engine, the catalogue cannot tell (moto has none for postgres; an endpoint may not implement
        the action): then True, with a warning, leaving the check to ModifyDBInstance and
        CreateDBInstanceReadReplica, which refuse a class that is not orderable before changing anything.
        The class is matched here too, since moto ignores the DBInstanceClass filter.
        """
        base: dict[str, Any] = {"Engine": engine}
        if engine_version:
            base["EngineVersion"] = engine_version
        try:
            for page in self._reads.get_paginator("describe_orderable_db_instance_options").paginate(
                **base, DBInstanceClass=instance_class
            ):
                for option in page.get("OrderableDBInstanceOptions", []):
                    zones = {z.get("Name") for z in option.get("AvailabilityZones", [])}
                    if option.get("DBInstanceClass") == instance_class and (zone is None or zone in zones):
                        return True
            catalogue = self._reads.describe_orderable_db_instance_options(**base, MaxRecords=20)
        except ClientError as exc:
            if error_code(exc) not in _UNSUPPORTED:
                raise classify(exc, "describe_orderable_db_instance_options") from None
            catalogue = {}
        except BotoCoreError as exc:
            raise classify(exc, "describe_orderable_db_instance_options") from None
        if catalogue.get("OrderableDBInstanceOptions"):
            return False
        log.warning(
            "orderable_check_unavailable", engine=engine, engine_version=engine_version, instance_class=instance_class
        )
        return True

    def create_snapshot(self, snapshot_id: str, instance_id: str, tags: dict[str, str]) -> DbSnapshot:
        raw = self._write(
            "create_db_snapshot",
            DBSnapshotIdentifier=snapshot_id,
            DBInstanceIdentifier=instance_id,
            Tags=_tag_list(tags),
        )["DBSnapshot"]
        return _snapshot(raw)

    def describe_snapshot(self, snapshot_id: str) -> DbSnapshot | None:
        found = self._lookup("describe_db_snapshots", _SNAPSHOT_NOT_FOUND, DBSnapshotIdentifier=snapshot_id)
        snapshots = found["DBSnapshots"] if found else []
        return _snapshot(snapshots[0]) if snapshots else None

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._write("delete_db_snapshot", DBSnapshotIdentifier=snapshot_id)

    def describe_cluster(self, cluster_id: str) -> DbCluster | None:
        found = self._lookup("describe_db_clusters", _CLUSTER_NOT_FOUND, DBClusterIdentifier=cluster_id)
        clusters = found["DBClusters"] if found else []
        return _cluster(clusters[0]) if clusters else None

    def failover_cluster(self, cluster_id: str, target_instance: str) -> None:
        self._write("failover_db_cluster", DBClusterIdentifier=cluster_id, TargetDBInstanceIdentifier=target_instance)

    def replica_lag_seconds(self, instance_id: str) -> list[float]:
        """The one-minute Maximum of ReplicaLag over the last five minutes, newest first (-1 kept as reported)."""
        end = self._now()
        points = _invoke(
            self._metrics,
            "get_metric_statistics",
            {
                "Namespace": "AWS/RDS",
                "MetricName": "ReplicaLag",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance_id}],
                "StartTime": end - timedelta(minutes=5),
                "EndTime": end,
                "Period": 60,
                "Statistics": ["Maximum"],
            },
        )["Datapoints"]
        newest_first = sorted(points, key=lambda p: p["Timestamp"], reverse=True)
        return [float(p["Maximum"]) for p in newest_first if "Maximum" in p]


def _instance(raw: dict[str, Any]) -> DbInstance:
    endpoint = raw.get("Endpoint") or {}
    return DbInstance(
        identifier=raw["DBInstanceIdentifier"],
        status=raw.get("DBInstanceStatus", "unknown"),
        instance_class=raw.get("DBInstanceClass", ""),
        engine=raw.get("Engine", ""),
        arn=raw.get("DBInstanceArn", ""),
        endpoint=endpoint.get("Address"),
        source_identifier=raw.get("ReadReplicaSourceDBInstanceIdentifier"),
        tags=_tags(raw.get("TagList")),
        engine_version=raw.get("EngineVersion", ""),
        availability_zone=raw.get("AvailabilityZone"),
        multi_az=bool(raw.get("MultiAZ", False)),
        pending=dict(raw.get("PendingModifiedValues") or {}),
        status_infos=tuple(
            StatusInfo(kind=s.get("StatusType", ""), status=s.get("Status", ""), normal=bool(s.get("Normal", False)))
            for s in raw.get("StatusInfos") or []
        ),
        maintenance_window=raw.get("PreferredMaintenanceWindow"),
        cluster=raw.get("DBClusterIdentifier"),
        replicas=tuple(raw.get("ReadReplicaDBInstanceIdentifiers") or ()),
        port=endpoint.get("Port"),
    )


def _snapshot(raw: dict[str, Any]) -> DbSnapshot:
    return DbSnapshot(
        identifier=raw["DBSnapshotIdentifier"],
        instance=raw.get("DBInstanceIdentifier", ""),
        status=raw.get("Status", "unknown"),
        arn=raw.get("DBSnapshotArn", ""),
        tags=_tags(raw.get("TagList")),
    )


def _cluster(raw: dict[str, Any]) -> DbCluster:
    return DbCluster(
        identifier=raw["DBClusterIdentifier"],
        status=raw.get("Status", "unknown"),
        engine=raw.get("Engine", ""),
        members=tuple(
            ClusterMember(instance=m["DBInstanceIdentifier"], writer=bool(m.get("IsClusterWriter", False)))
            for m in raw.get("DBClusterMembers") or []
        ),
        tags=_tags(raw.get("TagList")),
    )


# Secrets Manager ---------------------------------------------------------------------------------


def _secret_string(value: dict[str, Any]) -> str:
    """One spelling per value, so that sending the same value again is byte-for-byte the same request."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class SecretsAdapter(_Boto):
    """SecretsPort on boto3. No message it raises holds a secret value: AWS echoes none, and neither do we."""

    def versions(self, secret_id: str) -> list[SecretVersion]:
        """The versions that carry a staging label (AWS's IncludeDeprecated=False; moto ignores the flag)."""
        found: list[SecretVersion] = []
        kwargs: dict[str, Any] = {"SecretId": secret_id, "IncludeDeprecated": False}
        while True:
            page = self._read("list_secret_version_ids", **kwargs)
            found += [
                SecretVersion(v["VersionId"], tuple(v["VersionStages"]))
                for v in page.get("Versions", [])
                if v.get("VersionStages")
            ]
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def get_value(self, secret_id: str, *, version_id: str | None = None, stage: str | None = None) -> dict[str, Any]:
        """The value of a version, or of a stage; AWSCURRENT when neither is named.

        AWSCURRENT is asked for by name, as AWS defaults to it: moto's default is the first version, even after
        the label has moved.
        """
        kwargs: dict[str, Any] = {"SecretId": secret_id}
        if version_id is not None:
            kwargs["VersionId"] = version_id
        if stage is not None or version_id is None:
            kwargs["VersionStage"] = stage or CURRENT
        return _parse(secret_id, self._read("get_secret_value", **kwargs))

    def put_pending(self, secret_id: str, token: str, value: dict[str, Any]) -> str:
        """PutSecretValue under `token`, after looking for a version of that token, as AWS's rotation templates do.

        The same value again is a no-op and another value a PermanentError, whatever the endpoint does: moto
        overwrites a version that still carries AWSPENDING instead of refusing (AWS: ResourceExistsException,
        which is an AlreadyExists here when a concurrent put wins the race).
        """
        existing = self._lookup("get_secret_value", _SECRET_NOT_FOUND, SecretId=secret_id, VersionId=token)
        if existing is not None:
            if _parse(secret_id, existing) != value:
                raise PermanentError(
                    f"put_pending: version {token} of {secret_id} exists with another value",
                    guidance="a version token is used for one value only; start the rotation with a new token",
                )
            return token
        put = self._write(
            "put_secret_value",
            SecretId=secret_id,
            ClientRequestToken=token,
            SecretString=_secret_string(value),
            VersionStages=[PENDING],
        )
        return str(put["VersionId"])

    def promote(self, secret_id: str, version_id: str, current_version_id: str) -> None:
        self._write(
            "update_secret_version_stage",
            SecretId=secret_id,
            VersionStage=CURRENT,
            MoveToVersionId=version_id,
            RemoveFromVersionId=current_version_id,
        )

    def remove_pending(self, secret_id: str, version_id: str) -> None:
        self._write(
            "update_secret_version_stage", SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=version_id
        )

    def new_password(self) -> str:
        answer = self._read(
            "get_random_password", PasswordLength=32, ExcludePunctuation=True, RequireEachIncludedType=True
        )
        return str(answer["RandomPassword"])


def _parse(secret_id: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The SecretString as a JSON object; anything else is named, never quoted."""
    text = answer.get("SecretString")
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        value = None  # the decoder's error quotes the document: it must not travel
    if not isinstance(value, dict):
        raise PermanentError(
            f"secret {secret_id} is not in RDS JSON format (a JSON object with engine, host, port, username, "
            "password, dbname)",
            guidance="store the secret as RDS does, or point the workflow at an RDS-format secret",
        )
    return value


# IAM -----------------------------------------------------------------------------------------------


def trust_policy(service: str) -> dict[str, Any]:
    """The standard trust policy letting one AWS service principal assume a role."""
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return {"Version": "2012-10-17", "Statement": [statement]}


def trusted_services(document: dict[str, Any] | str | None) -> tuple[str, ...]:
    """The service principals an AssumeRolePolicyDocument allows (boto3 hands it over decoded; raw is URL-encoded)."""
    doc = json.loads(unquote(document)) if isinstance(document, str) else document or {}
    statements = doc.get("Statement", [])
    services: list[str] = []
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Allow" or not isinstance(statement.get("Principal"), dict):
            continue
        named = statement["Principal"].get("Service", [])
        services += [named] if isinstance(named, str) else list(named)
    return tuple(sorted(set(services)))


class IamAdapter(_Boto):
    """IamPort on boto3 (one global endpoint)."""

    def get_role(self, name: str) -> IamRole | None:
        found = self._lookup("get_role", _NO_SUCH_ENTITY, RoleName=name)
        if found is None:
            return None
        raw = found["Role"]
        tags = (
            raw["Tags"]
            if "Tags" in raw
            else [t for p in self._pages("list_role_tags", RoleName=name) for t in p["Tags"]]
        )
        return _role(raw, tags)

    def create_role(self, name: str, trusted_service: str, tags: dict[str, str]) -> IamRole:
        kwargs: dict[str, Any] = {
            "RoleName": name,
            "AssumeRolePolicyDocument": json.dumps(trust_policy(trusted_service)),
        }
        if tags:
            kwargs["Tags"] = _tag_list(tags)
        raw = self._write("create_role", **kwargs)["Role"]
        return _role(raw, raw.get("Tags", _tag_list(tags)))

    def attached_policies(self, name: str) -> list[str]:
        pages = self._pages("list_attached_role_policies", RoleName=name)
        return [p["PolicyArn"] for page in pages for p in page["AttachedPolicies"]]

    def attach_policy(self, name: str, policy_arn: str) -> None:
        self._write("attach_role_policy", RoleName=name, PolicyArn=policy_arn)

    def detach_policy(self, name: str, policy_arn: str) -> None:
        """Detaching a policy that is not attached (NoSuchEntity) changes nothing, so it is not an error."""
        try:
            self._writes.detach_role_policy(RoleName=name, PolicyArn=policy_arn)
        except ClientError as exc:
            if error_code(exc) not in _NO_SUCH_ENTITY:
                raise classify(exc, "detach_role_policy") from None
        except BotoCoreError as exc:
            raise classify(exc, "detach_role_policy") from None

    def delete_role(self, name: str) -> None:
        """A role that is gone already is a PermanentError (NoSuchEntity), like delete_instance: callers observe."""
        self._write("delete_role", RoleName=name)

    def policy_exists(self, policy_arn: str) -> bool:
        return self._lookup("get_policy", _NO_SUCH_ENTITY, PolicyArn=policy_arn) is not None


def _role(raw: dict[str, Any], tags: list[dict[str, str]]) -> IamRole:
    return IamRole(
        name=raw["RoleName"],
        arn=raw["Arn"],
        tags=_tags(tags),
        trusted_services=trusted_services(raw.get("AssumeRolePolicyDocument")),
    )


# The factory ---------------------------------------------------------------------------------------

_IAM_REGION = "us-east-1"  # IAM is global; its endpoint lives in us-east-1


class BotoAdapters:
    """AdapterFactory: AWS through boto3 (`client_hook` lets tests register botocore event handlers on each
    client) and the configured PostgreSQL databases."""

    def __init__(self, endpoint_url: str | None = None, client_hook: ClientHook | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.client_hook = client_hook
        self._clients: dict[tuple[str, str, int], Any] = {}
        self._lock = threading.Lock()

    def _client(self, service: str, region: str, attempts: int) -> Any:
        """One cached client per service, region and attempt count (clients are thread-safe, sessions are not)."""
        key = (service, region, attempts)
        with self._lock:
            if key not in self._clients:
                session = boto3.session.Session()
                client: Any = session.client(  # type: ignore[call-overload]
                    service, region_name=region, endpoint_url=self.endpoint_url, config=boto_config(attempts)
                )
                if self.client_hook:
                    self.client_hook(client)
                self._clients[key] = client
            return self._clients[key]

    def _pair(self, service: str, region: str) -> tuple[Any, Any]:
        return self._client(service, region, 3), self._client(service, region, 1)

    def rds(self, region: str) -> RdsAdapter:
        return RdsAdapter(*self._pair("rds", region), metrics=self._client("cloudwatch", region, 3))

    def secrets(self, region: str) -> SecretsAdapter:
        return SecretsAdapter(*self._pair("secretsmanager", region))

    def iam(self) -> IamAdapter:
        return IamAdapter(*self._pair("iam", _IAM_REGION))

    def database(self, env: Environment, name: str) -> PgAdapter:
        try:
            ref = env.databases[name]
        except KeyError:
            raise ConfigError(
                f"no database {name!r} in this environment (configured: {', '.join(env.databases) or 'none'})"
            ) from None
        return database(ref, name)
