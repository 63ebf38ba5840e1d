"""Ack latency of /ops slash commands sent to a real `opsbot serve` process, N at a time.

    python bench/ack_latency.py [--total 200] [--concurrency 20] [--runs 3]

Every command is a real request (`rds.create-replica … env=prod`), so each ack is followed by preflight
against moto, an intent insert and Slack deliveries in the same server process: the acks are measured
under that load. Prints median, p99 and max per run, and over all runs.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.demo import CONFIG, OPS, local_stack

USERS = {f"U0USER{i:04d}": f"user{i}" for i in range(200)}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def one_run(total: int, concurrency: int) -> list[float]:
    config = {**CONFIG, "roles": {"dba": list(USERS), "dba-lead": list(USERS)[:5]}}
    with local_stack(config, USERS, {"OPSBOT_LOG_LEVEL": "WARNING"}) as stack:
        users = list(USERS)

        def send(i: int) -> float:
            text = f"rds.create-replica source=billing-db replica=bench-r{i} env=prod"
            ack = stack.driver.slash_command("/ops", text, user=users[i % len(users)], channel=OPS)
            if ack.status != 200:
                raise SystemExit(f"command {i}: ack {ack.status} {ack.body[:200]}")
            return ack.elapsed

        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(send, range(total)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    everything: list[float] = []
    for run in range(1, args.runs + 1):
        started = time.perf_counter()
        acks = one_run(args.total, args.concurrency)
        everything += acks
        ms = [a * 1000 for a in acks]
        print(
            f"run {run}: {len(ms)} acks in {time.perf_counter() - started:.1f}s  median {statistics.median(ms):6.1f} ms"
            f"  p99 {percentile(ms, 99):6.1f} ms  max {max(ms):6.1f} ms  over 3 s: {sum(m > 3000 for m in ms)}"
        )
    ms = [a * 1000 for a in everything]
    print(
        f"all {len(ms)}: median {statistics.median(ms):.1f} ms, p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms"
    )


if __name__ == "__main__":
    main()
