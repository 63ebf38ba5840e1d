"""Requests that expire: nobody approves or denies within the policy's time, nothing ran, so it ends EXPIRED; its
plan message says so and offers only "Request again" (to its requester); the digest lists what is about to expire."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.digest import build_digest
from bot.ids import ActionId
from tests.conftest import approve_current, create_source, rds_client
from tests.slack_harness import APPROVER, OPS, REQUESTER, SLACK_CONFIG, Bench, served
from workflows.config import DEFAULT_REQUEST_TTL, parse_config
from workflows.deps import Runtime
from workflows.errors import InvalidTransition, PermissionDenied
from workflows.executor import Executor
from workflows.model import IntentStatus, Lease, Move, StepRecord, StepStatus
from workflows.reconciler import Reconciler
from workflows.runtime import FrozenClock
from workflows.service import OpsService

WF = "rds.create-replica"
PARAMS = {"source": "billing-db", "replica": "billing-db-r1"}
S = IntentStatus


def with_config(rt: Runtime, **policy: Any) -> Runtime:
    raw = {
        "environments": {"prod": {"aws_region": "us-east-1"}, "lab": {"production": False, "expire_after_hours": 1}},
        "roles": {"dba": ["alice", "carol"], "dba-lead": ["bob"]},
        "policies": {WF: {"request": ["dba"], "approve": ["dba-lead"], **policy}},
    }
    return replace(rt, config=parse_config(raw))


def test_the_time_is_the_policys_here_then_the_policys_then_the_environments_then_a_week(runtime: Runtime) -> None:
    plain = with_config(runtime).config
    assert plain.request_ttl(WF, "prod") == DEFAULT_REQUEST_TTL == timedelta(days=7)
    assert plain.request_ttl(WF, "lab") == timedelta(hours=1)
    policy = with_config(runtime, expire_after_hours=8, by_environment={"prod": {"expire_after_hours": 2}}).config
    assert policy.request_ttl(WF, "prod") == timedelta(hours=2)
    assert policy.request_ttl(WF, "lab") == timedelta(hours=8)


def test_an_undecided_request_expires_after_its_time_and_not_before(
    runtime: Runtime, aws: str, clock: FrozenClock
) -> None:
    rt = with_config(runtime, expire_after_hours=2)
    create_source(aws)
    ops, reconciler = OpsService(rt), Reconciler(rt)
    intent = ops.request(WF, dict(PARAMS), "prod", "alice").intent
    decided = ops.request(WF, {**PARAMS, "replica": "billing-db-r2"}, "prod", "alice").intent
    approve_current(ops, decided.id, "bob")  # approved: nothing left to decide
    clock.advance(2 * 3600 - 1)
    assert reconciler.expire_requests() == []
    clock.advance(2)
    [expired] = reconciler.expire_requests()
    assert expired.id == intent.id and expired.status is S.EXPIRED
    assert expired.status_reason is not None and "nobody approved or denied it within 2 h" in expired.status_reason
    assert ops.get(decided.id).status is S.APPROVED
    with rt.store.transaction() as tx:
        [event] = [e for e in tx.events(intent.id) if e.kind == "expired"]
    assert event.data["from"] == "pending_approval" and event.data["to"] == "expired"
    assert reconciler.expire_requests() == []  # once


def test_a_request_sent_back_for_approval_before_anything_ran_expires_too(
    runtime: Runtime, aws: str, clock: FrozenClock
) -> None:
    """The world changed before the first step: back to approval with a new plan; nobody looks at it again."""
    rt = with_config(runtime, expire_after_hours=1)
    create_source(aws)
    ops = OpsService(rt)
    intent = ops.request(WF, dict(PARAMS), "prod", "alice").intent
    approve_current(ops, intent.id, "bob")
    rds_client(aws).modify_db_instance(
        DBInstanceIdentifier="billing-db", DBInstanceClass="db.r5.xlarge", ApplyImmediately=True
    )
    [stale] = Executor(rt, "x").run_once()
    assert stale.status is S.NEEDS_REAPPROVAL
    clock.advance(3601)
    [expired] = Reconciler(rt).expire_requests()
    assert expired.id == intent.id and expired.status is S.EXPIRED


def test_a_request_whose_steps_began_never_expires(runtime: Runtime, aws: str, clock: FrozenClock) -> None:
    """Once a step has a checkpoint something may have changed: that is for a human, never a quiet expiry."""
    rt = with_config(runtime, expire_after_hours=1)
    create_source(aws)
    ops = OpsService(rt)
    intent = ops.request(WF, dict(PARAMS), "prod", "alice").intent
    approve_current(ops, intent.id, "bob")
    now = clock.now()
    with rt.store.transaction() as tx:
        current = tx.get_intent(intent.id)
        assert current is not None
        running = tx.start_run(current, Lease(intent.id, "x", "tok", now + timedelta(hours=1)), now)
    lease = Lease(intent.id, "x", "tok", now + timedelta(hours=1))
    rt.store.checkpoint_started(lease, StepRecord(intent.id, 1, "create_replica", StepStatus.STARTED, "t", 1, now))
    with rt.store.transaction() as tx:
        tx.move(running, Move(S.NEEDS_REAPPROVAL, "an approver lost the role"), now)
    clock.advance(10 * 3600)
    assert Reconciler(rt).expire_requests() == []
    assert ops.get(intent.id).status is S.NEEDS_REAPPROVAL


def test_only_its_requester_requests_an_expired_one_again_in_one_step(
    runtime: Runtime, aws: str, clock: FrozenClock
) -> None:
    rt = with_config(runtime, expire_after_hours=1)
    create_source(aws)
    ops = OpsService(rt)
    intent = ops.request(WF, dict(PARAMS), "prod", "alice").intent
    with pytest.raises(InvalidTransition, match=r"request is not available while intent .* is pending_approval"):
        ops.request_again(intent.id, "alice")
    clock.advance(3601)
    Reconciler(rt).expire_requests()
    with pytest.raises(PermissionDenied, match=r"only its requester \(@alice\)"):
        ops.request_again(intent.id, "carol")  # holds the request role, but it is not hers
    again = ops.request_again(intent.id, "alice")
    assert again.id != intent.id and again.status is S.PENDING_APPROVAL
    assert again.params == intent.params and again.requester == "alice"
    with rt.store.transaction() as tx:
        [event] = [e for e in tx.events(intent.id) if e.kind == "requested_again"]
    assert event.data["new_intent"] == again.id


EXPIRING = {**SLACK_CONFIG, "policies": {WF: {**SLACK_CONFIG["policies"][WF], "expire_after_hours": 4}}}


@pytest.fixture
def bench(tmp_path: Path, sqlite_url: str, aws: str) -> Iterator[Bench]:
    create_source(aws)
    with served(tmp_path, sqlite_url, aws, config_overrides=EXPIRING) as b:
        yield b


def render_digest_blocks(bench: Bench, now: Any) -> list[dict[str, Any]]:
    from bot.blocks.digest import render_digest

    assert bench.services.slack is not None
    digest = bench.services.runtime.config.digests[0]
    return render_digest(build_digest(bench.services.slack, digest, now))[1]


def buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [e.get("text", {}).get("text", "") for b in blocks if b.get("type") == "actions" for e in b["elements"]]


def test_slack_says_it_expired_offers_request_again_and_the_digest_warns_before(bench: Bench) -> None:
    from tests.test_slack_e2e import plan

    intent_id = plan(bench)
    assert buttons(bench.parent(intent_id).blocks) == ["Approve", "Deny", "Cancel", "View full plan"]
    digest = bench.services.runtime.config.digests[0]
    assert bench.services.slack is not None
    now = bench.services.runtime.clock.now()
    [soon] = build_digest(bench.services.slack, digest, now + timedelta(hours=1)).expiring  # within a day's notice
    assert soon.intent_id == intent_id and re.match(r"expires in (3 h|2 h 59 min) unless someone approves", soon.reason)
    assert "About to expire (1)" in str(render_digest_blocks(bench, now))

    Reconciler(bench.services.runtime).expire_requests(now + timedelta(hours=4, seconds=1))
    bench.settle()
    parent = bench.parent(intent_id)
    assert "Expired" in str(parent.blocks) and "nobody approved or denied it within 4 h" in str(parent.blocks)
    assert buttons(parent.blocks) == ["Request again", "View full plan"]

    bench.driver.click(OPS, parent.ts, ActionId.REQUEST_AGAIN.value, user=APPROVER)
    bench.settle()
    assert len(bench.services.ops.list()) == 1  # refused: it is not the approver's request
    assert any("only its requester" in t for t in bench.ephemeral_texts(APPROVER))
    bench.driver.click(OPS, parent.ts, ActionId.REQUEST_AGAIN.value, user=REQUESTER)
    bench.settle()
    fresh = [i for i in bench.services.ops.list() if i.id != intent_id]
    assert len(fresh) == 1 and fresh[0].status is S.PENDING_APPROVAL
    assert buttons(bench.parent(fresh[0].id).blocks) == ["Approve", "Deny", "Cancel", "View full plan"]
