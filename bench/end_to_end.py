"""An approved 3-step no-op intent end to end, and the run alone, side by side with DBOS Transact running a
3-step workflow on the same PostgreSQL server in the same run, and the raw INSERT+COMMIT floor.

    python bench/end_to_end.py [--intents 200] [--runs 7] [--profile]

    end to end   request (plan, intent insert) -> approve -> claim -> three steps -> verify -> finish
    run alone    claim -> three steps -> verify -> finish (the intent approved beforehand)
    DBOS         one @DBOS.workflow calling three @DBOS.step no-ops, called directly (durable, sequential)

Each figure is the median (min..max) over --runs rounds, each round the mean of --intents sequential intents;
the peers alternate within each round. Needs the bench extra: pip install -e '.[bench]'. --profile writes a
pyinstrument profile of the end-to-end path to bench/profile-end-to-end.html and prints its top frames.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from typing import Any

from common import (
    NOOP_CONFIG,
    RoundTrips,
    fresh_pg,
    interleaved,
    noop_registry,
    quiet,
    raw_commit_cost,
    spread,
)

from store.db import make_engine
from store.migrate import upgrade
from store.sql import SqlStore
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.executor import Executor
from workflows.service import OpsService


class Opsbot:
    """The control plane in-process, as `opsbot serve` runs it, minus Slack and the wake-up threads."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.trips = RoundTrips().attach(self.engine)
        store = SqlStore(self.engine)
        rt = Runtime(store=store, registry=noop_registry(3), config=parse_config(NOOP_CONFIG), adapters=None)  # type: ignore[arg-type]
        self.ops = OpsService(rt)
        self.executor = Executor(rt, "bench", threads=1)
        self.plan_hashes: dict[str, str] = {}

    def request(self) -> str:
        intent = self.ops.request("bench.noop", {"run": uuid.uuid4().hex}, "bench", "alice").intent
        self.plan_hashes[intent.id] = intent.plan_hash
        return intent.id

    def approve(self, intent_id: str) -> None:
        self.ops.approve(intent_id, "bob", self.plan_hashes.pop(intent_id))  # Slack's button carries the hash

    def run(self) -> None:
        [claimed] = self.executor.claim(1)
        done = self.executor.drive(claimed)
        assert done.status.value == "succeeded", done.status_reason

    def end_to_end(self, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            self.approve(self.request())
            self.run()
        return (time.perf_counter() - start) / n

    def run_alone(self, n: int) -> float:
        for _ in range(n):
            self.approve(self.request())
        start = time.perf_counter()
        for _ in range(n):
            self.run()
        return (time.perf_counter() - start) / n

    def count(self) -> dict[str, RoundTrips]:
        """Statements and commits of each phase of one intent."""
        phases: dict[str, RoundTrips] = {}

        def measured(phase: str) -> None:
            phases[phase] = RoundTrips(self.trips.statements, self.trips.commits, dict(self.trips.by_kind))
            self.trips.reset()

        self.trips.reset()
        intent_id = self.request()
        measured("request")
        self.approve(intent_id)
        measured("approve")
        self.run()
        measured("run")
        return phases


def dbos_peer(url: str) -> Any:
    """DBOS Transact with its system database on the same server; returns a callable running n workflows."""
    from dbos import DBOS, DBOSConfig

    config: DBOSConfig = {
        "name": "opsbot-bench",
        "system_database_url": url.replace("+psycopg", ""),
        "log_level": "WARNING",
        "run_admin_server": False,  # type: ignore[typeddict-unknown-key]
    }
    DBOS(config=config)

    @DBOS.step()
    def one() -> int:
        return 1

    @DBOS.step()
    def two() -> int:
        return 2

    @DBOS.step()
    def three() -> int:
        return 3

    @DBOS.workflow()
    def three_steps() -> int:
        return one() + two() + three()

    DBOS.launch()

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            assert three_steps() == 6
        return (time.perf_counter() - start) / n

    return run


def ratio(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}..{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intents", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    quiet()
    with fresh_pg() as ours, fresh_pg() as theirs:
        upgrade(ours)
        bot = Opsbot(ours)
        dbos = dbos_peer(theirs)
        n = args.intents
        bot.end_to_end(20), bot.run_alone(20), dbos(20), raw_commit_cost(ours, 20)  # warm up
        e2e, alone, peer, raw = interleaved(
            args.runs,
            lambda: bot.end_to_end(n),
            lambda: bot.run_alone(n),
            lambda: dbos(n),
            lambda: raw_commit_cost(ours, n),
        )
        print(f"== PostgreSQL, {args.runs} rounds of {n} sequential intents; ms per intent, median (min..max)")
        print(f"opsbot end to end (request -> approve -> run)   {spread(e2e)}   {1 / statistics.median(e2e):6.0f}/s")
        print(f"opsbot run alone (claim -> 3 steps -> finish)   {spread(alone)}")
        print(f"DBOS Transact 3-step workflow                   {spread(peer)}   {1 / statistics.median(peer):6.0f}/s")
        print(f"raw INSERT+COMMIT                               {spread(raw)}")
        ratios = [a / b for a, b in zip(e2e, peer, strict=True)]
        half = [a / b for a, b in zip(alone, peer, strict=True)]
        print(f"end to end / DBOS  {ratio(ratios)}  target <= 1, stretch 0.5")
        print(f"run alone / DBOS   {ratio(half)}  target <= 0.5")
        print(f"end to end / raw commit  {statistics.median(e2e) / statistics.median(raw):.1f} commits' worth")
        print("== round trips per intent (statements / commits)")
        for phase, trips in bot.count().items():
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(trips.by_kind.items()))
            print(f"{phase:<8} {trips.statements:3d} statements, {trips.commits:2d} commits   ({kinds})")
        if args.profile:
            from pathlib import Path

            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
            bot.end_to_end(n)
            profiler.stop()
            out = Path(__file__).with_name("profile-end-to-end.html")
            out.write_text(profiler.output_html())
            print(profiler.output_text(unicode=False, color=False, show_all=False)[:6000])
            print(f"profile: {out}")
        from dbos import DBOS

        DBOS.destroy()


if __name__ == "__main__":
    main()
