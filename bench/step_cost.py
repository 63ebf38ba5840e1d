"""Cost of one checkpointed no-op step, side by side with a raw single-row INSERT+COMMIT on the same database.

    python bench/step_cost.py [--steps 100] [--runs 7] [--pg URL]

Without --pg it uses OPSBOT_TEST_DATABASE_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/test.
Prints medians and spread (min..max) per database, and the ratio step / raw commit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import types
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from store.db import make_engine
from store.migrate import upgrade
from store.sql import SqlStore
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.executor import Executor
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
from workflows.service import OpsService

CONFIG = {
    "environments": {"bench": {}},
    "roles": {"r": ["alice"], "a": ["bob"]},
    "policies": {"bench.noop": {"request": ["r"], "approve": ["a"]}},
}


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


def step_cost(url: str, steps: int) -> float:
    """Seconds per checkpointed no-op step, from one intent of `steps` steps driven end to end."""
    store = SqlStore(make_engine(url))
    rt = Runtime(store=store, registry=noop_registry(steps), config=parse_config(CONFIG), adapters=None)  # type: ignore[arg-type]
    ops = OpsService(rt)
    intent = ops.request("bench.noop", {"run": uuid.uuid4().hex}, "bench", "alice").intent
    ops.approve(intent.id, "bob", intent.plan_hash)
    executor = Executor(rt, "bench", threads=1)
    [claimed] = executor.claim(1)
    start = time.perf_counter()
    done = executor.drive(claimed)
    elapsed = time.perf_counter() - start
    assert done.status.value == "succeeded", done.status_reason
    store.engine.dispose()
    return elapsed / (steps + 1)  # + the verification step


def raw_commit_cost(url: str, n: int) -> float:
    """Seconds per single-row INSERT+COMMIT through the bare DB-API connection."""
    engine = make_engine(url)
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        pg = engine.dialect.name == "postgresql"
        if not pg:
            cur.execute("BEGIN IMMEDIATE")
        cur.execute("CREATE TABLE IF NOT EXISTS bench_raw (id TEXT PRIMARY KEY, body TEXT)")
        conn.commit()
        start = time.perf_counter()
        for _ in range(n):
            if not pg:
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(
                "INSERT INTO bench_raw (id, body) VALUES (%s, %s)"
                if pg
                else "INSERT INTO bench_raw (id, body) VALUES (?, ?)",
                (uuid.uuid4().hex, "x" * 100),
            )
            conn.commit()
        return (time.perf_counter() - start) / n
    finally:
        conn.close()
        engine.dispose()


def fresh_pg(server_url: str) -> tuple[str, Any]:
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"opsbot_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url, drop


def summarize(label: str, values: list[float]) -> str:
    us = [v * 1e6 for v in values]
    return f"{label:<28} median {statistics.median(us):8.0f} µs   spread {min(us):6.0f}..{max(us):6.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--pg", default=os.environ.get("OPSBOT_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    tmp = Path(tempfile.mkdtemp(prefix="opsbot-bench-"))
    sqlite_url = f"sqlite:///{tmp / 'bench.db'}"
    pg_url, drop = fresh_pg(args.pg)
    try:
        for label, url in (("sqlite", sqlite_url), ("postgresql", pg_url)):
            upgrade(url)
            step_cost(url, 5)  # warm up
            raw_commit_cost(url, 20)
            steps, raws = [], []
            for _ in range(args.runs):  # interleaved, so machine noise hits both alike
                steps.append(step_cost(url, args.steps))
                raws.append(raw_commit_cost(url, args.steps))
            ratios = [s / r for s, r in zip(steps, raws, strict=True)]
            print(f"== {label} ({args.runs} runs of {args.steps} steps)")
            print(summarize("checkpointed no-op step", steps))
            print(summarize("raw INSERT+COMMIT", raws))
            print(
                f"{'ratio step / raw commit':<28} median {statistics.median(ratios):8.2f}      spread "
                f"{min(ratios):.2f}..{max(ratios):.2f}   (target <= 3)"
            )
    finally:
        drop()


if __name__ == "__main__":
    main()
