"""AWS through boto3: explicit standard retries, bounded timeouts, errors mapped to the step contract."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
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
from workflows.ports import DbInstance
from workflows.redaction import redact_text

_THROTTLING = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
_TRANSIENT = {"ServiceUnavailable", "InternalFailure", "InternalError", "RequestTimeout"} | _THROTTLING
_NOT_FOUND = {"DBInstanceNotFound", "DBInstanceNotFoundFault"}
_EXISTS = {"DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault"}

ClientHook = Callable[[Any], None]


def boto_config(attempts: int = 3, read_timeout: float = 30.0) -> Config:
    """Explicit standard retry mode and bounded timeouts (botocore's legacy default mode is not used)."""
    # total_max_attempts counts the first try; botocore's max_attempts would count retries only.
    return Config(
        retries={"mode": "standard", "total_max_attempts": attempts}, connect_timeout=5, read_timeout=read_timeout
    )


def classify(exc: Exception, operation: str) -> Exception:
    """Map a botocore failure onto transient / permanent / outcome-unknown, with secrets scrubbed."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = redact_text(exc.response.get("Error", {}).get("Message", "") or str(exc))
        if code in _EXISTS:
            return AlreadyExists(f"{operation}: {message}")
        if code in _TRANSIENT:
            return TransientError(f"{operation}: {code}: {message}", delay=5.0 if code in _THROTTLING else None)
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


class RdsAdapter:
    """RdsPort on boto3."""

    def __init__(self, reads: Any, writes: Any) -> None:
        self._reads, self._writes = reads, writes

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        # Reads retry inside botocore; a mutating call is sent once, so a lost answer surfaces as an unknown
        # outcome that the executor resolves by observation rather than by sending it again blindly.
        client = self._reads if operation.startswith("describe") else self._writes
        try:
            result: dict[str, Any] = getattr(client, operation)(**kwargs)
            return result
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, operation) from None

    def describe_instance(self, identifier: str) -> DbInstance | None:
        try:
            found = self._call("describe_db_instances", DBInstanceIdentifier=identifier)["DBInstances"]
        except PermanentError as exc:
            if any(code in str(exc) for code in _NOT_FOUND):
                return None
            raise
        return _instance(found[0]) if found else None

    def create_read_replica(
        self, *, replica_id: str, source_id: str, instance_class: str, tags: dict[str, str]
    ) -> DbInstance:
        raw = self._call(
            "create_db_instance_read_replica",
            DBInstanceIdentifier=replica_id,
            SourceDBInstanceIdentifier=source_id,
            DBInstanceClass=instance_class,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )["DBInstance"]
        return _instance(raw)

    def delete_instance(self, identifier: str) -> None:
        self._call("delete_db_instance", DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)


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
        tags={t["Key"]: t["Value"] for t in raw.get("TagList", [])},
    )


class BotoAdapters:
    """AdapterFactory: AWS through boto3 (`client_hook` lets tests register botocore event handlers on each
    client) and the configured PostgreSQL databases."""

    def __init__(self, endpoint_url: str | None = None, client_hook: ClientHook | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.client_hook = client_hook
        self._clients: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def rds(self, region: str) -> RdsAdapter:
        with self._lock:
            if region not in self._clients:
                session = boto3.session.Session()
                pair = tuple(
                    session.client("rds", region_name=region, endpoint_url=self.endpoint_url, config=boto_config(n))
                    for n in (3, 1)
                )
                for client in pair:
                    if self.client_hook:
                        self.client_hook(client)
                self._clients[region] = (pair[0], pair[1])
        return RdsAdapter(*self._clients[region])

    def database(self, env: Environment, name: str) -> PgAdapter:
        try:
            ref = env.databases[name]
        except KeyError:
            raise ConfigError(
                f"no database {name!r} in this environment (configured: {', '.join(env.databases) or 'none'})"
            ) from None
        return database(ref, name)
