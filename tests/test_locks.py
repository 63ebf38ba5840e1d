"""Resource locks: taken all at once when an intent starts, held until it is over, visible to whoever waits."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel, Field

from conformance.faults import KillAtPoint
from store.db import make_engine
from store.sql import SqlStore
from tests.conftest import CONFIG, approve_current
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.executor import Executor, fault_point
from workflows.model import IntentStatus, Move
from workflows.ports import FaultSeam
from workflows.reconciler import Reconciler
from workflows.registry import Registry
from workflows.runtime import FrozenClock, NoFaults, SystemClock
from workflows.sdk import (
    Done,
    Evidence,
    PlanDraft,
    PreflightContext,
    Risk,
    Rollback,
    StepContext,
    StepOutcome,
    Workflow,
    postcondition,
    step,
    workflow,
)
from workflows.service import OpsService
from workflows.transitions import transition

LOG = "OPSBOT_TEST_STEP_LOG"


class HoldParams(BaseModel):
    resource: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")
    n: int = 0  # tells apart two requests on one resource


def _log(ctx: StepContext[HoldParams], step: str, edge: str) -> None:
    with open(os.environ[LOG], "a") as f:
        f.write(f"{ctx.intent.id} {ctx.params.resource} {step} {edge} {time.monotonic():.6f}\n")


@workflow(
    name="test.hold",
    summary="hold a resource for two steps",
    risk=Risk.LOW,
    blast_radius="none",
    request_roles=("dba",),
    approve_roles=("dba-lead",),
)
class Hold(Workflow[HoldParams]):
    def preflight(self, ctx: PreflightContext[HoldParams]) -> PlanDraft:
        return PlanDraft(
            targets=(ctx.params.resource,), mutations=(), observed={}, locks=(f"rds:{ctx.params.resource}",)
        )

    @step(rollback=Rollback.NONE, idempotent="it only writes the test's log")
    def first(self, ctx: StepContext[HoldParams]) -> StepOutcome:
        _log(ctx, "first", "start")
        time.sleep(0.05)
        _log(ctx, "first", "end")
        return Done()

    @step(rollback=Rollback.NONE, idempotent="it only writes the test's log")
    def second(self, ctx: StepContext[HoldParams]) -> StepOutcome:
        _log(ctx, "second", "start")
        time.sleep(0.05)
        _log(ctx, "second", "end")
        return Done()

    @postcondition("nothing to check")
    def fine(self, ctx: StepContext[HoldParams]) -> Evidence:
        return Evidence(True)


@pytest.fixture
def step_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "steps.log"
    path.touch()
    monkeypatch.setenv(LOG, str(path))
    yield path


def _runtime(url: str, clock: Any = None, faults: FaultSeam | None = None) -> Runtime:
    return Runtime(
        store=SqlStore(make_engine(url)),
        registry=Registry([Hold]),
        config=parse_config(CONFIG),
        adapters=None,  # type: ignore[arg-type]  # this workflow touches nothing outside
        clock=clock or SystemClock(),
        faults=faults or NoFaults(),
        lease_seconds=5,
    )


def _approved(rt: Runtime, resource: str, n: int) -> str:
    ops = OpsService(rt)
    intent = ops.request("test.hold", {"resource": resource, "n": n}, "prod", "alice").intent
    approve_current(ops, intent.id, "bob")
    return intent.id


def _intervals(log: Path) -> dict[str, tuple[str, float, float]]:
    """intent id -> (resource, first start, last end)."""
    spans: dict[str, tuple[str, float, float]] = {}
    for line in log.read_text().splitlines():
        intent, resource, _step, _edge, at = line.split()
        _, lo, hi = spans.get(intent, (resource, float("inf"), float("-inf")))
        spans[intent] = (resource, min(lo, float(at)), max(hi, float(at)))
    return spans


def _assert_no_overlap_per_resource(log: Path) -> dict[str, tuple[str, float, float]]:
    spans = _intervals(log)
    for a, (res_a, lo_a, hi_a) in spans.items():
        for b, (res_b, lo_b, hi_b) in spans.items():
            if a < b and res_a == res_b:
                assert hi_a < lo_b or hi_b < lo_a, f"{a} and {b} interleaved on {res_a}"
    return spans


def _status(rt: Runtime, intent_id: str) -> Any:
    with rt.store.transaction() as tx:
        return tx.get_intent(intent_id)  # type: ignore[arg-type]


def test_two_intents_on_one_resource_never_overlap_and_another_resource_is_not_delayed(
    sqlite_url: str, step_log: Path
) -> None:
    """On SQLite in one process: the second waits (naming the holder), runs after; a third runs alongside."""
    rt = _runtime(sqlite_url, clock=FrozenClock())
    a, b, c = _approved(rt, "billing-db", 1), _approved(rt, "billing-db", 2), _approved(rt, "other-db", 3)
    executor = Executor(rt, "one", threads=4)
    waits = REGISTRY.get_sample_value("opsbot_lock_waits_total", {"workflow": "test.hold"}) or 0.0
    claimed = executor.claim(4)
    assert {i.id for i in claimed} == {a, c}
    assert REGISTRY.get_sample_value("opsbot_lock_waits_total", {"workflow": "test.hold"}) == waits + 1
    waiting = _status(rt, b)
    assert waiting.status is IntentStatus.WAITING
    assert f"waiting for rds:billing-db, held by intent {a} (test.hold, requested by @alice" in waiting.status_reason
    with ThreadPoolExecutor(2) as pool:  # as run_once does: claimed intents run side by side
        list(pool.map(executor.drive, claimed))
    assert _status(rt, b).status is IntentStatus.APPROVED  # woken in the same transaction that freed the lock
    executor.run_until_idle()
    assert {_status(rt, i).status for i in (a, b, c)} == {IntentStatus.SUCCEEDED}
    spans = _assert_no_overlap_per_resource(step_log)
    assert spans[c][1] < spans[a][2] and spans[a][1] < spans[c][2], "the other resource's intent was delayed"
    with rt.store.transaction() as tx:
        assert tx.lock_holders(["rds:billing-db", "rds:other-db"]) == []


def _worker(url: str, seconds: float) -> None:
    rt = _runtime(url)
    executor = Executor(rt, f"worker-{os.getpid()}", threads=2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not executor.run_once():
            time.sleep(0.02)
    os._exit(0)


def test_two_executor_processes_on_postgres_never_overlap_on_one_resource(pg_url: str, step_log: Path) -> None:
    """On PostgreSQL with two executor processes racing: intents on one resource run one after the other."""
    from tests.conftest import _truncate

    engine = make_engine(pg_url)
    _truncate(engine)
    engine.dispose()
    rt = _runtime(pg_url)
    ids = [_approved(rt, "billing-db", n) for n in range(4)] + [_approved(rt, "other-db", 9)]
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_worker, args=(pg_url, 8.0)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert {_status(rt, i).status for i in ids} == {IntentStatus.SUCCEEDED}
    _assert_no_overlap_per_resource(step_log)
    with rt.store.transaction() as tx:
        events = [e.kind for i in ids for e in tx.events(i)]  # type: ignore[arg-type]
    assert "waiting_for_lock" in events and "lock_released" in events


def _doomed(url: str, intent_id: str) -> None:
    rt = _runtime(url, faults=KillAtPoint(fault_point("first", "after_effect")))
    Executor(rt, "doomed").run_until_idle()
    os._exit(0)


def test_a_killed_holder_keeps_its_locks_until_its_intent_is_resumed_and_finishes(
    sqlite_url: str, step_log: Path
) -> None:
    """SIGKILL mid-step: the lock stays with the dead intent; the waiter starts only after recovery finishes it."""
    rt = _runtime(sqlite_url)
    a = _approved(rt, "billing-db", 1)
    child = multiprocessing.get_context("fork").Process(target=_doomed, args=(sqlite_url, a))
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    b = _approved(rt, "billing-db", 2)
    Executor(rt, "other").run_until_idle()
    assert _status(rt, b).status is IntentStatus.WAITING
    with rt.store.transaction() as tx:
        assert [h.intent_id for h in tx.lock_holders(["rds:billing-db"])] == [a]

    class Later:
        def now(self) -> Any:
            return SystemClock().now() + timedelta(seconds=10)

    later = _runtime(sqlite_url, clock=Later())
    Reconciler(later).reconcile_due()
    Executor(later, "recovery").run_until_idle()
    assert _status(rt, a).status is IntentStatus.SUCCEEDED
    assert _status(rt, b).status is IntentStatus.SUCCEEDED
    _assert_no_overlap_per_resource(step_log)


def test_cancelling_a_failed_holder_releases_its_locks_and_wakes_the_waiter(sqlite_url: str, step_log: Path) -> None:
    """Locks survive a human hand-off (failed) and are released by cancel, which wakes the waiting intent."""
    rt = _runtime(sqlite_url, clock=FrozenClock())
    a, b = _approved(rt, "billing-db", 1), _approved(rt, "billing-db", 2)
    executor = Executor(rt, "one", threads=1)
    [claimed] = executor.claim(1)
    assert claimed.id == a
    executor.claim(1)  # b finds the lock taken
    with rt.store.transaction() as tx:
        running = tx.get_intent(claimed.id)
        assert running is not None
        transition(tx, running, Move(IntentStatus.FAILED, "scripted failure"), None, "test", FrozenClock().now())
    assert _status(rt, b).status is IntentStatus.WAITING  # a failed intent still holds what it touched
    OpsService(rt).cancel(a, "alice", "giving up")
    assert _status(rt, b).status is IntentStatus.APPROVED
    executor.run_until_idle()
    assert _status(rt, b).status is IntentStatus.SUCCEEDED


def test_the_plan_names_intents_holding_or_waiting_for_its_resources(sqlite_url: str, step_log: Path) -> None:
    """Preflight shows conflicts: a new plan lists the holder and the waiter of the resource it needs."""
    rt = _runtime(sqlite_url, clock=FrozenClock())
    a, b = _approved(rt, "billing-db", 1), _approved(rt, "billing-db", 2)
    Executor(rt, "one").claim(4)
    third = OpsService(rt).request("test.hold", {"resource": "billing-db", "n": 3}, "prod", "carol").intent
    conflicts = third.plan["conflicts"]
    assert any(f"held by intent {a}" in c for c in conflicts) and any(f"awaited by intent {b}" in c for c in conflicts)
