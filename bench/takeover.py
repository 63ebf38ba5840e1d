"""Takeover after SIGKILL in the middle of a step: three `opsbot serve` replicas on one PostgreSQL with the default
lease settings; the replica running `create_replica` (whose AWS call is held open for a few seconds) is killed,
and another replica takes the intent over, resolves the step by its probe and finishes.

    python bench/takeover.py [--samples 3]

killed -> taken over     SIGKILL to the `executor_lost` audit event written by the replica that took over
killed -> step resolved  SIGKILL to the interrupted step resolved by its probe (no second create call)
killed -> succeeded      SIGKILL to the intent's verdict

Defaults measured: lease 15 s, renewed every third of it (5 s), reconciler at most 5 s between passes and woken
when a lease comes due. Expect takeover between 10 and 15 s after the kill (what was left of the lease). Target:
under 20 s.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import statistics
import time
from typing import Any

import common
import sqlalchemy as sa
from common import fresh_pg, quiet

from bot.ids import ActionId
from devstack.demo import ALICE, BOB, CONFIG, OPS, local_stack
from opsbot.settings import Settings
from store.db import make_engine

SLOW = 6.0  # seconds the create call stays open after AWS accepted it

wait = functools.partial(common.wait, timeout=60.0, poll=0.02)


def sample(n: int) -> tuple[float, float, float]:
    env = {"OPSBOT_LOG_LEVEL": "WARNING", "OPSBOT_TEST_SLOW_CREATE": str(SLOW)}
    users = {ALICE: "alice", BOB: "bob"}
    with fresh_pg() as url, local_stack(CONFIG, users, env, url, 3, serve_module="tests.slow_serve") as stack:
        engine = make_engine(url)

        def one(query: str, **params: Any) -> Any:
            with engine.connect() as conn:
                return conn.execute(sa.text(query), params).first()

        replica = f"takeover-r{n}"
        text = f"rds.create-replica source=billing-db replica={replica} env=prod"
        assert stack.driver.slash_command("/ops", text, user=ALICE, channel=OPS).ok
        intent_id, parent_ts = wait(
            "the plan message",
            lambda: one(
                "SELECT t.intent_id, t.parent_ts FROM slack_threads t JOIN intents i ON i.id = t.intent_id "
                "WHERE i.params::json->>'replica' = :r AND t.parent_ts IS NOT NULL",
                r=replica,
            ),
        )
        assert stack.driver_for(1).click(OPS, parent_ts, ActionId.APPROVE.value, user=BOB).ok
        wait(
            "the create call to be under way",
            lambda: one("SELECT 1 FROM step_checkpoints WHERE intent_id = :i AND name = 'create_replica'", i=intent_id),
        )
        time.sleep(1.0)  # well inside the call: AWS accepted it, the answer has not come back
        (owner,) = one("SELECT lease_owner FROM intents WHERE id = :i", i=intent_id)
        pid = int(owner.rsplit(":", 1)[1])
        assert pid in [p.pid for p, _ in stack.replicas], owner
        killed = time.time()
        os.kill(pid, signal.SIGKILL)

        def event(kind: str) -> float | None:
            row = one(
                "SELECT created_at FROM audit_events WHERE intent_id = :i AND kind = :k ORDER BY seq LIMIT 1",
                i=intent_id,
                k=kind,
            )
            return row[0].timestamp() if row else None

        lost = wait("another replica to take over", lambda: event("executor_lost"))
        resolved = wait("the step to be resolved", lambda: event("step_resolved_by_observation"))
        done = wait("the verdict", lambda: event("succeeded"), timeout=120)
        (creates,) = one("SELECT count(*) FROM audit_events WHERE intent_id = :i AND kind = 'step_rerun'", i=intent_id)
        assert creates == 0, "the create step ran again"
        engine.dispose()
        return lost - killed, resolved - killed, done - killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    quiet()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    samples = [sample(n) for n in range(args.samples)]
    print(
        f"== {args.samples} kills, lease {settings.lease_seconds:g} s (renewed every {settings.lease_seconds / 3:g} s),"
        f" reconciler at most {settings.reconcile_interval_seconds:g} s apart; seconds, median (min..max)"
    )
    for i, label in enumerate(("killed -> taken over", "killed -> step resolved by its probe", "killed -> succeeded")):
        s = [x[i] for x in samples]
        print(f"{label:<38} {statistics.median(s):6.1f} ({min(s):.1f}..{max(s):.1f})")


if __name__ == "__main__":
    main()
