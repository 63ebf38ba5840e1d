"""pg.migrate against a real PostgreSQL: lock timeouts that name the blocker, two migrations at once, and an
interrupted CREATE INDEX CONCURRENTLY retried into one valid index."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.aws import BotoAdapters
from store.db import make_engine
from store.sql import SqlStore
from tests.conftest import approve_current
from workflows.catalog import build_registry
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.executor import Executor
from workflows.model import IntentStatus
from workflows.reconciler import Reconciler
from workflows.runtime import FrozenClock
from workflows.service import OpsService

LOCK_TIMEOUT = 0.5


@dataclass
class Migrations:
    rt: Runtime
    ops: OpsService
    clock: FrozenClock
    dsn: str
    directory: Path
    table: str

    def write(self, name: str, sql: str) -> None:
        (self.directory / name).write_text(sql)

    def request(self, target: str | None = None) -> str:
        params = {"database": "billing", **({"target": target} if target else {})}
        intent = self.ops.request("pg.migrate", params, "prod", "alice").intent
        approve_current(self.ops, intent.id, "bob")
        return intent.id

    def drive(self, rounds: int = 12) -> None:
        """Executor and reconciler, a minute apart, as the worker would run them."""
        executor, reconciler = Executor(self.rt, "test"), Reconciler(self.rt)
        for _ in range(rounds):
            executor.run_until_idle()
            self.clock.advance(60)
            reconciler.reconcile_due()
        executor.run_until_idle()

    def applied(self) -> list[tuple[str, str]]:
        with psycopg.connect(self.dsn) as conn:
            if conn.execute("SELECT to_regclass('opsbot_schema_migrations')").fetchone() == (None,):
                return []
            rows = conn.execute("SELECT version, checksum FROM opsbot_schema_migrations ORDER BY version").fetchall()
        return [(str(v), str(c)) for v, c in rows]


@pytest.fixture
def migrations(pg_url: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Migrations]:
    """A fresh schema-less database of its own on the test server, and pg.migrate configured for it."""
    server = "postgresql://" + pg_url.split("://", 1)[1]
    name = f"billing_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = server.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("TEST_BILLING_DSN", dsn)
    directory = tmp_path / "migrations"
    directory.mkdir()
    database = {"dsn_env": "TEST_BILLING_DSN", "migrations": str(directory), "lock_timeout_seconds": LOCK_TIMEOUT}
    config = {
        "environments": {"prod": {"databases": {"billing": database}}},
        "roles": {"dba": ["alice"], "dba-lead": ["bob", "erin"]},
    }
    clock = FrozenClock()
    rt = Runtime(
        store=SqlStore(make_engine(sqlite_url)),
        registry=build_registry(),
        config=parse_config(config),
        adapters=BotoAdapters(),
        clock=clock,
    )
    table = "orders"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int primary key, note text)")
        conn.execute(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b')")
    yield Migrations(rt, OpsService(rt), clock, dsn, directory, table)
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_lock_held_by_an_idle_transaction_blocks_the_migration_and_names_the_session(migrations: Migrations) -> None:
    """Each attempt gives up after lock_timeout, the intent ends blocked naming the session; the application's
    SELECT never waits longer than the lock timeout; once the holder commits, Retry applies it."""
    m = migrations
    m.write("1_add_status.sql", f"ALTER TABLE {m.table} ADD COLUMN status text;\n")
    holder = psycopg.connect(m.dsn, application_name="billing-api")
    holder.execute(f"SELECT * FROM {m.table}")  # idle in transaction, holding AccessShareLock
    holder_pid = holder.info.backend_pid
    waits: list[float] = []
    stop = threading.Event()

    def application() -> None:
        with psycopg.connect(m.dsn, autocommit=True, application_name="billing-web") as app:
            while not stop.is_set():
                started = time.monotonic()
                app.execute(f"SELECT count(*) FROM {m.table}")
                waits.append(time.monotonic() - started)
                time.sleep(0.02)

    reader = threading.Thread(target=application, daemon=True)
    reader.start()
    try:
        intent_id = m.request()
        m.drive()
    finally:
        stop.set()
        reader.join(10)
    blocked = m.ops.get(intent_id)
    assert blocked.status is IntentStatus.BLOCKED, blocked.status_reason
    reason = blocked.status_reason or ""
    assert f"pid {holder_pid}" in reason and "billing-api" in reason and "lock timeout" in reason
    assert "retry" in [a.value for a in m.ops.show(intent_id).guidance.action_names]
    assert waits and max(waits) < LOCK_TIMEOUT + 1.0, max(waits)
    assert m.applied() == []
    holder.commit()
    holder.close()
    m.ops.retry(intent_id, "alice", "the API released its transaction")
    m.drive(rounds=1)
    assert m.ops.get(intent_id).status is IntentStatus.SUCCEEDED
    assert [v for v, _ in m.applied()] == ["1"]


def test_two_migrations_of_one_database_never_run_at_once(migrations: Migrations) -> None:
    """Both approved together: the second waits for the first's lock, then finds its plan stale and asks again."""
    m = migrations
    m.write("1_add_status.sql", f"ALTER TABLE {m.table} ADD COLUMN status text;\n")
    m.write("2_add_owner.sql", f"ALTER TABLE {m.table} ADD COLUMN owner text;\n")
    first, second = m.request(target="1"), m.request()
    executor = Executor(m.rt, "one")
    claimed = executor.claim(2)
    assert [i.id for i in claimed] == [first]
    assert m.ops.get(second).status is IntentStatus.WAITING
    for intent in claimed:
        executor.drive(intent)
    executor.run_until_idle()
    assert m.ops.get(first).status is IntentStatus.SUCCEEDED
    replanned = m.ops.get(second)
    assert replanned.status is IntentStatus.NEEDS_REAPPROVAL  # version 1 landed under it: a new plan, only 2
    assert list(replanned.plan["each"]["files"]) == ["2"]
    approve_current(m.ops, second, "erin")
    executor.run_until_idle()
    assert m.ops.get(second).status is IntentStatus.SUCCEEDED
    assert [v for v, _ in m.applied()] == ["1", "2"]


def test_an_interrupted_concurrent_index_build_is_retried_into_one_valid_index(migrations: Migrations) -> None:
    """A unique CONCURRENTLY build that fails leaves an INVALID index; after the data is fixed, Retry drops it and
    builds one valid index (IF NOT EXISTS alone would have skipped the invalid one)."""
    m = migrations
    with psycopg.connect(m.dsn, autocommit=True) as conn:
        conn.execute(f"UPDATE {m.table} SET note = 'same'")
    m.write(
        "1_unique_note.sql",
        f"-- opsbot:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_note ON {m.table} (note);\n",
    )
    intent_id = m.request()
    m.drive(rounds=4)
    failed = m.ops.get(intent_id)
    assert failed.status in (IntentStatus.FAILED, IntentStatus.UNKNOWN, IntentStatus.BLOCKED), failed.status_reason
    with psycopg.connect(m.dsn, autocommit=True) as conn:
        assert conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_note'::regclass"
        ).fetchone() == (False,)
        conn.execute(f"UPDATE {m.table} SET note = id::text")
    if failed.status is IntentStatus.UNKNOWN:
        m.ops.resume(intent_id, "alice", "duplicates fixed")
    else:
        m.ops.retry(intent_id, "alice", "duplicates fixed")
    m.drive(rounds=2)
    assert m.ops.get(intent_id).status is IntentStatus.SUCCEEDED, m.ops.get(intent_id).status_reason
    with psycopg.connect(m.dsn, autocommit=True) as conn:
        rows: list[Any] = conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname LIKE 'orders_note%'"
        ).fetchall()
    assert rows == [("orders_note", True)]
    assert [v for v, _ in m.applied()] == ["1"]


def test_pg_migrate_runs_from_the_cli(migrations: Migrations, tmp_path: Path) -> None:
    """`opsbot request pg.migrate …`, approve, reconcile: the file applied with its version row."""
    import os
    import subprocess
    import sys

    import yaml

    from tests.test_catalog_aws import run_from_the_cli

    m = migrations
    m.write("1_add_status.sql", f"ALTER TABLE {m.table} ADD COLUMN status text;\n")
    config = tmp_path / "cli.yml"
    database = {"dsn_env": "TEST_BILLING_DSN", "migrations": str(m.directory)}
    roles = {"dba": ["alice"], "dba-lead": ["bob", "erin"]}
    config.write_text(yaml.safe_dump({"environments": {"prod": {"databases": {"billing": database}}}, "roles": roles}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    env.update(OPSBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}", OPSBOT_CONFIG=str(config))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "opsbot.cli", *args], env=env, capture_output=True, text=True, timeout=120
        )

    assert cli("db", "upgrade").returncode == 0
    assert run_from_the_cli(cli, "pg.migrate", "database=billing") == "succeeded"
    assert [v for v, _ in m.applied()] == ["1"]
