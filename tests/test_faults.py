"""Faults that must be survived: the database restarting mid-workflow, Slack failing for a minute, AWS throttling,
the reconciler racing a running step, a SQLite store that is full or read-only."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml
from sqlalchemy import event

from adapters.aws import BotoAdapters
from bot.ids import ActionId
from devstack.demo import start_serve
from fakeslack import FakeSlack, SlackDriver
from store.db import make_engine
from store.migrate import upgrade
from store.sql import SqlStore
from tests.conftest import CONFIG, approve_current, create_source, rds_client
from tests.fakes import Script, ScriptedAdapters
from tests.slack_harness import (
    APPROVER,
    CHANNELS,
    OPS,
    REQUESTER,
    SECRET,
    SLACK_CONFIG,
    TOKEN,
    USERS,
    served,
    wait_until,
)
from workflows.catalog import build_registry
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.errors import StoreUnavailable, TransientError
from workflows.executor import Executor
from workflows.model import EventKind, IntentStatus
from workflows.reconciler import Reconciler
from workflows.runtime import FrozenClock, SystemClock
from workflows.service import OpsService

PARAMS = {"source": "billing-db", "replica": "billing-db-r1"}


def _replicas(aws: str) -> list[dict[str, Any]]:
    return [
        i
        for i in rds_client(aws).describe_db_instances()["DBInstances"]
        if i["DBInstanceIdentifier"] == "billing-db-r1"
    ]


def test_postgres_restarting_mid_workflow_loses_nothing_and_runs_no_step_twice(
    owned_pg: Any, tmp_path: Path, aws: str
) -> None:
    """The database stops while a step is in flight: /healthz says 503; once it is back the workflow completes."""
    create_source(aws)
    url = "postgresql+psycopg://" + owned_pg.admin_dsn.split("://", 1)[1]
    upgrade(url)
    config = tmp_path / "opsbot.yml"
    config.write_text(yaml.safe_dump(SLACK_CONFIG))
    with FakeSlack(TOKEN, SECRET, channels=CHANNELS, users=USERS) as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_"))}
        env.update(
            OPSBOT_DATABASE_URL=url,
            OPSBOT_CONFIG=str(config),
            AWS_ENDPOINT_URL=aws,
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            OPSBOT_SLACK_API_URL=fake.api_url,
            OPSBOT_TEST_SLOW_CREATE="3",
            OPSBOT_LEASE_SECONDS="4",
        )
        proc, events_url = start_serve(env, tmp_path / "serve.log", module="tests.slow_serve")
        health = events_url.replace("/slack/events", "/healthz")
        store = SqlStore(make_engine(url))
        try:
            driver = SlackDriver(fake, events_url, signing_secret=SECRET, timeout=30)
            driver.slash_command(
                "/ops",
                "rds.create-replica source=billing-db replica=billing-db-r1 env=prod",
                user=REQUESTER,
                channel=OPS,
            )
            wait_until(lambda: any(m.blocks for m in fake.messages(OPS)), timeout=30)
            parent = fake.messages(OPS)[0]
            driver.click(OPS, parent.ts, ActionId.APPROVE.value, user=APPROVER)

            def in_step() -> bool:
                with store.transaction() as tx:
                    [intent] = tx.list_intents()
                    return any(s.name == "create_replica" for s in tx.steps(intent.id))

            wait_until(in_step, timeout=30)
            owned_pg.halt()
            wait_until(lambda: requests.get(health, timeout=5).status_code == 503, timeout=15)
            time.sleep(4)  # the step's answer arrives while the database is away
            owned_pg.resume()
            wait_until(lambda: requests.get(health, timeout=5).status_code == 200, timeout=30)

            def done() -> bool:
                with store.transaction() as tx:
                    return tx.list_intents()[0].status is IntentStatus.SUCCEEDED

            wait_until(done, timeout=90)
            with store.transaction() as tx:
                [intent] = tx.list_intents()
                steps = {s.name: s for s in tx.steps(intent.id)}
            assert steps["create_replica"].attempts == 1 and len(_replicas(aws)) == 1
            assert store.verify_audit().ok
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            store.engine.dispose()


SLACK_OUTAGE = 60.0


def test_slack_failing_for_a_minute_loses_no_update_and_keeps_the_thread_in_order(
    tmp_path: Path, sqlite_url: str, aws: str
) -> None:
    """429s and 5xx on every Web API call for a minute: afterwards every message is there, once, in order."""
    create_source(aws)
    with served(tmp_path, sqlite_url, aws) as b:
        from tests.test_slack_e2e import click, plan

        intent_id = plan(b)
        b.fake.inject("chat.postMessage", status=429, retry_after=1, times=None)
        b.fake.inject("chat.update", status=503, times=None)
        click(b, intent_id, ActionId.APPROVE, APPROVER)
        assert b.services.slack is not None
        slack = b.services.slack
        deadline = time.monotonic() + SLACK_OUTAGE
        while time.monotonic() < deadline:  # the worker keeps going: execution does not wait for Slack
            slack.lazy.wait_idle()
            b.services.executor.run_until_idle()
            slack.projector.sync()
            slack.outbox.drain_once()
            time.sleep(0.5)
        assert b.status(intent_id) is IntentStatus.SUCCEEDED
        assert slack.store.pending_count() > 0  # the updates waited in the outbox
        b.fake.clear_faults()
        b.settle()
        replies = b.replies(intent_id)
        texts = [m.text for m in replies]
        assert len(texts) == len(set(texts)), "a reply was posted twice"
        assert "Succeeded" in replies[-1].text
        stamps = [float(m.ts) for m in replies]
        assert stamps == sorted(stamps)
        assert "succeeded" in str(b.parent(intent_id).blocks).lower()


def test_aws_throttling_every_call_for_a_while_backs_off_then_succeeds_once(
    runtime: Runtime, aws: str, clock: FrozenClock
) -> None:
    """Throttled on ten create calls in a row: retried with backoff across runs, one replica in the end."""
    create_source(aws)
    script = Script(errors={"create_read_replica": [TransientError("Throttling: Rate exceeded", delay=5.0)] * 10})
    rt = Runtime(**{**runtime.__dict__, "adapters": ScriptedAdapters(runtime.adapters, script)})
    ops = OpsService(rt)
    intent = ops.request("rds.create-replica", dict(PARAMS), "prod", "alice").intent
    approve_current(ops, intent.id, "bob")
    seen = set()
    for _ in range(12):
        Executor(rt, "test").run_until_idle()
        seen.add(ops.get(intent.id).status)
        clock.advance(60)
        Reconciler(rt).reconcile_due()
    assert IntentStatus.RETRYABLE in seen
    assert ops.get(intent.id).status is IntentStatus.SUCCEEDED
    assert script.calls["create_read_replica"] == 11 and len(_replicas(aws)) == 1


def test_the_reconciler_running_while_a_step_runs_takes_nothing_over(sqlite_url: str, aws: str) -> None:
    """A slow step with the reconciler passing every few milliseconds: the lease holds, the effect happens once."""
    create_source(aws)
    script = Script(slow_after={"create_read_replica": 2.0})
    rt = Runtime(
        store=SqlStore(make_engine(sqlite_url)),
        registry=build_registry(),
        config=parse_config(CONFIG),
        adapters=ScriptedAdapters(BotoAdapters(endpoint_url=aws), script),
        clock=SystemClock(),
        lease_seconds=1.5,  # shorter than the step: only the heartbeat keeps it
    )
    ops = OpsService(rt)
    intent = ops.request("rds.create-replica", dict(PARAMS), "prod", "alice").intent
    approve_current(ops, intent.id, "bob")
    runner = threading.Thread(target=Executor(rt, "runner").run_until_idle)
    runner.start()
    reconciler = Reconciler(rt)
    while runner.is_alive():
        reconciler.reconcile_due()
        Executor(rt, "bystander").run_until_idle()
        time.sleep(0.02)
    runner.join()
    assert ops.get(intent.id).status is IntentStatus.SUCCEEDED
    assert script.calls["create_read_replica"] == 1 and len(_replicas(aws)) == 1
    assert EventKind.EXECUTOR_LOST not in [e.kind for e in ops.show(intent.id).events]


def _full_disk(engine: sa.Engine, pages: int) -> None:
    @event.listens_for(engine, "connect")
    def _limit(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_sqlite_disk_gives_a_clear_error_and_writes_nothing_half(tmp_path: Path, aws: str) -> None:
    """SQLITE_FULL in the middle of a request: a StoreUnavailable naming it, and neither intent nor event stored."""
    import sqlite3

    create_source(aws)
    path = tmp_path / "small.db"
    with sqlite3.connect(path) as raw:  # small pages: a plan's row needs pages that are not there
        raw.execute("PRAGMA page_size = 512")
        raw.execute("VACUUM")
    url = f"sqlite:///{path}"
    upgrade(url)
    with sqlite3.connect(path) as raw:  # no free pages left over from the migrations to write into
        raw.execute("VACUUM")
    engine = make_engine(url)
    with engine.connect() as conn:
        used = int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)
    _full_disk(engine, used)
    engine.dispose()  # the pooled connection predates the limit
    rt = Runtime(
        store=SqlStore(engine),
        registry=build_registry(),
        config=parse_config(CONFIG),
        adapters=BotoAdapters(endpoint_url=aws),
    )
    with pytest.raises(StoreUnavailable, match="full"):
        OpsService(rt).request("rds.create-replica", dict(PARAMS), "prod", "alice")
    fresh = SqlStore(make_engine(url))
    with fresh.transaction() as tx:
        assert tx.list_intents() == [] and tx.events() == []


def test_a_read_only_sqlite_store_gives_a_clear_error(sqlite_url: str, aws: str, tmp_path: Path) -> None:
    """A store opened read-only refuses the request with a StoreUnavailable, and the CLI prints one line."""
    create_source(aws)
    path = sqlite_url.removeprefix("sqlite:///")
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    rt = Runtime(
        store=SqlStore(make_engine(read_only)),
        registry=build_registry(),
        config=parse_config(CONFIG),
        adapters=BotoAdapters(endpoint_url=aws),
    )
    with pytest.raises(StoreUnavailable, match=r"readonly|read-only"):
        OpsService(rt).request("rds.create-replica", dict(PARAMS), "prod", "alice")
