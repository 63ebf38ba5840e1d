"""Resident memory of one `opsbot serve`: idle on an empty store, and idle with 100,000 intents in it.

    python bench/memory.py [--intents 100000] [--idle 30]

The store is filled as bench/passes.py fills it (real intents cloned server-side: 98.8% succeeded, 1% waiting for
approval, 0.2% converging). The serve process runs its worker (executor, reconciler, Slack delivery) against it
with nothing sent to it; RSS is read from /proc after --idle seconds, then again after as long again. The
figure after the 1,000-command ack run is printed by bench/ack_latency.py.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from common import fresh_pg, quiet, rss_mib
from passes import Rig, fill, make_templates, reserve_history

from devstack.demo import ALICE, BOB, CONFIG, local_stack
from store.migrate import upgrade


def idle_rss(url: str, idle: float) -> tuple[float, float]:
    with local_stack(CONFIG, {ALICE: "alice", BOB: "bob"}, {"OPSBOT_LOG_LEVEL": "WARNING"}, url) as stack:
        proc = stack.replicas[0][0]
        time.sleep(idle)
        first = rss_mib(proc.pid)
        time.sleep(idle)
        return first, rss_mib(proc.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intents", type=int, default=100_000)
    parser.add_argument("--idle", type=float, default=30.0)
    args = parser.parse_args()
    quiet()
    with fresh_pg() as empty:
        upgrade(empty)
        bare = idle_rss(empty, args.idle)
    with fresh_pg() as url:
        upgrade(url)
        rig = Rig.build(url, 20)
        templates = make_templates(rig)
        reserve_history(rig)
        started = time.perf_counter()
        fill(rig, templates, 1, args.intents, datetime.now(UTC))
        print(f"filled {args.intents:,} intents in {time.perf_counter() - started:.0f} s")
        rig.engine.dispose()
        rig.admin.dispose()
        full = idle_rss(url, args.idle)
    print(f"== opsbot serve, idle; RSS after {args.idle:g} s and after {2 * args.idle:g} s")
    print(f"empty store            {bare[0]:6.0f} MiB  {bare[1]:6.0f} MiB")
    print(f"{args.intents:,} intents      {full[0]:6.0f} MiB  {full[1]:6.0f} MiB")


if __name__ == "__main__":
    main()
