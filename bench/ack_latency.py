"""Ack latency of /ops slash commands sent to real `opsbot serve` processes sharing one PostgreSQL, N at a time,
and the resident memory of each process afterwards.

    python bench/ack_latency.py [--total 1000] [--concurrency 50] [--replicas 2] [--runs 3] [--sqlite]

Every command is a real request (`rds.create-replica … env=prod`), spread round-robin over the replicas, so each
ack is followed by preflight against moto, an intent insert and Slack deliveries in the same processes: the acks
are measured under that load. Prints median, p99 and max per run and over all runs (target: p99 < 100 ms).
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from common import fresh_pg, percentile, quiet, rss_mib

from devstack.demo import CONFIG, OPS, local_stack

USERS = {f"U0USER{i:04d}": f"user{i}" for i in range(200)}


def one_run(total: int, concurrency: int, replicas: int, pg: bool) -> tuple[list[float], list[float]]:
    config = {**CONFIG, "roles": {"dba": list(USERS), "dba-lead": list(USERS)[:5]}}
    with ExitStack() as stack:
        url = stack.enter_context(fresh_pg()) if pg else None
        local = stack.enter_context(
            local_stack(config, USERS, {"OPSBOT_LOG_LEVEL": "WARNING"}, database_url=url, replicas=replicas)
        )
        drivers = [local.driver_for(n) for n in range(replicas)]
        users = list(USERS)

        def send(i: int) -> float:
            text = f"rds.create-replica source=billing-db replica=bench-r{i} env=prod"
            ack = drivers[i % replicas].slash_command("/ops", text, user=users[i % len(users)], channel=OPS)
            if ack.status != 200:
                raise SystemExit(f"command {i}: ack {ack.status} {ack.body[:200]}")
            return ack.elapsed

        with ThreadPoolExecutor(concurrency) as pool:
            acks = list(pool.map(send, range(total)))
        time.sleep(2)  # let the work after the acks finish before reading memory
        return acks, [rss_mib(proc.pid) for proc, _ in local.replicas]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true", help="one SQLite store instead of PostgreSQL")
    args = parser.parse_args()
    quiet()
    everything: list[float] = []
    p99s: list[float] = []
    for run in range(1, args.runs + 1):
        started = time.perf_counter()
        acks, memory = one_run(args.total, args.concurrency, args.replicas, not args.sqlite)
        everything += acks
        ms = [a * 1000 for a in acks]
        p99s.append(percentile(ms, 99))
        print(
            f"run {run}: {len(ms)} acks in {time.perf_counter() - started:.1f}s  median {statistics.median(ms):6.1f} ms"
            f"  p99 {percentile(ms, 99):6.1f} ms  max {max(ms):6.1f} ms  over 3 s: {sum(m > 3000 for m in ms)}"
            f"  RSS after: {', '.join(f'{m:.0f} MiB' for m in memory)}"
        )
    ms = [a * 1000 for a in everything]
    print(
        f"all {len(ms)} over {args.replicas} replicas: median {statistics.median(ms):.1f} ms, "
        f"p99 {percentile(ms, 99):.1f} ms (per run {min(p99s):.1f}..{max(p99s):.1f}), max {max(ms):.1f} ms"
    )


if __name__ == "__main__":
    main()
