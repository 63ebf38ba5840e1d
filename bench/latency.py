"""Approve click -> first side effect, and state change -> Slack message, through real `opsbot serve` processes
(two replicas on one PostgreSQL), the fake Slack over HTTP and moto.

    python bench/latency.py [--samples 20] [--replicas 2] [--gap 3]

approve -> first side effect   from sending the signed Approve click to the executor's "started" checkpoint of
                               the first step (the fenced write made immediately before the AWS call)
  click -> approval recorded    the signed click, its ack and the approval's transaction
  approval -> claimed          the wake-up: NOTIFY to the executor that claims the intent (lease taken)
  claimed -> first side effect the gate before the first step: approvals checked against today's roles and the
                               plan recomputed from the world as it is now (preflight's AWS reads, here moto)
approve recorded -> Slack      from the `approved` audit event to the plan message's chat.update in the fake Slack
step started -> Slack          from the first step's "started" checkpoint to its thread reply in the fake Slack

Samples are taken one at a time, --gap seconds apart, so Slack's per-channel rate limit (which the fake enforces,
about one message a second with a small burst) is not what is measured. Prints median (min..max) and p90.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import sqlalchemy as sa
from common import fresh_pg, percentile, quiet, wait

from bot.ids import ActionId
from devstack.demo import ALICE, BOB, CONFIG, OPS, Stack, local_stack
from store.db import make_engine


class Sampler:
    def __init__(self, stack: Stack, url: str, replicas: int, gap: float) -> None:
        self.stack, self.replicas, self.gap = stack, replicas, gap
        self.engine = make_engine(url)

    def one(self, query: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(query), params).first()

    def calls_after(self, method: str, moment: float, **match: Any) -> float | None:
        calls = [
            c.at
            for c in self.stack.fake.calls_to(method)
            if c.at >= moment and c.status == 200 and all(c.args.get(k) == v for k, v in match.items())
        ]
        return min(calls) if calls else None

    def sample(self, i: int) -> tuple[float, ...]:
        replica = f"lat-r{i}"
        text = f"rds.create-replica source=billing-db replica={replica} env=prod"
        assert self.stack.driver_for(i % self.replicas).slash_command("/ops", text, user=ALICE, channel=OPS).ok
        intent_id, parent_ts = wait(
            "the plan message",
            lambda: self.one(
                "SELECT t.intent_id, t.parent_ts FROM slack_threads t JOIN intents i ON i.id = t.intent_id "
                "WHERE i.params::json->>'replica' = :r AND t.parent_ts IS NOT NULL",
                r=replica,
            ),
        )
        time.sleep(self.gap / 2)  # the plan's own messages are out; the channel's rate bucket refills
        clicked = time.time()
        ack = self.stack.driver_for((i + 1) % self.replicas).click(OPS, parent_ts, ActionId.APPROVE.value, user=BOB)
        assert ack.ok, ack
        (started,) = wait(
            "the first step to start",
            lambda: self.one(
                "SELECT started_at FROM step_checkpoints WHERE intent_id = :i ORDER BY seq LIMIT 1", i=intent_id
            ),
        )
        (approved,) = self.one(
            "SELECT created_at FROM audit_events WHERE intent_id = :i AND kind = 'approved'", i=intent_id
        )
        (claimed,) = self.one("SELECT started_at FROM intents WHERE id = :i", i=intent_id)
        updated = wait(
            "the plan message update", lambda: self.calls_after("chat.update", approved.timestamp(), ts=parent_ts)
        )
        replied = wait(
            "the step's thread reply",
            lambda: self.calls_after("chat.postMessage", started.timestamp(), thread_ts=parent_ts),
        )
        time.sleep(self.gap / 2)
        return (
            started.timestamp() - clicked,
            approved.timestamp() - clicked,
            claimed.timestamp() - approved.timestamp(),
            started.timestamp() - claimed.timestamp(),
            updated - approved.timestamp(),
            replied - started.timestamp(),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--gap", type=float, default=3.0)
    args = parser.parse_args()
    quiet()
    users = {ALICE: "alice", BOB: "bob"}
    with fresh_pg() as url, local_stack(CONFIG, users, {"OPSBOT_LOG_LEVEL": "WARNING"}, url, args.replicas) as stack:
        sampler = Sampler(stack, url, args.replicas, args.gap)
        try:
            samples = [sampler.sample(i) for i in range(args.samples)]
        except SystemExit:
            print(f"see the replicas' logs in {stack.workdir}")
            raise
        finally:
            sampler.engine.dispose()
    throttled = sum(1 for c in stack.fake.calls if c.status == 429)
    print(f"== {args.samples} samples over {args.replicas} replicas on PostgreSQL; ms, median (min..max), p90")
    print(f"(Slack answered 429 to {throttled} calls: its one message a second per channel, enforced by the fake)")
    labels = (
        "approve click -> first side effect",
        "  click -> approval recorded",
        "  approval recorded -> claimed by an executor",
        "  claimed -> first side effect (gate, re-plan)",
        "approve recorded -> Slack (plan update)",
        "step started -> Slack (thread reply)",
    )
    for n, label in enumerate(labels):
        ms = [s[n] * 1000 for s in samples]
        print(f"{label:<42} {statistics.median(ms):7.1f} ({min(ms):.1f}..{max(ms):.1f})  p90 {percentile(ms, 90):.1f}")


if __name__ == "__main__":
    main()
