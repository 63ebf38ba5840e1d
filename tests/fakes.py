"""Fakes that sit in front of the real moto-backed adapters to script what moto cannot show."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from workflows.config import Environment
from workflows.errors import AlreadyExists, StepError, TransientError
from workflows.outside import (
    AdapterFactory,
    DatabasePort,
    DbCluster,
    DbInstance,
    DbSnapshot,
    IamPort,
    RdsPort,
    SecretsPort,
)


@dataclass
class Script:
    """What the scripted RDS does: statuses to report for a replica, errors to raise per call."""

    statuses: list[str] = field(default_factory=list)
    errors: dict[str, list[StepError]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    # Real RDS refuses a second create of the same id with DBInstanceAlreadyExists; moto 5 silently overwrites
    # the instance (and drops its tags), so the fake restores AWS's behaviour.
    aws_already_exists: bool = True
    # From this many describe calls on, every describe fails (an API outage while probing); -1 for never.
    describe_outage_after: int = -1
    # Seconds a call takes after AWS accepted it (a window in which to kill the process mid-step).
    slow_after: dict[str, float] = field(default_factory=dict)


class ScriptedRds:
    """RdsPort that forwards to the real adapter, overriding reported status and raising scripted errors."""

    def __init__(self, real: RdsPort, script: Script, lock: threading.Lock) -> None:
        self.real, self.script, self.lock = real, script, lock

    def _maybe_raise(self, method: str) -> None:
        with self.lock:
            self.script.calls[method] += 1
            queue = self.script.errors.get(method)
            err = queue.pop(0) if queue else None
        if err is not None:
            raise err

    def describe_instance(self, identifier: str) -> DbInstance | None:
        self._maybe_raise("describe_instance")
        if 0 <= self.script.describe_outage_after < self.script.calls["describe_instance"]:
            raise TransientError("ServiceUnavailable: describe is down")
        found = self.real.describe_instance(identifier)
        if found is not None and found.source_identifier:
            with self.lock:
                status = self.script.statuses.pop(0) if self.script.statuses else None
            if status is not None:
                found = replace(found, status=status, endpoint=None if status != "available" else found.endpoint)
        return found

    def create_read_replica(self, **kwargs: Any) -> DbInstance:
        self._maybe_raise("create_read_replica")
        if self.script.aws_already_exists and self.real.describe_instance(kwargs["replica_id"]) is not None:
            raise AlreadyExists(f"DBInstanceAlreadyExists: {kwargs['replica_id']}")
        created = self.real.create_read_replica(**kwargs)
        time.sleep(self.script.slow_after.get("create_read_replica", 0.0))
        return created

    def delete_instance(self, identifier: str) -> None:
        self._maybe_raise("delete_instance")
        self.real.delete_instance(identifier)

    # the rest of RdsPort goes straight to the real adapter, with scripted errors where asked for
    def modify_instance_class(self, identifier: str, instance_class: str, *, apply_immediately: bool) -> DbInstance:
        self._maybe_raise("modify_instance_class")
        return self.real.modify_instance_class(identifier, instance_class, apply_immediately=apply_immediately)

    def is_orderable(self, engine: str, engine_version: str, instance_class: str, zone: str | None) -> bool:
        self._maybe_raise("is_orderable")
        return self.real.is_orderable(engine, engine_version, instance_class, zone)

    def create_snapshot(self, snapshot_id: str, instance_id: str, tags: dict[str, str]) -> DbSnapshot:
        self._maybe_raise("create_snapshot")
        return self.real.create_snapshot(snapshot_id, instance_id, tags)

    def describe_snapshot(self, snapshot_id: str) -> DbSnapshot | None:
        self._maybe_raise("describe_snapshot")
        return self.real.describe_snapshot(snapshot_id)

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._maybe_raise("delete_snapshot")
        self.real.delete_snapshot(snapshot_id)

    def describe_cluster(self, cluster_id: str) -> DbCluster | None:
        self._maybe_raise("describe_cluster")
        return self.real.describe_cluster(cluster_id)

    def failover_cluster(self, cluster_id: str, target_instance: str) -> None:
        self._maybe_raise("failover_cluster")
        self.real.failover_cluster(cluster_id, target_instance)

    def replica_lag_seconds(self, instance_id: str) -> list[float]:
        self._maybe_raise("replica_lag_seconds")
        return self.real.replica_lag_seconds(instance_id)


class ScriptedAdapters:
    """AdapterFactory: RDS scripted in front of the real adapter; databases straight from it."""

    def __init__(self, real: AdapterFactory, script: Script) -> None:
        self.real, self.script, self.lock = real, script, threading.Lock()

    def rds(self, region: str) -> RdsPort:
        return ScriptedRds(self.real.rds(region), self.script, self.lock)

    def database(self, env: Environment, name: str) -> DatabasePort:
        return self.real.database(env, name)

    def secrets(self, region: str) -> SecretsPort:
        return self.real.secrets(region)

    def iam(self) -> IamPort:
        return self.real.iam()


def _implements_the_ports(rds: ScriptedRds, adapters: ScriptedAdapters) -> tuple[RdsPort, AdapterFactory]:
    """mypy checks here that the fakes still implement the adapter Protocols."""
    return rds, adapters
