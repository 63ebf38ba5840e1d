"""Cost of one checkpointed no-op step, side by side with a raw single-row INSERT+COMMIT on the same database.

    python bench/step_cost.py [--steps 100] [--runs 7]

On PostgreSQL it uses OPSBOT_TEST_DATABASE_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/test.
Prints medians and spread (min..max) per database, and the ratio step / raw commit. Then, on PostgreSQL, the
same step as shipped (its span and metrics in place, tracing off: the default) side by side with the engine whose
spans and metrics are replaced by bare no-ops: what the instrumentation costs when nobody traces.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import NOOP_CONFIG, fresh_pg, interleaved, noop_registry, quiet, raw_commit_cost

import store.sql
import workflows.executor
import workflows.steps
from store.db import make_engine
from store.migrate import upgrade
from store.sql import SqlStore
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.executor import Executor
from workflows.service import OpsService


def step_cost(url: str, steps: int) -> float:
    """Seconds per checkpointed no-op step, from one intent of `steps` steps driven end to end."""
    store = SqlStore(make_engine(url))
    rt = Runtime(store=store, registry=noop_registry(steps), config=parse_config(NOOP_CONFIG), adapters=None)  # type: ignore[arg-type]
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


class _Nothing:
    """Stands in for a span, a metric and its children: every call does nothing."""

    def __call__(self, *_: Any, **__: Any) -> _Nothing:
        return self

    def __getattr__(self, _name: str) -> _Nothing:
        return self

    def __enter__(self) -> _Nothing:
        return self

    def __exit__(self, *_: Any) -> None:
        return None


@contextmanager
def telemetry_stripped() -> Iterator[None]:
    """The executor's, the probes' and the store's spans and metrics replaced by no-ops for the block."""
    nothing = _Nothing()
    names = {
        workflows.executor: ["span", "STEP_SECONDS", "APPROVAL_TO_EFFECT", "UNKNOWN_OUTCOMES", "UNKNOWN_RESOLVED"],
        workflows.steps: ["span"],
        store.sql: ["TRANSITIONS"],
    }
    saved = {(m, n): getattr(m, n) for m, ns in names.items() for n in ns}
    for m, n in saved:
        setattr(m, n, nothing)
    try:
        yield
    finally:
        for (m, n), v in saved.items():
            setattr(m, n, v)


def stripped_step_cost(url: str, steps: int) -> float:
    with telemetry_stripped():
        return step_cost(url, steps)


def summarize(label: str, values: list[float]) -> str:
    us = [v * 1e6 for v in values]
    return f"{label:<28} median {statistics.median(us):8.0f} µs   spread {min(us):6.0f}..{max(us):6.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    quiet()
    tmp = Path(tempfile.mkdtemp(prefix="opsbot-bench-"))
    with fresh_pg() as pg_url:
        for label, url in (("sqlite", f"sqlite:///{tmp / 'bench.db'}"), ("postgresql", pg_url)):
            upgrade(url)
            step_cost(url, 5)  # warm up
            raw_commit_cost(url, 20)
            steps, raws = interleaved(
                args.runs, lambda u=url: step_cost(u, args.steps), lambda u=url: raw_commit_cost(u, args.steps)
            )
            ratios = [s / r for s, r in zip(steps, raws, strict=True)]
            print(f"== {label} ({args.runs} runs of {args.steps} steps)")
            print(summarize("checkpointed no-op step", steps))
            print(summarize("raw INSERT+COMMIT", raws))
            print(
                f"{'ratio step / raw commit':<28} median {statistics.median(ratios):8.2f}      spread "
                f"{min(ratios):.2f}..{max(ratios):.2f}   (target <= 3)"
            )
        shipped, bare = interleaved(
            args.runs, lambda: step_cost(pg_url, args.steps), lambda: stripped_step_cost(pg_url, args.steps)
        )
        costs = [a / b for a, b in zip(shipped, bare, strict=True)]
        print(f"== postgresql: instrumentation with tracing off ({args.runs} runs of {args.steps} steps)")
        print(summarize("step as shipped", shipped))
        print(summarize("step, telemetry stripped", bare))
        print(
            f"{'shipped / stripped':<28} median {statistics.median(costs):8.3f}      spread "
            f"{min(costs):.3f}..{max(costs):.3f}"
        )


if __name__ == "__main__":
    main()
