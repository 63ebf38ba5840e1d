"""Three `opsbot serve` processes on one PostgreSQL and the fake Slack: a replica SIGKILLed in the middle of a step
is taken over by another, which resolves the step by its probe and finishes; a hundred concurrent approvals
spread over the three run the intent once; Slack gets each message once."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.ids import ActionId
from devstack.demo import start_serve
from fakeslack import FakeSlack, SlackDriver
from store.db import make_engine
from store.sql import SqlStore
from tests.conftest import _truncate, create_source, rds_client
from tests.slack_harness import (
    APPROVER,
    APPROVER2,
    CHANNELS,
    OPS,
    REQUESTER,
    SECRET,
    SLACK_CONFIG,
    TOKEN,
    USERS,
    wait_until,
)
from workflows.model import EventKind, Intent, IntentStatus

SLOW_CREATE = 4.0


@dataclass
class Replica:
    proc: subprocess.Popen[str]
    url: str
    log: Path


@dataclass
class Cluster:
    replicas: list[Replica]
    fake: FakeSlack
    store: SqlStore
    aws: str

    def driver(self, n: int) -> SlackDriver:
        return SlackDriver(self.fake, self.replicas[n].url, signing_secret=SECRET, timeout=30)

    def intents(self) -> list[Intent]:
        with self.store.transaction() as tx:
            return tx.list_intents(limit=100)


def _start(env: dict[str, str], log: Path) -> Replica:
    proc, url = start_serve(env, log, module="tests.slow_serve")
    return Replica(proc, url, log)


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, aws: str) -> Iterator[Cluster]:
    engine = make_engine(pg_url)
    _truncate(engine)
    create_source(aws)
    config = tmp_path / "opsbot.yml"
    config.write_text(yaml.safe_dump(SLACK_CONFIG))
    with FakeSlack(TOKEN, SECRET, channels=CHANNELS, users=USERS) as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_"))}
        env.update(
            OPSBOT_DATABASE_URL=pg_url,
            OPSBOT_CONFIG=str(config),
            AWS_ENDPOINT_URL=aws,
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            OPSBOT_SLACK_API_URL=fake.api_url,
            OPSBOT_TEST_SLOW_CREATE=str(SLOW_CREATE),
        )
        replicas = [_start(env, tmp_path / f"replica-{n}.log") for n in range(3)]
        try:
            yield Cluster(replicas, fake, SqlStore(engine), aws)
        finally:
            for r in replicas:
                if r.proc.poll() is None:
                    r.proc.send_signal(signal.SIGTERM)
            for r in replicas:
                try:
                    r.proc.wait(20)
                except subprocess.TimeoutExpired:
                    r.proc.kill()
            engine.dispose()


def _plan(c: Cluster, replica: str) -> tuple[Intent, Any]:
    text = f"rds.create-replica source=billing-db replica={replica} env=prod"
    ack = c.driver(0).slash_command("/ops", text, user=REQUESTER, channel=OPS)
    assert ack.status == 200, ack
    wait_until(lambda: any(i.params["replica"] == replica for i in c.intents()), timeout=30)
    intent = next(i for i in c.intents() if i.params["replica"] == replica)
    wait_until(lambda: any(intent.id in str(m.blocks) for m in c.fake.messages(OPS)), timeout=30)
    parent = next(m for m in c.fake.messages(OPS) if intent.id in str(m.blocks) and m.thread_ts in (None, m.ts))
    return intent, parent


def test_a_replica_killed_mid_step_is_taken_over_and_the_step_resolved_by_its_probe(cluster: Cluster) -> None:
    """SIGKILL the replica running create_replica after AWS accepted it: another finishes, one replica exists."""
    c = cluster
    intent, parent = _plan(c, "billing-db-r1")
    assert c.driver(1).click(OPS, parent.ts, ActionId.APPROVE.value, user=APPROVER).status == 200

    def mid_step() -> bool:
        with c.store.transaction() as tx:
            steps = {s.name: s for s in tx.steps(intent.id)}
            current = tx.get_intent(intent.id)
        return (
            "create_replica" in steps
            and steps["create_replica"].status.value == "started"
            and bool(current and current.lease_owner)
        )

    wait_until(mid_step, timeout=30)
    time.sleep(0.5)  # the create reached AWS; the answer is still on its way (the slow RDS holds it)
    owner = next(i for i in c.intents() if i.id == intent.id).lease_owner or ""
    pid = int(owner.rsplit(":", 1)[1])
    [victim] = [r for r in c.replicas if r.proc.pid == pid]
    killed_at = time.monotonic()
    victim.proc.send_signal(signal.SIGKILL)
    wait_until(lambda: next(i for i in c.intents() if i.id == intent.id).status is IntentStatus.SUCCEEDED, timeout=90)
    takeover = time.monotonic() - killed_at
    assert takeover < 20 + SLOW_CREATE, takeover
    with c.store.transaction() as tx:
        events = tx.events(intent.id)
        steps = {s.name: s for s in tx.steps(intent.id)}
    kinds = [(e.kind, e.data.get("step")) for e in events]
    assert (EventKind.EXECUTOR_LOST, None) in kinds
    assert (EventKind.STEP_RESOLVED_BY_OBSERVATION, "create_replica") in kinds
    assert steps["create_replica"].attempts == 1
    replicas = [
        i
        for i in rds_client(c.aws).describe_db_instances()["DBInstances"]
        if i["DBInstanceIdentifier"] == "billing-db-r1"
    ]
    assert len(replicas) == 1
    thread = c.fake.thread(OPS, parent.ts)
    texts = [m.text for m in thread]
    assert len(texts) == len(set(texts)), "a message was posted twice"


def _click_payload(c: Cluster, parent: Any, user: str) -> dict[str, Any]:
    button = next(
        e
        for b in parent.blocks
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("action_id") == ActionId.APPROVE.value
    )
    return {
        "type": "block_actions",
        "user": {"id": user, "name": USERS[user]},
        "team": {"id": "T0"},
        "channel": {"id": OPS},
        "container": {"type": "message", "message_ts": parent.ts, "channel_id": OPS},
        "message": {"ts": parent.ts, "text": parent.text, "blocks": parent.blocks},
        "trigger_id": c.fake.issue_trigger(user),
        "response_url": c.fake.issue_response_url(OPS, user, message_ts=parent.ts),
        "actions": [{"action_id": ActionId.APPROVE.value, "block_id": "b", "type": "button", "value": button["value"]}],
    }


def test_a_hundred_approvals_over_three_replicas_run_the_intent_once(cluster: Cluster) -> None:
    """Two approvers clicking fifty times each, spread over the three replicas: one approval, one execution."""
    c = cluster
    intent, parent = _plan(c, "billing-db-r2")
    barrier = threading.Barrier(100)
    statuses: list[int] = []

    errors: list[str] = []

    def click(n: int) -> None:
        barrier.wait()
        user = APPROVER if n % 2 else APPROVER2
        try:  # the button as the message showed it when loaded: the later clicks land on an updated message
            statuses.append(c.driver(n % 3)._send_payload("block_actions", _click_payload(c, parent, user)).status)
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=click, args=(n,)) for n in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses.count(200) == 100, (sorted(set(statuses)), errors[:3])
    wait_until(lambda: next(i for i in c.intents() if i.id == intent.id).status is IntentStatus.SUCCEEDED, timeout=60)
    with c.store.transaction() as tx:
        events = [e.kind for e in tx.events(intent.id)]
    assert events.count(EventKind.CLAIMED) == 1
    replicas = [
        i
        for i in rds_client(c.aws).describe_db_instances()["DBInstances"]
        if i["DBInstanceIdentifier"] == "billing-db-r2"
    ]
    assert len(replicas) == 1
