"""What the benchmarks share: a throwaway PostgreSQL database, the no-op workflow, counters and summaries."""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time
import types
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
import structlog
from pydantic import BaseModel

import store.sql as store_sql
from store.db import make_engine
from store.sql import _Prepared
from workflows.registry import Registry
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

SERVER = os.environ.get("OPSBOT_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOOP_CONFIG = {
    "environments": {"bench": {}},
    "roles": {"r": ["alice"], "a": ["bob"]},
    "policies": {"bench.noop": {"request": ["r"], "approve": ["a"]}},
}


def quiet() -> None:
    """Warnings only: a log line per step would be measured too."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


class NoopParams(BaseModel):
    run: str


def noop_registry(steps: int) -> Registry:
    """A registry holding `bench.noop`: `steps` no-op steps, declared as an author would, built in a loop."""

    def body(ns: dict[str, Any]) -> None:
        def preflight(self: Any, ctx: PreflightContext[NoopParams]) -> PlanDraft:
            return PlanDraft(targets=("nothing",), mutations=(), observed={})

        def nothing(self: Any, ctx: StepContext[NoopParams]) -> Evidence:
            return Evidence(True)

        ns["preflight"] = preflight
        ns["nothing"] = postcondition("a no-op needs no evidence beyond its checkpoints")(nothing)
        for i in range(steps):

            def noop(self: Any, ctx: StepContext[NoopParams]) -> StepOutcome:
                return Done()

            noop.__name__ = f"noop_{i}"
            ns[noop.__name__] = step(rollback=Rollback.NONE, idempotent="it does nothing")(noop)

    cls = types.new_class("Noop", (Workflow[NoopParams],), exec_body=body)
    workflow(
        name="bench.noop",
        summary="no-op steps",
        request_roles=("r",),
        approve_roles=("a",),
        risk=Risk.LOW,
        blast_radius="none",
    )(cls)
    return Registry([cls])


@contextmanager
def fresh_pg(server_url: str = SERVER) -> Iterator[str]:
    """A new database on the server for the duration; dropped (connections and all) afterwards."""
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"opsbot_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def raw_commit_cost(url: str, n: int) -> float:
    """Seconds per single-row INSERT+COMMIT through the bare DB-API connection: the floor of a durable write."""
    engine = make_engine(url)
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        pg = engine.dialect.name == "postgresql"
        mark = "%s" if pg else "?"
        if not pg:
            cur.execute("BEGIN IMMEDIATE")
        cur.execute("CREATE TABLE IF NOT EXISTS bench_raw (id TEXT PRIMARY KEY, body TEXT)")
        conn.commit()
        start = time.perf_counter()
        for _ in range(n):
            if not pg:
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(f"INSERT INTO bench_raw (id, body) VALUES ({mark}, {mark})", (uuid.uuid4().hex, "x" * 100))
            conn.commit()
        return (time.perf_counter() - start) / n
    finally:
        conn.close()
        engine.dispose()


_PREPARED_HOOKS: list[Callable[[str, bool], None]] = []  # (statement, commits on its own)
_prepared_run, _prepared_execute, _together = _Prepared.run, _Prepared.execute, store_sql._fenced_together


def _counted_execute(self: _Prepared, cursor: Any, values: dict[str, Any]) -> int:
    for hook in _PREPARED_HOOKS:
        hook(self.sql, False)
    return _prepared_execute(self, cursor, values)


def _counted_run(self: _Prepared, conn: sa.Connection, values: dict[str, Any]) -> int:
    for hook in _PREPARED_HOOKS:
        hook("", True)  # autocommit: the statement is its own transaction
    return _prepared_run(self, conn, values)


def _counted_together(conn: sa.Connection, writes: list[tuple[_Prepared, dict[str, Any]]]) -> bool:
    for hook in _PREPARED_HOOKS:
        hook("", True)  # one transaction for all of them
    return _together(conn, writes)


_Prepared.execute = _counted_execute  # type: ignore[method-assign]
_Prepared.run = _counted_run  # type: ignore[method-assign]
store_sql._fenced_together = _counted_together


@dataclass
class RoundTrips:
    """Statements and commits an engine sends, counted by SQLAlchemy's events."""

    statements: int = 0
    commits: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def attach(self, engine: sa.Engine) -> RoundTrips:
        def statement(conn: Any, cursor: Any, text: str, params: Any, context: Any, many: bool) -> None:
            self.statements += 1
            verb = text.lstrip().split(None, 1)[0].upper()
            self.by_kind[verb] = self.by_kind.get(verb, 0) + 1

        def commit(conn: Any) -> None:
            self.commits += 1

        sa.event.listen(engine, "before_cursor_execute", statement)
        sa.event.listen(engine, "commit", commit)
        _PREPARED_HOOKS.append(self._prepared)
        return self

    def _prepared(self, sql: str, commits: bool) -> None:
        """The checkpoint writes go straight to the driver on an autocommit connection (one commit each, or one
        for a step's success and the next step's start together)."""
        if commits:
            self.commits += 1
            return
        self.statements += 1
        verb = sql.lstrip().split(None, 1)[0].upper() + " (checkpoint)"
        self.by_kind[verb] = self.by_kind.get(verb, 0) + 1

    def reset(self) -> None:
        self.statements, self.commits, self.by_kind = 0, 0, {}


def spread(values: list[float], unit: float = 1e3, fmt: str = "8.2f") -> str:
    """`median (min..max)` in the unit (ms by default)."""
    v = [x * unit for x in values]
    return f"{statistics.median(v):{fmt}} ({min(v):.2f}..{max(v):.2f})"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def interleaved(runs: int, *measures: Callable[[], float]) -> list[list[float]]:
    """Each measure once per round, rounds repeated: machine noise hits every peer alike."""
    results: list[list[float]] = [[] for _ in measures]
    for _ in range(runs):
        for i, measure in enumerate(measures):
            results[i].append(measure())
    return results


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for pid {pid}")


def wait(what: str, predicate: Callable[[], Any], timeout: float = 30.0, poll: float = 0.002) -> Any:
    """Poll `predicate` until it returns something truthy, and return that; give up with a message after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise SystemExit(f"timed out waiting for {what}")
