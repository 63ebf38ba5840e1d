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
from workflows.errors import OutcomeUnknown, PermanentError, TransientError
from workflows.outside import AdapterFactory, DatabasePort, IamPort, RdsPort, SecretsPort

T = TypeVar("T")
State = dict[str, Any]


class Fault(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"  # the call may not have arrived: nothing applied, the caller cannot tell
    LOST_ANSWER = "lost_answer"  # the effect is applied, then the answer is lost


def _empty() -> State:
    """Each adapter keeps its own part of the state under its own key (`rds`, `secrets`, `iam`, `databases`)."""
    return {"effects": {}, "calls": {}, "faults": [], "converge_after": 0}


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

    def seed(self, apply: Callable[[State], None]) -> None:
        """Change the world directly (no call counted, no fault): how tests and examples set it up."""
        with self._state() as state:
            apply(state)

    # reading -----------------------------------------------------------------------------------
    def effects(self) -> dict[str, int]:
        """How many times each side effect (`<call>:<target>`) was applied."""
        return dict(self.read()["effects"])

    def calls(self) -> dict[str, int]:
        return dict(self.read()["calls"])

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


class ScriptedAdapters:
    """AdapterFactory over one scripted world (the same in every region)."""

    def __init__(self, world: ScriptedWorld) -> None:
        self.world = world

    def rds(self, region: str) -> RdsPort:
        from conformance.scripted_aws import ScriptedRds

        return ScriptedRds(self.world)

    def secrets(self, region: str) -> SecretsPort:
        from conformance.scripted_aws import ScriptedSecrets

        return ScriptedSecrets(self.world)

    def iam(self) -> IamPort:
        from conformance.scripted_aws import ScriptedIam

        return ScriptedIam(self.world)

    def database(self, env: Environment, name: str) -> DatabasePort:
        from conformance.scripted_pg import ScriptedDatabase

        return ScriptedDatabase(self.world, name)


def _implements_the_ports(world: ScriptedWorld) -> AdapterFactory:
    """mypy checks here that the scripted adapters implement the adapter Protocols."""
    return ScriptedAdapters(world)
