"""Authorization over HTTP with the fake Slack: every click and command is checked against who asks, now."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.ids import ActionId
from fakeslack import Message
from tests.conftest import create_source, rds_client
from tests.fakes import Script
from tests.slack_harness import APPROVER, GUEST, OPS, REQUESTER, Bench, scripted, served, wait_until
from tests.test_slack_e2e import bench, button_ids, click, plan
from workflows.errors import PermanentError
from workflows.model import EventKind, IntentStatus


@pytest.fixture
def failed(tmp_path: Path, sqlite_url: str, aws: str) -> Iterator[tuple[Bench, str, Message, Script]]:
    create_source(aws)
    script = Script(errors={"create_read_replica": [PermanentError("InsufficientDBInstanceCapacity")]})
    with served(tmp_path, sqlite_url, aws, adapters=scripted(script)) as b:
        intent_id = plan(b)
        click(b, intent_id, ActionId.APPROVE, APPROVER)
        b.settle()
        assert b.status(intent_id) is IntentStatus.FAILED
        yield b, intent_id, b.replies(intent_id)[-1], script


__all__ = ["bench"]  # the served stack fixture, shared with the end-to-end tests


def replicas_named(endpoint: str, name: str) -> list[dict[str, Any]]:
    found = rds_client(endpoint).describe_db_instances()["DBInstances"]
    return [i for i in found if i["DBInstanceIdentifier"] == name]


def _refusals(b: Bench, intent_id: str) -> list[str]:
    return [e.kind for e in b.services.ops.show(intent_id).events if e.kind == EventKind.ACTION_REFUSED]


def test_a_member_without_a_role_cannot_retry_a_failed_intent(failed: tuple[Bench, str, Message, Script]) -> None:
    """A guest clicks Retry on a failed change: refused privately, audited, and nothing runs again."""
    b, intent_id, verdict, script = failed
    assert ActionId.RETRY.value in button_ids(verdict.blocks)
    ack = b.driver.click(OPS, verdict.ts, ActionId.RETRY.value, user=GUEST)
    assert ack.status == 200
    wait_until(lambda: any("may not retry" in t for t in b.ephemeral_texts(GUEST)))
    b.settle()
    assert b.status(intent_id) is IntentStatus.FAILED
    assert script.calls["create_read_replica"] == 1
    assert _refusals(b, intent_id) == [EventKind.ACTION_REFUSED]


def test_the_requester_cannot_compensate_his_own_success(bench: Bench, aws: str) -> None:
    """The requester clicks Compensate on the replica he asked for: refused, and the replica stays."""
    intent_id = plan(bench)
    click(bench, intent_id, ActionId.APPROVE, APPROVER)
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.SUCCEEDED
    verdict = bench.replies(intent_id)[-1]
    pick = undo_option(verdict)
    bench.driver.click(OPS, verdict.ts, ActionId.COMPENSATE.value, user=REQUESTER, value=pick)
    wait_until(lambda: any("someone else must compensate" in t for t in bench.ephemeral_texts(REQUESTER)))
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.SUCCEEDED
    assert [r["DBInstanceStatus"] for r in replicas_named(aws, "billing-db-r1")] != []
    assert all(r["DBInstanceStatus"] != "deleting" for r in replicas_named(aws, "billing-db-r1"))


def undo_option(message: Message) -> str:
    """The value of "Propose undoing this change" in the overflow menu of a succeeded intent's message."""
    [menu] = [e for b in message.blocks if b.get("type") == "actions" for e in b["elements"] if e["type"] == "overflow"]
    assert menu["action_id"] == ActionId.COMPENSATE.value
    return str(menu["options"][0]["value"])


def test_an_approver_proposes_undoing_a_success_from_its_menu(bench: Bench) -> None:
    """Picking "Propose undoing this change" in the parent's overflow menu reaches the service as Compensate."""
    intent_id = plan(bench)
    click(bench, intent_id, ActionId.APPROVE, APPROVER)
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.SUCCEEDED
    parent = bench.parent(intent_id)
    ack = bench.driver.click(OPS, parent.ts, ActionId.COMPENSATE.value, user=APPROVER, value=undo_option(parent))
    assert ack.status == 200
    requested = EventKind.COMPENSATION_REQUESTED
    wait_until(lambda: any(e.kind == requested for e in bench.services.ops.show(intent_id).events))
    bench.settle()
    assert bench.status(intent_id) is not IntentStatus.SUCCEEDED


def test_status_answers_only_people_who_may_see_the_intent(bench: Bench) -> None:
    """`/ops status` from someone with no role in that environment is refused; the requester gets the answers."""
    intent_id = plan(bench)
    ack = bench.driver.slash_command("/ops", f"status {intent_id}", user=GUEST, channel=OPS)
    assert ack.status == 200
    wait_until(lambda: any("may not view" in t for t in bench.ephemeral_texts(GUEST)))
    assert not any("Requested:" in t for t in bench.ephemeral_texts(GUEST))
    bench.driver.slash_command("/ops", f"status {intent_id}", user=REQUESTER, channel=OPS)
    wait_until(lambda: any("*Requested:*" in t for t in bench.ephemeral_texts(REQUESTER)))


def test_status_escapes_stored_text(bench: Bench) -> None:
    """A deny reason with a broadcast and a link is shown as text in `/ops status`, never rendered live."""
    intent_id = plan(bench)
    bench.services.ops.deny(intent_id, APPROVER, "<!channel> see <https://evil.example|the fix>")
    bench.driver.slash_command("/ops", f"status {intent_id}", user=REQUESTER, channel=OPS)
    wait_until(lambda: any("Denied" in t for t in bench.ephemeral_texts(REQUESTER)))
    shown = next(t for t in bench.ephemeral_texts(REQUESTER) if "Denied" in t)
    assert "<!channel>" not in shown and "<https://evil.example" not in shown
    assert "&lt;!channel&gt;" in shown


@pytest.mark.parametrize("forged", ["", "abc", "0" * 64])
def test_a_forged_approve_click_without_the_full_plan_hash_approves_nothing(bench: Bench, forged: str) -> None:
    """A click whose value carries an empty, short or wrong hash is refused; the intent stays pending."""
    intent_id = plan(bench)
    intent = bench.services.ops.get(intent_id)
    value = f'{{"i":"{intent_id}","h":"{forged}","v":{intent.version}}}'
    click(bench, intent_id, ActionId.APPROVE, APPROVER, value=value)
    wait_until(lambda: len(bench.ephemeral_texts(APPROVER)) > 0)
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.PENDING_APPROVAL
    assert bench.services.ops.show(intent_id).approvals == ()


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"payload=%7Bnot-json", "application/x-www-form-urlencoded", 400),
        (b"payload=%5B1%2C2%5D", "application/x-www-form-urlencoded", 400),
        (
            b"payload=" + b"%7B%22type%22%3A%22view_submission%22%2C%22view%22%3A%7B%7D%7D",
            "application/x-www-form-urlencoded",
            400,
        ),
        (b"\xff\xfe\xfd", "application/x-www-form-urlencoded", 400),
        (b"{not json", "application/json", 400),
    ],
)
def test_a_body_that_cannot_be_parsed_gets_a_400_and_no_traceback(
    bench: Bench, body: bytes, content_type: str, status: int
) -> None:
    """Signed but unreadable (bad JSON, not UTF-8, a view without a type): 400 before Bolt, no error logged."""
    import time as clock

    import requests
    from structlog.testing import capture_logs

    from fakeslack import sign
    from tests.slack_harness import SECRET

    stamp = str(int(clock.time()))
    signature = sign(SECRET, stamp, body.decode("latin-1"))
    if body.startswith(b"\xff"):  # a signature over the raw bytes, as Slack would compute it
        import hashlib
        import hmac

        signature = "v0=" + hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature, "Content-Type": content_type}
    with capture_logs() as logs:
        answer = requests.post(f"{bench.url}/slack/events", data=body, headers=headers, timeout=10)
    assert answer.status_code == status
    assert not [e for e in logs if e.get("log_level") in ("error", "critical")]
    unsigned = requests.post(f"{bench.url}/slack/events", data=body, headers={"Content-Type": content_type}, timeout=10)
    assert unsigned.status_code == (400 if body.startswith(b"\xff") else 401)
