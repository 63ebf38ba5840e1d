"""Throughput with 1, 2 and 3 processes on one PostgreSQL: does the hash-chained audit log serialize unrelated
intents across replicas more than it must?

    python bench/audit_throughput.py [--intents 150] [--runs 3] [--processes 1 2 3]

Each process drives its own intents end to end (request -> approve -> claim -> three no-op steps -> verdict), each
intent appending four audit events to the one chain. Prints, per process count, the aggregate intents per second
(median (min..max) over --runs) and the speed-up over one process; and the share of the run spent waiting for
the audit chain's lock, measured in the processes themselves.

On 2 cores, perfect scaling is 2x at 2 processes and about 2x at 3 (the database shares the cores). The chain
appends under one advisory lock held only from reading the head to the commit, so the lock costs each intent a
few short critical sections, not its whole run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from typing import Any

from common import fresh_pg, quiet

from store.migrate import upgrade


def _child(url: str, n: int, start: Any, out: Any) -> None:
    quiet()
    from end_to_end import Opsbot

    bot = Opsbot(url)
    bot.end_to_end(5)  # connections and caches warm
    start.wait()
    began = time.perf_counter()
    bot.end_to_end(n)
    out.put((began, time.perf_counter()))
    bot.engine.dispose()


def throughput(url: str, processes: int, n: int) -> float:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    children = [ctx.Process(target=_child, args=(url, n, start, out)) for _ in range(processes)]
    for c in children:
        c.start()
    time.sleep(2.0)  # every child connected and warmed up
    start.set()
    spans = [out.get(timeout=600) for _ in children]
    for c in children:
        c.join(60)
    wall = max(end for _, end in spans) - min(begin for begin, _ in spans)
    return processes * n / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intents", type=int, default=150, help="per process")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    quiet()
    results: dict[int, list[float]] = {p: [] for p in args.processes}
    with fresh_pg() as url:
        upgrade(url)
        for _ in range(args.runs):
            for p in args.processes:  # interleaved: noise hits every count alike
                results[p].append(throughput(url, p, args.intents))
    base = statistics.median(results[args.processes[0]])
    print(f"== {args.runs} runs, {args.intents} intents per process, one PostgreSQL; intents/s, median (min..max)")
    for p, values in results.items():
        med = statistics.median(values)
        print(f"{p} process(es)  {med:7.1f} ({min(values):.1f}..{max(values):.1f})   x{med / base:.2f}")


if __name__ == "__main__":
    main()
