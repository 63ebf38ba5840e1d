"""Reading the whole plan before deciding, over HTTP with the fake Slack: View full plan, the App Home's Review and
approve (a modal whose submit approves), and a Deny that needs a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.blocks.plan import PlanFacts
from bot.ids import ActionId, BlockId, CallbackId, ModalMeta
from fakeslack import View
from tests.conftest import create_source, rds_client
from tests.slack_harness import APPROVER, APPROVER2, GUEST, OPS, OUTSIDER, REQUESTER, Bench, served, wait_until
from tests.test_slack_e2e import button_ids, click, plan
from workflows.model import EventKind, IntentStatus

PLAIN = "Create RDS instance"  # how words.py says the replica's creation


@pytest.fixture
def bench(tmp_path: Path, sqlite_url: str, aws: str) -> Any:
    create_source(aws)
    with served(tmp_path, sqlite_url, aws) as b:
        yield b


def modal_of(b: Bench, user: str, count: int = 1) -> View:
    """The `count`-th modal opened for `user`, once it is open."""
    wait_until(lambda: len(b.fake.views(kind="modal", user=user)) >= count)
    return b.fake.views(kind="modal", user=user)[count - 1]


def home_of(b: Bench, user: str) -> View:
    b.driver.app_home_opened(user)
    wait_until(lambda: b.fake.home_view(user) is not None)
    home = b.fake.home_view(user)
    assert home is not None
    return home


def review(b: Bench, user: str) -> View:
    """`user` opens the Home tab and clicks Review and approve on its one pending approval: the plan modal."""
    home_of(b, user)
    ack = b.driver.click_home(user, ActionId.REVIEW.value)
    assert ack.status == 200 and not ack.slow, ack
    return modal_of(b, user)


def dms(b: Bench, user: str) -> str:
    return " ".join(m.text for m in b.fake.messages(user))


def approvers(b: Bench, intent_id: str) -> list[str]:
    return [a.actor for a in b.services.ops.show(intent_id).approvals]


def test_view_full_plan_shows_a_member_the_locks_rollback_and_verification(bench: Bench) -> None:
    """A member who may not approve opens View full plan: a read-only modal with the whole reviewable plan."""
    intent_id = plan(bench)
    click(bench, intent_id, ActionId.VIEW_PLAN, OUTSIDER)
    view = modal_of(bench, OUTSIDER)
    assert view.callback_id == CallbackId.PLAN_MODAL.value and "submit" not in view.payload
    assert view.payload["close"]["text"] == "Close"
    shown = str(view.blocks)
    intent = bench.services.ops.get(intent_id)
    facts = PlanFacts.read(intent.plan)
    assert facts.locks and facts.rollback and facts.verification, "the plan has something to show"
    for item in (*facts.locks, *(step for step, _ in facts.rollback), *facts.verification, facts.rollback_limits):
        assert item in shown, item
    assert PLAIN in shown and "`billing-db-r1`" in shown
    assert intent.plan_hash[:12] in shown and intent_id in shown
    assert bench.status(intent_id) is IntentStatus.PENDING_APPROVAL
    bench.driver.assert_acks_fast()


def test_view_full_plan_is_refused_to_someone_who_may_not_see_the_intent(bench: Bench) -> None:
    """A channel member with no role clicks View full plan: an ephemeral refusal, and no modal opens."""
    intent_id = plan(bench)
    click(bench, intent_id, ActionId.VIEW_PLAN, GUEST)
    wait_until(lambda: any("may not view" in t for t in bench.ephemeral_texts(GUEST)))
    bench.settle()
    assert bench.fake.views(kind="modal", user=GUEST) == []


def test_the_home_tab_says_the_change_in_plain_words_and_offers_review_not_one_tap_approve(bench: Bench) -> None:
    """A pending approval on the Home tab names the change and the plan hash; approving starts with reading it."""
    intent_id = plan(bench)
    home = home_of(bench, APPROVER2)
    shown = str(home.blocks)
    assert f"{PLAIN} billing-db-r1" in shown
    assert bench.services.ops.get(intent_id).plan_hash[:12] in shown
    assert button_ids(home.blocks) == {ActionId.REVIEW.value, ActionId.DENY.value}


def test_review_opens_the_plan_and_its_submit_approves(bench: Bench) -> None:
    """Review and approve opens the whole plan with an Approve submit; submitting approves it and the change runs."""
    intent_id = plan(bench)
    view = review(bench, APPROVER2)
    assert view.callback_id == CallbackId.APPROVE_MODAL.value
    assert view.payload["submit"]["text"] == "Approve"
    assert PlanFacts.read(bench.services.ops.get(intent_id).plan).locks[0] in str(view.blocks)
    ack = bench.driver.submit_view(view.id, user=APPROVER2)
    assert ack.ok, ack
    wait_until(lambda: bench.status(intent_id) is IntentStatus.APPROVED)
    wait_until(lambda: "Approved" in dms(bench, APPROVER2))
    assert approvers(bench, intent_id) == [APPROVER2]
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.SUCCEEDED
    bench.driver.assert_acks_fast()


def test_the_requester_cannot_approve_his_own_through_the_review_modal(bench: Bench) -> None:
    """The approval is checked against whoever submits: the requester's own review form approves nothing."""
    intent_id = plan(bench)
    home = home_of(bench, APPROVER2)
    # His own Home tab never offers it; a click carrying the same value is what a forged one would be.
    bench.driver.click_view(home.id, ActionId.REVIEW.value, user=REQUESTER)
    view = modal_of(bench, REQUESTER)
    bench.driver.submit_view(view.id, user=REQUESTER)
    wait_until(lambda: "your own request" in dms(bench, REQUESTER))
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.PENDING_APPROVAL
    assert approvers(bench, intent_id) == []
    refused = [e.kind for e in bench.services.ops.show(intent_id).events if e.actor == REQUESTER]
    assert EventKind.APPROVAL_REFUSED in refused


def test_a_review_of_a_plan_that_changed_since_approves_nothing(bench: Bench, aws: str) -> None:
    """The form names the plan it showed: once the plan is recomputed, submitting it is refused and changes nothing."""
    intent_id = plan(bench)
    view = review(bench, APPROVER2)
    shown = ModalMeta.decode(view.payload["private_metadata"])
    assert isinstance(shown, ModalMeta)
    click(bench, intent_id, ActionId.APPROVE, APPROVER)
    rds_client(aws).modify_db_instance(
        DBInstanceIdentifier="billing-db", DBInstanceClass="db.r6g.large", ApplyImmediately=True
    )
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.NEEDS_REAPPROVAL
    assert bench.services.ops.get(intent_id).plan_hash != shown.plan_hash
    before = approvers(bench, intent_id)
    bench.driver.submit_view(view.id, user=APPROVER2)
    wait_until(lambda: "plan changed" in dms(bench, APPROVER2))
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.NEEDS_REAPPROVAL
    assert approvers(bench, intent_id) == before


def test_a_review_of_an_intent_that_moved_on_approves_nothing(bench: Bench) -> None:
    """Someone else approves while the form is open: submitting it is refused and adds no approval."""
    intent_id = plan(bench)
    view = review(bench, APPROVER2)
    click(bench, intent_id, ActionId.APPROVE, APPROVER)
    wait_until(lambda: bench.status(intent_id) is IntentStatus.APPROVED)
    bench.driver.submit_view(view.id, user=APPROVER2)
    wait_until(lambda: "Nothing was approved" in dms(bench, APPROVER2))
    assert approvers(bench, intent_id) == [APPROVER]


def test_deny_needs_a_reason_a_blank_one_stays_on_the_form(bench: Bench) -> None:
    """Deny's form is submitted "Deny"; a blank reason is put back on the field and nothing is denied."""
    intent_id = plan(bench)
    click(bench, intent_id, ActionId.DENY, APPROVER)
    view = modal_of(bench, APPROVER)
    assert view.callback_id == CallbackId.DENY_MODAL.value and view.payload["submit"]["text"] == "Deny"
    [reason] = [b for b in view.blocks if b.get("type") == "input"]
    assert not reason.get("optional"), "the reason is required"
    ack = bench.driver.submit_view(view.id, {"reason": {"reason_input": "   "}}, user=APPROVER)
    body = ack.json()
    assert body["response_action"] == "errors" and BlockId.REASON.value in body["errors"], body
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.PENDING_APPROVAL
    assert not bench.fake.view(view.id).closed  # type: ignore[union-attr]
    ack = bench.driver.submit_view(view.id, {"reason": {"reason_input": "one replica is enough"}}, user=APPROVER)
    assert ack.ok and ack.extra["response_action"] is None, ack
    wait_until(lambda: bench.status(intent_id) is IntentStatus.DENIED)
    assert "one replica is enough" in (bench.services.ops.get(intent_id).status_reason or "")


def test_deny_from_the_home_tab_asks_for_a_reason_too(bench: Bench) -> None:
    """Deny on the Home tab opens the same required-reason form; the denial is answered by DM."""
    intent_id = plan(bench)
    home_of(bench, APPROVER2)
    bench.driver.click_home(APPROVER2, ActionId.DENY.value)
    view = modal_of(bench, APPROVER2)
    assert view.callback_id == CallbackId.DENY_MODAL.value
    bench.driver.submit_view(view.id, {"reason": {"reason_input": "wrong source"}}, user=APPROVER2)
    wait_until(lambda: bench.status(intent_id) is IntentStatus.DENIED)
    wait_until(lambda: "Denied" in dms(bench, APPROVER2))


def test_the_request_form_submit_says_what_it_does(bench: Bench) -> None:
    """The generated request form's submit reads "Plan it": submitting plans, nothing runs yet."""
    bench.driver.slash_command("/ops", "rds.create-replica", user=REQUESTER, channel=OPS)
    view = modal_of(bench, REQUESTER)
    assert view.callback_id == CallbackId.REQUEST_MODAL.value
    assert view.payload["submit"]["text"] == "Plan it"


def test_a_deny_form_for_a_plan_since_recomputed_denies_nothing(bench: Bench, aws: str) -> None:
    """The deny form names the plan it was opened on: once the plan is recomputed, submitting it is refused (and
    audited), and the new plan still waits for a decision."""
    intent_id = plan(bench)
    click(bench, intent_id, ActionId.DENY, APPROVER2)
    view = modal_of(bench, APPROVER2)
    click(bench, intent_id, ActionId.APPROVE, APPROVER)
    rds_client(aws).modify_db_instance(
        DBInstanceIdentifier="billing-db", DBInstanceClass="db.r6g.large", ApplyImmediately=True
    )
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.NEEDS_REAPPROVAL
    bench.driver.submit_view(view.id, {"reason": {"reason_input": "wrong source"}}, user=APPROVER2)
    wait_until(lambda: any("plan changed" in t for t in bench.ephemeral_texts(APPROVER2)))
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.NEEDS_REAPPROVAL
    events = bench.services.ops.show(intent_id).events
    assert [e.data.get("reason") for e in events if e.kind == EventKind.DENY_REFUSED] == ["stale plan"]
