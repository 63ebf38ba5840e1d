"""End to end over real HTTP: the fake Slack drives `opsbot serve`'s stack; moto stands in for AWS."""

from __future__ import annotations

import copy
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.ids import ActionId, CallbackId
from fakeslack import sign
from tests.conftest import create_source, rds_client
from tests.fakes import Script
from tests.slack_harness import (
    APPROVER,
    APPROVER2,
    DIGEST,
    INCIDENT,
    OPS,
    OUTSIDER,
    REQUESTER,
    Bench,
    scripted,
    served,
    wait_until,
)
from workflows.errors import PermanentError
from workflows.model import EventKind, IntentStatus

REQUEST = "rds.create-replica source=billing-db replica=billing-db-r1 env=prod"


@pytest.fixture
def bench(tmp_path: Path, sqlite_url: str, aws: str) -> Any:
    create_source(aws)
    with served(tmp_path, sqlite_url, aws) as b:
        yield b


def plan(b: Bench, text: str = REQUEST, user: str = REQUESTER) -> str:
    ack = b.driver.slash_command("/ops", text, user=user, channel=OPS)
    assert ack.status == 200 and not ack.slow, ack
    assert b.services.slack is not None
    slack = b.services.slack.store
    wait_until(lambda: len(b.services.ops.list()) == 1 and slack.thread(b.only_intent()) is not None)
    intent_id = b.only_intent()
    b.settle()
    return intent_id


def click(b: Bench, intent_id: str, action: ActionId, user: str, **kw: Any) -> Any:
    parent = b.parent(intent_id)
    ack = b.driver.click(OPS, parent.ts, action.value, user=user, **kw)
    assert ack.status == 200 and not ack.slow, ack
    return ack


def button_ids(blocks: list[dict[str, Any]]) -> set[str]:
    return {e.get("action_id", "") for blk in blocks if blk.get("type") == "actions" for e in blk.get("elements", [])}


def test_happy_path_plans_approves_executes_and_threads_the_story(bench: Bench, aws: str) -> None:
    """Request, approval by a peer, execution to success; the parent is updated in place and the thread tells it."""
    intent_id = plan(bench)
    parent = bench.parent(intent_id)
    assert {ActionId.APPROVE.value, ActionId.DENY.value} <= button_ids(parent.blocks)
    assert "billing-db-r1" in str(parent.blocks) and intent_id in str(parent.blocks)
    assert "Create RDS instance billing-db-r1" in parent.text, "the notification names the change and its target"
    [notice] = bench.fake.messages(INCIDENT)
    permalink = bench.fake.calls_to("chat.getPermalink")[-1].body["permalink"]
    assert "billing-db-r1" in notice.text and permalink in str(notice.blocks), "the notice links the plan message"

    click(bench, intent_id, ActionId.APPROVE, APPROVER)
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.SUCCEEDED
    parent = bench.parent(intent_id)
    assert parent.edits, "the parent message is updated in place"
    assert ActionId.APPROVE.value not in button_ids(parent.blocks)
    [verdict] = bench.replies(intent_id)  # progress was edited into the plan message: one post, the verdict
    assert (
        verdict.reply_broadcast and f"<@{REQUESTER}>" in str(verdict.blocks) and f"<@{APPROVER}>" in str(verdict.blocks)
    )
    assert "created RDS instance billing-db-r1" in verdict.text
    [notice] = bench.fake.messages(INCIDENT)
    assert "Succeeded" in str(notice.blocks) and notice.edits, "the incident notice is updated with the outcome"
    top_level = [m for m in bench.fake.messages(OPS) if m.thread_ts in (None, m.ts)]
    assert len(top_level) == 1, "exactly one parent message per intent"
    assert (
        len(
            [
                i
                for i in rds_client(aws).describe_db_instances()["DBInstances"]
                if i["DBInstanceIdentifier"] == "billing-db-r1"
            ]
        )
        == 1
    )
    bench.driver.assert_acks_fast()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rds.create-replica source=billing-db replica env=prod", "expected key=value"),
        ("rds.create-replika source=a replica=b env=prod", "unknown workflow"),
        ("rds.create-replica source=billing_db! replica=r1 env=prod", "source:"),
        ("rds.create-replica source=billing-db env=prod", "replica: required"),
        ("rds.create-replica source=billing-db replica=r1 env=staging", "unknown environment"),
        ("rds.create-replica source=billing-db replica=r1 colour=blue env=prod", "colour: unknown parameter"),
        ("status", "usage"),
    ],
)
def test_validation_errors_answer_ephemerally_and_change_nothing(bench: Bench, text: str, expected: str) -> None:
    """Each malformed command is answered in the ack, naming the bad field, and stores nothing."""
    ack = bench.driver.slash_command("/ops", text, user=REQUESTER, channel=OPS)
    assert ack.status == 200 and not ack.slow
    body = ack.json()
    assert body.get("response_type") == "ephemeral" and expected in body["text"], body
    time.sleep(0.2)
    assert bench.services.ops.list() == []
    assert bench.fake.messages(OPS) == []


def test_source_missing_is_reported_after_the_ack(bench: Bench) -> None:
    """A preflight failure (slow path) comes back ephemerally through the response_url."""
    ack = bench.driver.slash_command(
        "/ops", "rds.create-replica source=nope-db replica=r1 env=prod", user=REQUESTER, channel=OPS
    )
    assert ack.status == 200
    wait_until(lambda: any("not found" in t for t in bench.ephemeral_texts(REQUESTER)))
    assert bench.services.ops.list() == []


def test_self_approval_is_refused(bench: Bench) -> None:
    """The requester's own Approve click gets an ephemeral refusal and changes nothing."""
    intent_id = plan(bench, user=APPROVER)
    click(bench, intent_id, ActionId.APPROVE, APPROVER)
    wait_until(lambda: any("your own request" in t for t in bench.ephemeral_texts(APPROVER)))
    assert bench.status(intent_id) is IntentStatus.PENDING_APPROVAL


def test_non_approver_is_refused(bench: Bench) -> None:
    """Someone without an approver role is refused with the role they would need."""
    intent_id = plan(bench)
    click(bench, intent_id, ActionId.APPROVE, OUTSIDER)
    wait_until(lambda: any("dba-lead" in t for t in bench.ephemeral_texts(OUTSIDER)))
    assert bench.status(intent_id) is IntentStatus.PENDING_APPROVAL


def public_posts(b: Bench) -> int:
    return len([c for c in b.fake.calls_to("chat.postMessage") if c.ok])


def refusals_audited(b: Bench, intent_id: str, actor: str) -> list[str]:
    return [e.kind for e in b.services.ops.show(intent_id).events if e.kind.endswith("_refused") and e.actor == actor]


def test_a_refused_self_approval_stays_private(bench: Bench) -> None:
    """A refused self-approval is answered to the requester alone and audited; nothing is posted in the thread."""
    intent_id = plan(bench, user=APPROVER)
    posts = public_posts(bench)
    click(bench, intent_id, ActionId.APPROVE, APPROVER)
    wait_until(lambda: any("your own request" in t for t in bench.ephemeral_texts(APPROVER)))
    bench.settle()
    assert public_posts(bench) == posts
    click(bench, intent_id, ActionId.APPROVE, APPROVER2)  # the thread is projected again once the intent moves
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.SUCCEEDED
    assert not any("refused" in m.text + str(m.blocks) for m in bench.replies(intent_id))
    assert refusals_audited(bench, intent_id, APPROVER) == [EventKind.APPROVAL_REFUSED]


def test_a_curious_click_is_refused_without_naming_anyone_in_the_channel(bench: Bench) -> None:
    """Someone without the role who clicks Approve is told privately; no message in the channel names them."""
    intent_id = plan(bench)
    posts = public_posts(bench)
    click(bench, intent_id, ActionId.APPROVE, OUTSIDER)
    wait_until(lambda: any("dba-lead" in t for t in bench.ephemeral_texts(OUTSIDER)))
    bench.settle()
    assert public_posts(bench) == posts
    click(bench, intent_id, ActionId.APPROVE, APPROVER)  # the thread is projected again once the intent moves
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.SUCCEEDED
    everything = " ".join(m.text + str(m.blocks) for m in bench.fake.messages(OPS))
    assert OUTSIDER not in everything
    assert refusals_audited(bench, intent_id, OUTSIDER) == [EventKind.APPROVAL_REFUSED]


def test_stale_plan_click_is_refused(bench: Bench, aws: str) -> None:
    """An Approve carrying a plan hash that is no longer the intent's is refused politely."""
    intent_id = plan(bench)
    old_value = next(
        e["value"]
        for blk in bench.parent(intent_id).blocks
        if blk.get("type") == "actions"
        for e in blk["elements"]
        if e.get("action_id") == ActionId.APPROVE.value
    )
    click(bench, intent_id, ActionId.APPROVE, APPROVER)
    rds_client(aws).modify_db_instance(
        DBInstanceIdentifier="billing-db", DBInstanceClass="db.r6g.large", ApplyImmediately=True
    )
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.NEEDS_REAPPROVAL
    assert ActionId.APPROVE.value in button_ids(bench.parent(intent_id).blocks), "a fresh Approve is offered"
    click(bench, intent_id, ActionId.APPROVE, APPROVER2, value=old_value)
    wait_until(lambda: any("plan changed" in t for t in bench.ephemeral_texts(APPROVER2)))
    assert bench.status(intent_id) is IntentStatus.NEEDS_REAPPROVAL


def test_expired_approval_asks_again(tmp_path: Path, sqlite_url: str, aws: str) -> None:
    """An approval that expires before execution is not used: the intent asks for a new one, in the thread too."""
    create_source(aws)
    with served(tmp_path, sqlite_url, aws, settings_overrides={"approval_ttl_seconds": 0.3}) as b:
        intent_id = plan(b)
        click(b, intent_id, ActionId.APPROVE, APPROVER)
        time.sleep(0.5)
        b.settle()
        assert b.status(intent_id) is IntentStatus.NEEDS_REAPPROVAL
        assert any("expired" in m.text.lower() for m in b.replies(intent_id))
        assert ActionId.APPROVE.value in button_ids(b.parent(intent_id).blocks)


@pytest.fixture
def bench_both(tmp_path: Path, db_url: str, aws: str) -> Any:
    """The served stack on SQLite and on PostgreSQL (where concurrent clicks really overlap)."""
    create_source(aws)
    with served(tmp_path, db_url, aws) as b:
        yield b


def test_concurrent_approvals_execute_once(bench_both: Bench, aws: str) -> None:
    """Two approvers clicking at the same moment lead to one approval transition and one execution."""
    bench = bench_both
    intent_id = plan(bench)
    parent = bench.parent(intent_id)
    barrier = threading.Barrier(2)

    def approve(user: str) -> None:
        barrier.wait()
        bench.driver.click(OPS, parent.ts, ActionId.APPROVE.value, user=user)

    threads = [threading.Thread(target=approve, args=(u,)) for u in (APPROVER, APPROVER2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    bench.settle()
    view = bench.services.ops.show(intent_id)
    assert view.intent.status is IntentStatus.SUCCEEDED
    assert [e.kind for e in view.events].count("claimed") == 1
    assert (
        len(
            [
                i
                for i in rds_client(aws).describe_db_instances()["DBInstances"]
                if i["DBInstanceIdentifier"] == "billing-db-r1"
            ]
        )
        == 1
    )


def test_deny_with_reason_updates_the_plan_message(bench: Bench) -> None:
    """Deny opens a modal; the reason is recorded and the plan message shows who denied and why."""
    intent_id = plan(bench)
    click(bench, intent_id, ActionId.DENY, APPROVER)
    wait_until(lambda: bench.fake.views(kind="modal"))
    view = bench.fake.views(kind="modal")[-1]
    assert view.payload["callback_id"] == CallbackId.DENY_MODAL.value
    ack = bench.driver.submit_view(view.id, {"reason": {"reason_input": "change freeze until Monday"}}, user=APPROVER)
    assert ack.status == 200
    wait_until(lambda: bench.status(intent_id) is IntentStatus.DENIED)
    bench.settle()
    parent = bench.parent(intent_id)
    assert "change freeze" in str(parent.blocks) and ActionId.APPROVE.value not in button_ids(parent.blocks)


@pytest.fixture
def failed(tmp_path: Path, sqlite_url: str, aws: str) -> Any:
    """A served stack with an approved intent whose create failed permanently: (bench, intent id, verdict message)."""
    create_source(aws)
    script = Script(errors={"create_read_replica": [PermanentError("InsufficientDBInstanceCapacity")]})
    with served(tmp_path, sqlite_url, aws, adapters=scripted(script)) as b:
        intent_id = plan(b)
        click(b, intent_id, ActionId.APPROVE, APPROVER)
        b.settle()
        assert b.status(intent_id) is IntentStatus.FAILED
        yield b, intent_id, b.replies(intent_id)[-1]


def test_failed_step_then_retry_succeeds(failed: tuple[Bench, str, Any]) -> None:
    """A permanent failure shows the four answers with Retry; Retry runs the step again and Slack follows it."""
    b, intent_id, verdict = failed
    assert ActionId.RETRY.value in button_ids(verdict.blocks)
    assert "InsufficientDBInstanceCapacity" in str(verdict.blocks)
    ack = b.driver.click(OPS, verdict.ts, ActionId.RETRY.value, user=REQUESTER)
    assert ack.status == 200
    wait_until(lambda: b.status(intent_id) is not IntentStatus.FAILED)
    b.settle()
    assert b.status(intent_id) is IntentStatus.SUCCEEDED
    assert "succeeded" in str(b.parent(intent_id).blocks).lower(), "the plan message follows the retry"
    assert "Succeeded" in b.replies(intent_id)[-1].text


def test_outdated_recovery_button_is_refused(failed: tuple[Bench, str, Any]) -> None:
    """A recovery button from an older version of the message is refused and does nothing."""
    b, intent_id, verdict = failed
    shown = copy.deepcopy(verdict.blocks)
    b.driver.click(OPS, verdict.ts, ActionId.RETRY.value, user=REQUESTER)
    b.settle()
    assert not button_ids(b.fake.message(OPS, verdict.ts).blocks), "the superseded post lost its buttons"  # type: ignore[union-attr]
    b.driver.click(OPS, verdict.ts, ActionId.RETRY.value, user=REQUESTER, seen=shown)  # a client not yet updated
    wait_until(lambda: any("out of date" in t for t in b.ephemeral_texts(REQUESTER)))
    assert [e.kind for e in b.services.ops.show(intent_id).events].count("retry") == 1


def test_slack_429_and_5xx_lose_nothing_and_never_duplicate_the_parent(bench: Bench) -> None:
    """Rate limits and server errors while posting delay messages; every one arrives once, one parent."""
    bench.fake.inject(method="chat.postMessage", status=429, retry_after=1, times=2)
    bench.fake.inject(method="chat.postMessage", status=503, times=2)
    bench.fake.inject(method="chat.update", status=500, times=1)
    intent_id = plan(bench)
    click(bench, intent_id, ActionId.APPROVE, APPROVER)
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.SUCCEEDED
    assert bench.services.slack is not None
    assert bench.services.slack.store.pending_count() == 0
    assert bench.services.slack.outbox.stats.retried >= 3
    sent = [i for i in bench.services.slack.store.sent() if i.intent_id == intent_id and i.kind == "thread_reply"]
    delivered = "\n".join(m.text for m in bench.replies(intent_id))
    assert sent and all(str(i.payload["text"]) in delivered for i in sent), "every queued reply reached the thread"
    assert len(delivered.splitlines()) == len(sent), "and none twice"
    top_level = [m for m in bench.fake.messages(OPS) if m.thread_ts in (None, m.ts)]
    assert len(top_level) == 1
    assert bench.parent(intent_id).blocks and "succeeded" in str(bench.parent(intent_id).blocks).lower()


def test_forged_and_replayed_requests_get_401(bench: Bench) -> None:
    """A bad signature and a timestamp older than five minutes are both rejected before any listener runs."""
    forged = bench.driver.slash_command("/ops", "help", user=REQUESTER, channel=OPS, signature="v0=" + "0" * 64)
    old = int(time.time()) - 6 * 60
    replayed = bench.driver.slash_command("/ops", "help", user=REQUESTER, channel=OPS, timestamp=old)
    assert forged.status == 401 and replayed.status == 401


def test_secret_canary_never_reaches_slack(bench: Bench) -> None:
    """A canary in parameters and reasons is never in any message, ephemeral, view or response Slack received."""
    canary = "CANARY-5b9e01"
    bench.driver.slash_command(
        "/ops", f"rds.create-replica source=postgres://u:{canary}@h replica=r1 env=prod", user=REQUESTER, channel=OPS
    )
    bench.driver.slash_command("/ops", f"rds.create-replica password={canary} env=prod", user=REQUESTER, channel=OPS)
    intent_id = plan(bench)
    click(bench, intent_id, ActionId.DENY, APPROVER)
    wait_until(lambda: bench.fake.views(kind="modal"))
    view = bench.fake.views(kind="modal")[-1]
    bench.driver.submit_view(
        view.id, {"reason": {"reason_input": f"DSN is postgresql://admin:{canary}@db/x"}}, user=APPROVER
    )
    wait_until(lambda: bench.status(intent_id) is IntentStatus.DENIED)
    bench.settle()
    received = repr([c.args for c in bench.fake.calls]) + repr([p.body for p in bench.fake.response_posts()])
    received += repr([a.body for a in bench.driver.acks])
    assert canary not in received


def test_status_command_and_modal_request(bench: Bench) -> None:
    """`/ops status` answers with the four answers; `/ops <workflow>` opens a generated form that plans on submit."""
    intent_id = plan(bench)
    bench.driver.slash_command("/ops", f"status {intent_id}", user=REQUESTER, channel=OPS)
    wait_until(lambda: any("Uncertain" in t for t in bench.ephemeral_texts(REQUESTER)))
    bench.driver.slash_command("/ops", "rds.create-replica", user=REQUESTER, channel=OPS)
    wait_until(lambda: bench.fake.views(kind="modal"))
    view = bench.fake.views(kind="modal")[-1]
    assert view.payload["callback_id"] == CallbackId.REQUEST_MODAL.value
    bench.driver.submit_view(
        view.id,
        {"source": {"value": "billing-db"}, "replica": {"value": "billing-db-r2"}, "env": {"value": "prod"}},
        user=REQUESTER,
    )
    wait_until(lambda: len(bench.services.ops.list()) == 2)


def test_home_tab_shows_pending_approvals(bench: Bench) -> None:
    """Opening the Home tab publishes the viewer's pending approvals."""
    intent_id = plan(bench)
    bench.driver.app_home_opened(APPROVER)
    wait_until(lambda: bench.fake.home_view(APPROVER) is not None)
    home = bench.fake.home_view(APPROVER)
    assert home is not None and intent_id in str(home.payload)


def test_healthz_reports_the_store(bench: Bench) -> None:
    """GET /healthz is 200 while the intent store answers."""
    response = requests.get(f"{bench.url}/healthz", timeout=5)
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_digest_is_posted_once_per_period_across_processes(bench: Bench, tmp_path: Path) -> None:
    """Two processes (two engines on one store) firing the same cron minute post one digest between them."""
    from bot.digest import post_digest
    from opsbot.wiring import build_services

    plan(bench)
    other = build_services(bench.services_settings)
    digest = bench.services.runtime.config.digests[0]
    at = bench.services.runtime.clock.now().replace(microsecond=0)
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def fire(svc: Any) -> None:
        barrier.wait()
        results.append(post_digest(svc.slack, digest, at))

    threads = [threading.Thread(target=fire, args=(svc,)) for svc in (bench.services, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    bench.settle()
    assert sorted(results) == [False, True]
    [message] = bench.fake.messages(digest.channel)
    assert "approval" in (message.text + str(message.blocks)).lower()
    other.store.engine.dispose()


def test_a_request_whose_plan_message_was_never_queued_is_posted_on_rerun(bench: Bench) -> None:
    """If the process died between storing the intent and queueing its plan, running the command again posts it."""
    intent = bench.services.ops.request(
        "rds.create-replica", {"source": "billing-db", "replica": "billing-db-r1"}, "prod", REQUESTER
    ).intent
    assert bench.services.slack is not None and bench.services.slack.store.thread(intent.id) is None
    bench.driver.slash_command("/ops", REQUEST, user=REQUESTER, channel=OPS)
    wait_until(lambda: bench.services.slack is not None and bench.services.slack.store.thread(intent.id) is not None)
    bench.settle()
    assert bench.parent(intent.id).ts


def test_signature_helper_matches_slack_scheme() -> None:
    """The driver's signing is Slack's v0 scheme (guards the fixtures themselves)."""
    assert sign("s", 1, "b").startswith("v0=") and len(sign("s", 1, "b")) == 67


def test_modal_field_errors_stay_on_the_form(bench: Bench) -> None:
    """A bad value in the generated form is reported on that field and nothing is planned."""
    bench.driver.slash_command("/ops", "rds.create-replica", user=REQUESTER, channel=OPS)
    wait_until(lambda: bench.fake.views(kind="modal"))
    view = bench.fake.views(kind="modal")[-1]
    ack = bench.driver.submit_view(
        view.id,
        {"source": {"value": "billing-db"}, "replica": {"value": "bad--name"}, "env": {"value": "prod"}},
        user=REQUESTER,
    )
    body = ack.json()
    assert body["response_action"] == "errors" and "replica" in body["errors"], body
    assert bench.services.slack is not None and bench.services.slack.lazy.wait_idle()  # the lazy half ran too
    assert bench.services.ops.list() == []
    assert not bench.ephemeral_texts(REQUESTER), "the error is said once, on the form, not again in the channel"


def test_unexpected_error_shows_a_correlation_id_not_a_trace(tmp_path: Path, sqlite_url: str, aws: str) -> None:
    """A bug in preflight answers with a correlation id that is also in the log; no stack trace reaches Slack."""
    from structlog.testing import capture_logs

    class Broken:
        def rds(self, region: str) -> Any:
            raise RuntimeError("adapter exploded: postgresql://u:CANARY-77@h/db")

    with served(tmp_path, sqlite_url, aws, adapters=lambda _s: Broken()) as b, capture_logs() as logs:
        b.driver.slash_command("/ops", REQUEST, user=REQUESTER, channel=OPS)
        wait_until(lambda: any("correlation id" in t for t in b.ephemeral_texts(REQUESTER)))
        text = next(t for t in b.ephemeral_texts(REQUESTER) if "correlation id" in t)
        correlation = text.split("`")[1]
        assert any(e.get("correlation_id") == correlation for e in logs)
        assert "Traceback" not in text and "CANARY-77" not in text
        assert b.services.ops.list() == []


def test_mark_done_from_slack_needs_a_reason_and_an_approver(failed: tuple[Bench, str, Any]) -> None:
    """Mark done: someone without the role is refused before any form opens; an approver gives a reason."""
    b, intent_id, verdict = failed
    b.driver.click(OPS, verdict.ts, ActionId.MARK_DONE.value, user=OUTSIDER)
    wait_until(lambda: any("may not mark-done" in t for t in b.ephemeral_texts(OUTSIDER)))
    assert b.fake.views(kind="modal", user=OUTSIDER) == []
    b.driver.click(OPS, verdict.ts, ActionId.MARK_DONE.value, user=APPROVER)
    wait_until(lambda: b.fake.views(kind="modal", user=APPROVER))
    view = b.fake.views(kind="modal", user=APPROVER)[-1]
    assert view.payload["callback_id"] == CallbackId.REASON_MODAL.value
    b.driver.submit_view(view.id, {"reason": {"reason_input": "created by hand in the console"}}, user=APPROVER)
    wait_until(lambda: b.status(intent_id) is IntentStatus.MARKED_DONE)


def test_approve_from_the_home_tab_answers_by_dm(bench: Bench) -> None:
    """Approving from the Home tab (Review and approve, then the plan's Approve) has no channel or response_url:
    the approver still hears back, by DM."""
    intent_id = plan(bench)
    bench.driver.app_home_opened(APPROVER2)
    wait_until(lambda: bench.fake.home_view(APPROVER2) is not None)
    ack = bench.driver.click_home(APPROVER2, ActionId.REVIEW.value)
    assert ack.status == 200
    wait_until(lambda: bench.fake.views(kind="modal", user=APPROVER2))
    [review] = bench.fake.views(kind="modal", user=APPROVER2)
    assert bench.driver.submit_view(review.id, user=APPROVER2).ok
    wait_until(lambda: bench.status(intent_id) is IntentStatus.APPROVED)
    wait_until(lambda: any("Approved" in m.text for m in bench.fake.messages(APPROVER2)))


def test_a_lost_answer_to_the_plan_post_never_duplicates_it(tmp_path: Path, sqlite_url: str, aws: str) -> None:
    """Slack posts the plan but its answer times out: the retry finds the message by its metadata, posts none."""
    create_source(aws)
    with served(tmp_path, sqlite_url, aws, settings_overrides={"slack_timeout_seconds": 1}) as b:
        b.fake.inject(method="chat.postMessage", delay=2.0, applied=True, channel=OPS)
        intent_id = plan(b)
        top_level = [m for m in b.fake.messages(OPS) if m.thread_ts in (None, m.ts)]
        assert len(top_level) == 1
        assert b.fake.calls_to("conversations.history"), "the retry looked before posting"
        click(b, intent_id, ActionId.APPROVE, APPROVER)
        b.settle()
        assert b.status(intent_id) is IntentStatus.SUCCEEDED
        assert len([m for m in b.fake.messages(OPS) if m.thread_ts in (None, m.ts)]) == 1


def test_digest_lists_what_needs_attention_with_links(bench: Bench, aws: str) -> None:
    """Blocked work and approvals waiting past the threshold are listed, with a link to their thread; fresh ones not."""
    from datetime import timedelta

    from bot.digest import build_digest

    intent_id = plan(bench)
    digest = bench.services.runtime.config.digests[0]
    now = bench.services.runtime.clock.now()
    assert bench.services.slack is not None
    fresh = build_digest(bench.services.slack, digest, now)
    assert fresh.attention == () and fresh.counts[IntentStatus.PENDING_APPROVAL] == 1
    later = build_digest(bench.services.slack, digest, now + timedelta(minutes=digest.stale_approval_minutes + 1))
    [item] = later.attention
    assert item.intent_id == intent_id and item.permalink and item.permalink.startswith("http")


def test_a_waiting_intent_names_its_holder_in_slack_the_digest_and_the_cli(failed: tuple[Bench, str, Any]) -> None:
    """A failed intent keeps its resource; a second one on it waits, and every surface says who holds it."""
    from io import StringIO

    from rich.console import Console

    from bot.digest import build_digest
    from opsbot.cli_render import render_view

    b, holder, _verdict = failed
    text = "rds.create-replica source=billing-db replica=billing-db-r1 instance_class=db.t3.large env=prod"
    b.driver.slash_command("/ops", text, user=REQUESTER, channel=OPS)
    wait_until(lambda: len(b.services.ops.list()) == 2)
    waiter = next(i.id for i in b.services.ops.list() if i.id != holder)
    wait_until(lambda: b.services.slack is not None and b.services.slack.store.thread(waiter) is not None)
    b.settle()
    click(b, waiter, ActionId.APPROVE, APPROVER)
    b.settle()
    assert b.status(waiter) is IntentStatus.WAITING
    said = f"waiting for rds:billing-db-r1, held by intent {holder} (rds.create-replica, requested by @{REQUESTER}"
    in_slack = said.replace(f"@{REQUESTER}", f"<@{REQUESTER}>")  # a mention there, not a raw id
    assert in_slack in str(b.parent(waiter).blocks)
    [post] = b.replies(waiter)
    assert in_slack in str(post.blocks) and "starts by itself" in str(post.blocks), "waiting posts once, and says why"
    assert b.services.slack is not None
    digest = build_digest(b.services.slack, b.services.runtime.config.digests[0], b.services.runtime.clock.now())
    assert any(i.intent_id == waiter and said in i.reason for i in digest.attention)
    out = StringIO()
    Console(file=out, width=400).print(render_view(b.services.ops.show(waiter)))
    assert said in out.getvalue()


def test_every_workflow_is_listed_and_opens_a_generated_form(bench: Bench) -> None:
    """`/ops list` names the whole catalog; `/ops <workflow>` opens a valid form for each, with a field per input."""
    from workflows.catalog import build_registry

    names = [spec.name for spec in build_registry()]
    assert len(names) == 8
    listing = bench.driver.slash_command("/ops", "list", user=REQUESTER, channel=OPS)  # answered in the ack
    assert listing.status == 200 and all(f"*{name}*" in listing.body for name in names), listing.body
    for n, spec in enumerate(build_registry(), 1):
        bench.driver.slash_command("/ops", spec.name, user=REQUESTER, channel=OPS)
        wait_until(lambda n=n: len(bench.fake.views(kind="modal")) >= n)
        form = bench.fake.views(kind="modal")[-1].payload
        assert form["callback_id"] == CallbackId.REQUEST_MODAL.value
        fields = {b["block_id"] for b in form["blocks"] if b.get("type") == "input"}
        assert set(spec.params.model_fields) | {"env"} <= fields, (spec.name, fields)


def test_each_digest_carries_the_audit_head_that_verify_checks_against(bench: Bench) -> None:
    """The digest publishes the chain's head outside the database; verify passes with it and fails once a newest
    event is deleted (which the chain alone cannot show)."""
    import sqlalchemy as sa

    from bot.digest import post_digest
    from store import tables as t

    plan(bench)
    assert bench.services.slack is not None
    digest = bench.services.runtime.config.digests[0]
    assert post_digest(bench.services.slack, digest)
    bench.settle()
    posted = next(m for m in bench.fake.messages(DIGEST) if "Audit chain head" in str(m.blocks))
    head = re.search(r"--anchor (\d+:[0-9a-f]{64})", str(posted.blocks)).group(1)  # type: ignore[union-attr]
    store = bench.services.store
    assert store.verify_audit(head).ok
    with store.engine.begin() as conn:
        newest = conn.execute(sa.select(sa.func.max(t.audit.c.seq))).scalar()
        conn.execute(sa.delete(t.audit).where(t.audit.c.seq == newest))
    assert store.verify_audit().ok  # the chain alone does not notice a deleted tail
    assert not store.verify_audit(head).ok


def test_the_first_request_after_a_start_does_not_depend_on_auth_test(bench: Bench) -> None:
    """Slack's Web API failing just after a start (auth.test answering 500) does not fail the first command: the
    bot token is known, so nothing asks Slack who we are inside an ack."""
    bench.fake.inject("auth.test", status=500, times=None)
    intent_id = plan(bench)
    assert bench.status(intent_id) is IntentStatus.PENDING_APPROVAL
    click(bench, intent_id, ActionId.APPROVE, APPROVER)
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.SUCCEEDED
    assert not bench.fake.calls_to("auth.test")


def test_slack_calls_made_by_listeners_are_counted_too(bench: Bench) -> None:
    """views.open from a listener goes through the app's instrumented client: counted like the outbox's posts."""
    from prometheus_client import REGISTRY

    def opened() -> float:
        labels = {"method": "views.open", "result": "ok"}
        return REGISTRY.get_sample_value("opsbot_slack_api_calls_total", labels) or 0.0

    before = opened()
    bench.driver.slash_command("/ops", "rds.create-replica", user=REQUESTER, channel=OPS)
    wait_until(lambda: opened() == before + 1)
    assert len(bench.fake.views(kind="modal")) == 1
