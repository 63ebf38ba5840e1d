"""Two executors on PostgreSQL racing for one intent: exactly one runs each step."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from store.db import make_engine
from store.sql import SqlStore
from tests.conftest import approve_current, create_source
from tests.fakes import Script, ScriptedAdapters
from workflows.deps import Runtime
from workflows.executor import Executor
from workflows.model import IntentStatus, StepStatus
from workflows.reconciler import Reconciler
from workflows.runtime import FrozenClock
from workflows.service import OpsService


@pytest.fixture
def pg_runtimes(pg_url: str, runtime: Runtime, store: SqlStore) -> Iterator[tuple[Runtime, Runtime, Script]]:
    """Two runtimes with their own connection pools on one PostgreSQL database and one scripted AWS."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("the race is about PostgreSQL's row locks")
    other = SqlStore(make_engine(pg_url))
    script = Script()
    adapters = ScriptedAdapters(runtime.adapters, script)
    a = Runtime(**{**runtime.__dict__, "adapters": adapters})
    b = Runtime(**{**runtime.__dict__, "adapters": adapters, "store": other})
    yield a, b, script
    other.engine.dispose()


def approved(rt: Runtime) -> str:
    intent = (
        OpsService(rt)
        .request("rds.create-replica", {"source": "billing-db", "replica": "billing-db-r1"}, "prod", "alice")
        .intent
    )
    approve_current(OpsService(rt), intent.id, "bob")
    return intent.id


def test_concurrent_claims_give_the_intent_to_one_executor(
    pg_runtimes: tuple[Runtime, Runtime, Script], aws: str
) -> None:
    """Both executors poll at the same instant; SKIP LOCKED and the version check hand it to exactly one."""
    a, b, script = pg_runtimes
    create_source(aws)
    intent_id = approved(a)
    barrier = threading.Barrier(2)
    results: dict[str, list[object]] = {}

    def run(name: str, rt: Runtime) -> None:
        barrier.wait()
        results[name] = list(Executor(rt, name).run_until_idle())

    threads = [threading.Thread(target=run, args=(n, rt)) for n, rt in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(len(r) for r in results.values()) == [0, 1]
    assert script.calls["create_read_replica"] == 1
    view = OpsService(a).show(intent_id)
    assert view.intent.status is IntentStatus.SUCCEEDED
    assert all(s.attempts == 1 and s.status is StepStatus.SUCCEEDED for s in view.steps)
    claims = [e for e in view.events if e.kind == "claimed"]
    assert len(claims) == 1


def test_a_zombie_executor_is_fenced_after_takeover(
    pg_runtimes: tuple[Runtime, Runtime, Script], aws: str, clock: FrozenClock
) -> None:
    """An executor whose lease lapsed and was taken over cannot write another checkpoint or outcome."""
    a, b, script = pg_runtimes
    create_source(aws)
    intent_id = approved(a)
    [stale] = Executor(a, "zombie").claim(1)
    clock.advance(a.lease_seconds + 1)
    Reconciler(b).reconcile_due()
    [done] = Executor(b, "successor").run_until_idle()
    assert done.status is IntentStatus.SUCCEEDED
    after = Executor(a, "zombie").drive(stale)  # wakes up late with its old lease
    assert after.status is IntentStatus.SUCCEEDED and after.lease_owner is None
    assert script.calls["create_read_replica"] == 1
    kinds = [e.kind for e in OpsService(a).show(intent_id).events]
    assert kinds.count("succeeded") == 1


def test_two_reconcilers_at_once_check_each_intent_once(
    pg_runtimes: tuple[Runtime, Runtime, Script], aws: str, clock: FrozenClock
) -> None:
    """Two replicas' reconcilers pass at the same instant over a due intent: one of them probes it."""
    a, b, script = pg_runtimes
    create_source(aws)
    approved(a)
    script.statuses = ["creating"] * 100  # the replica stays creating: the intent converges, due again later
    [converging] = Executor(a, "one").run_until_idle()
    assert converging.status is IntentStatus.CONVERGING
    probes = script.calls["describe_instance"]
    clock.advance(3600)
    barrier = threading.Barrier(2)
    checked: list[int] = []

    def reconcile(rt: Runtime) -> None:
        barrier.wait()
        checked.append(len(Reconciler(rt).reconcile_due()))

    threads = [threading.Thread(target=reconcile, args=(rt,)) for rt in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(checked) == [0, 1]
    assert script.calls["describe_instance"] == probes + 1
