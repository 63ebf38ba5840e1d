"""Scripted adapters: a small world of cloud and database resources that counts every side effect.

The world lives in memory, or in a JSON file when given a path, so that the effects of a process killed in the
middle of a step are there for the process that recovers it. Any call can be made to fail on demand: a transient
error, a permanent one, an unknown outcome (the call never arrived), or a lost answer (the effect is applied,
then the caller is told nothing).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from workflows.config import Environment
from workflows.errors import AlreadyExists, OutcomeUnknown, PermanentError, TransientError
from workflows.ports import AdapterFactory, DatabasePort, DbInstance, RdsPort

T = TypeVar("T")
State = dict[str, Any]


class Fault(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"  # the call may not have arrived: nothing applied, the caller cannot tell
    LOST_ANSWER = "lost_answer"  # the effect is applied, then the answer is lost


def _empty() -> State:
    return {"rds": {}, "databases": {}, "effects": {}, "calls": {}, "faults": [], "converge_after": 0}


class ScriptedWorld:
    """The resources and the side-effect counters; every call is one atomic read-modify-write."""

    def __init__(self, path: Path | None = None, converge_after: int = 0) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._memory = _empty()
        self._memory["converge_after"] = converge_after
        if path is not None and not path.exists():
            self._save(self._memory)

    # the state ---------------------------------------------------------------------------------
    @contextmanager
    def _state(self) -> Iterator[State]:
        with self._lock:
            if self.path is None:
                yield self._memory
                return
            with open(f"{self.path}.lock", "a") as guard:
                fcntl.flock(guard, fcntl.LOCK_EX)
                state = json.loads(self.path.read_text())
                yield state
                self._save(state)

    def _save(self, state: State) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def read(self) -> State:
        with self._state() as state:
            copy: State = json.loads(json.dumps(state))
            return copy

    # scripting ---------------------------------------------------------------------------------
    def fail(self, method: str, fault: Fault, times: int = 1) -> None:
        """Make the next `times` calls of `method` fail with `fault`."""
        with self._state() as state:
            state["faults"].append({"method": method, "fault": fault.value, "times": times})

    def add_instance(
        self, identifier: str, *, status: str = "available", instance_class: str = "db.t3.medium", **extra: Any
    ) -> None:
        with self._state() as state:
            state["rds"][identifier] = _instance(identifier, status, instance_class, **extra)

    def set_status(self, identifier: str, status: str) -> None:
        with self._state() as state:
            state["rds"][identifier]["status"] = status

    def add_database(self, name: str, **facts: Any) -> None:
        with self._state() as state:
            state["databases"][name] = {"lag": None, **facts}

    # reading -----------------------------------------------------------------------------------
    def effects(self) -> dict[str, int]:
        """How many times each side effect (`<call>:<target>`) was applied."""
        return dict(self.read()["effects"])

    def calls(self) -> dict[str, int]:
        return dict(self.read()["calls"])

    def instance(self, identifier: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.read()["rds"].get(identifier)
        return found

    # the adapters' entry point -----------------------------------------------------------------
    def call(self, method: str, target: str, apply: Callable[[State], T], *, effect: bool) -> T:
        """Run `apply` on the state as one atomic step, after the scripted fault for `method` if any.

        The call count and the spent fault are kept even when the call fails, as a real API's would be.
        """
        failure: Exception | None = None
        with self._state() as state:
            state["calls"][method] = state["calls"].get(method, 0) + 1
            fault = _next_fault(state, method)
            if fault in (Fault.TRANSIENT, Fault.PERMANENT, Fault.UNKNOWN):
                failure = _error(fault, method)
            else:
                try:
                    result = apply(state)
                except Exception as exc:  # the API refused (AlreadyExists, NotFound): nothing applied
                    failure = exc
                else:
                    if effect:
                        key = f"{method}:{target}"
                        state["effects"][key] = state["effects"].get(key, 0) + 1
                    if fault is Fault.LOST_ANSWER:
                        failure = _error(fault, method)
        if failure is not None:
            raise failure
        return result


def _next_fault(state: State, method: str) -> Fault | None:
    for entry in state["faults"]:
        if entry["method"] == method and entry["times"] > 0:
            entry["times"] -= 1
            return Fault(entry["fault"])
    return None


def _error(fault: Fault, method: str) -> Exception:
    if fault is Fault.TRANSIENT:
        return TransientError(f"{method}: scripted transient failure (Throttling)")
    if fault is Fault.PERMANENT:
        return PermanentError(f"{method}: scripted permanent failure", guidance="this failure was scripted")
    return OutcomeUnknown(f"{method}: scripted {fault.value}: the outcome is unknown")


def _instance(identifier: str, status: str, instance_class: str, **extra: Any) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "status": status,
        "instance_class": instance_class,
        "engine": extra.get("engine", "postgres"),
        "arn": f"arn:aws:rds:us-east-1:000000000000:db:{identifier}",
        "endpoint": f"{identifier}.scripted.local" if status == "available" else None,
        "source_identifier": extra.get("source_identifier"),
        "tags": dict(extra.get("tags") or {}),
        "describes": 0,
    }


def _as_instance(raw: dict[str, Any]) -> DbInstance:
    return DbInstance(
        identifier=raw["identifier"],
        status=raw["status"],
        instance_class=raw["instance_class"],
        engine=raw["engine"],
        arn=raw["arn"],
        endpoint=raw["endpoint"],
        source_identifier=raw["source_identifier"],
        tags=dict(raw["tags"]),
    )


class ScriptedRds:
    """RdsPort over the scripted world: creates converge after `converge_after` describes, deletes likewise."""

    def __init__(self, world: ScriptedWorld) -> None:
        self.world = world

    def describe_instance(self, identifier: str) -> DbInstance | None:
        def apply(state: State) -> DbInstance | None:
            raw = state["rds"].get(identifier)
            if raw is None:
                return None
            raw["describes"] += 1
            if raw["status"] in ("creating", "modifying") and raw["describes"] > state["converge_after"]:
                raw["status"], raw["endpoint"] = "available", f"{identifier}.scripted.local"
            elif raw["status"] == "deleting" and raw["describes"] > state["converge_after"]:
                del state["rds"][identifier]
                return None
            return _as_instance(raw)

        return self.world.call("describe_instance", identifier, apply, effect=False)

    def create_read_replica(
        self, *, replica_id: str, source_id: str, instance_class: str, tags: dict[str, str]
    ) -> DbInstance:
        def apply(state: State) -> DbInstance:
            if replica_id in state["rds"]:
                raise AlreadyExists(f"DBInstanceAlreadyExists: {replica_id}")
            if source_id not in state["rds"]:
                raise PermanentError(f"DBInstanceNotFound: {source_id}")
            raw = _instance(replica_id, "creating", instance_class, source_identifier=source_id, tags=tags)
            state["rds"][replica_id] = raw
            return _as_instance(raw)

        return self.world.call("create_read_replica", replica_id, apply, effect=True)

    def delete_instance(self, identifier: str) -> None:
        def apply(state: State) -> None:
            raw = state["rds"].get(identifier)
            if raw is None:
                raise PermanentError(f"DBInstanceNotFound: {identifier}")
            raw["status"], raw["endpoint"], raw["describes"] = "deleting", None, 0

        self.world.call("delete_instance", identifier, apply, effect=True)


class ScriptedDatabase:
    """DatabasePort over the scripted world: values from the database's facts, a process-local advisory lock."""

    def __init__(self, world: ScriptedWorld, name: str) -> None:
        self.world, self.name = world, name

    def fetch_value(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        def apply(state: State) -> Any:
            return state["databases"].get(self.name, {}).get(sql)

        return self.world.call("fetch_value", self.name, apply, effect=False)

    @contextmanager
    def advisory_lock(self, key: str) -> Iterator[None]:
        yield

    def replication_lag_seconds(self) -> float | None:
        def apply(state: State) -> float | None:
            lag = state["databases"].get(self.name, {}).get("lag")
            return float(lag) if lag is not None else None

        return self.world.call("replication_lag_seconds", self.name, apply, effect=False)


class ScriptedAdapters:
    """AdapterFactory over one scripted world (the same in every region)."""

    def __init__(self, world: ScriptedWorld) -> None:
        self.world = world

    def rds(self, region: str) -> ScriptedRds:
        return ScriptedRds(self.world)

    def database(self, env: Environment, name: str) -> ScriptedDatabase:
        return ScriptedDatabase(self.world, name)


def _implements_the_ports(world: ScriptedWorld) -> tuple[RdsPort, DatabasePort, AdapterFactory]:
    """mypy checks here that the scripted adapters implement the adapter Protocols."""
    adapters = ScriptedAdapters(world)
    return adapters.rds("us-east-1"), adapters.database(Environment(), "db"), adapters
