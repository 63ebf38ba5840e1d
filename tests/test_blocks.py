"""Block Kit renderers: golden payloads, Slack's limits under huge inputs, and no secret in any output."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, create_model

from bot.blocks import (
    AttentionItem,
    Digest,
    plan_fallback_text,
    render_digest,
    render_event,
    render_home,
    render_plan_message,
    render_reason_modal,
    render_request_modal,
    render_step,
    render_verdict,
)
from bot.blocks.buttons import ACTION_IDS, ACTION_LABELS
from bot.blocks.kit import context, fit_blocks, section
from bot.blocks.status import status_label
from bot.blocks.text import bullets, code_block, truncate_mrkdwn
from bot.blocks.thread import NOTABLE_KINDS
from bot.ids import ActionId, CallbackId, ModalMeta, button_value
from fakeslack.limits import check_message_text, validate_blocks, validate_view
from workflows.authoring import Risk, WorkflowSpec
from workflows.catalog import build_registry
from workflows.guidance import guidance
from workflows.model import (
    Approval,
    AuditEvent,
    Decision,
    Intent,
    IntentId,
    IntentStatus,
    Mode,
    StepRecord,
    StepStatus,
)
from workflows.plan import Mutation, Plan, canonical_json, sha256_hex
from workflows.scheduling import Schedule
from workflows.service import IntentView
from workflows.states import Action
from workflows.windows import Opening

GOLDEN = Path(__file__).parent / "golden"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SPEC = build_registry().get("rds.create-replica")
REQUESTER, APPROVER, SECOND = "U0REQUESTER", "U0APPROVER", "U0SECOND"
INTENT_ID = IntentId("01HZX3K5V8R2M4N6P8Q0S2T4W6")
CANARY = "CANARY-123"
SECRET_DSN = f"postgresql://u:{CANARY}@h/db"
HUGE = "x" * 10_000  # one 10,000-character token
WORDS = ("lorem ipsum " * 900)[:10_000]  # 10,000 characters of words
FAILED_REASON = "await_available failed: billing-db-r1 is incompatible-parameters"
META = ModalMeta(action="request", channel="C0OPS0001", workflow=SPEC.name)


# builders ----------------------------------------------------------------------------------------


def plan_dict(**overrides: Any) -> dict[str, Any]:
    """A plan shaped like the one preflight computes for rds.create-replica."""
    plan = Plan(
        workflow=SPEC.name,
        environment="prod",
        params={"source": "billing-db", "replica": "billing-db-r1", "instance_class": "db.r6g.large"},
        targets=("rds:billing-db", "rds:billing-db-r1"),
        mutations=(
            Mutation(action="create", target="rds:billing-db-r1", detail="read replica of billing-db as db.r6g.large"),
        ),
        locks=("rds:billing-db-r1",),
        blast_radius="one new instance; replication load on billing-db",
        risk=SPEC.risk.value,
        rollback=SPEC.rollback,
        rollback_limits=SPEC.rollback_limits,
        verification=tuple(f"{p.name}: {p.description}" for p in SPEC.postconditions),
        fingerprint="f" * 64,
        observed={"source": {"id": "billing-db", "status": "available"}, "replica": None},
    )
    dumped = {
        k: v for k, v in plan.model_dump(mode="json").items() if v is not None or k not in ("ticket", "ticket_url")
    }
    return {**dumped, **overrides}


def make_intent(status: IntentStatus, **changes: Any) -> Intent:
    plan = changes.pop("plan", None) or plan_dict()
    intent = Intent(
        id=INTENT_ID,
        workflow=SPEC.name,
        environment="prod",
        params=dict(plan["params"]),
        requester=REQUESTER,
        idempotency_key="auto:abc",
        plan=plan,
        plan_hash=sha256_hex(canonical_json(plan)),
        status=status,
        version=3,
        mode=Mode.FORWARD,
        attempts=0,
        created_at=T0,
        updated_at=T0 + timedelta(minutes=20),
    )
    return dataclasses.replace(intent, **changes)


def make_step(seq: int, name: str, status: StepStatus, **changes: Any) -> StepRecord:
    rec = StepRecord(INTENT_ID, seq, name, status, f"{INTENT_ID}-{seq}-{name}", 1, T0 + timedelta(minutes=5 + seq))
    return dataclasses.replace(rec, **changes)


def make_event(seq: int, kind: str, actor: str, data: dict[str, Any]) -> AuditEvent:
    return AuditEvent(seq, INTENT_ID, kind, actor, data, T0 + timedelta(minutes=seq), "0" * 64, f"{seq:064d}")


def approval(intent: Intent, actor: str, decision: Decision = Decision.APPROVE, reason: str | None = None) -> Approval:
    at = T0 + timedelta(minutes=2)
    return Approval(intent.id, actor, intent.plan_hash, decision, at, at + timedelta(hours=1), reason)


def make_view(
    intent: Intent,
    steps: Sequence[StepRecord] = (),
    approvals: Sequence[Approval] = (),
    events: Sequence[AuditEvent] = (),
    needed: int = 1,
) -> IntentView:
    return IntentView(
        intent, tuple(steps), tuple(approvals), tuple(events), guidance(intent, SPEC, list(steps)), needed
    )


CREATED = make_step(
    1,
    "create_replica",
    StepStatus.SUCCEEDED,
    finished_at=T0 + timedelta(minutes=7),
    external_ids={"replica_id": "billing-db-r1", "arn": "arn:aws:rds:us-east-1:1:db:billing-db-r1"},
)
AVAILABLE = make_step(2, "await_available", StepStatus.SUCCEEDED, finished_at=T0 + timedelta(minutes=30))
BROKEN = make_step(
    2,
    "await_available",
    StepStatus.FAILED,
    attempts=2,
    finished_at=T0 + timedelta(minutes=9),
    error="billing-db-r1 is incompatible-parameters",
)


# golden files ------------------------------------------------------------------------------------


def assert_golden(name: str, payload: object, directory: Path = GOLDEN) -> None:
    """Compare `payload` with directory/name.json exactly; UPDATE_GOLDEN=1 rewrites it instead."""
    path = directory / f"{name}.json"
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; run with UPDATE_GOLDEN=1 to write it")
    assert text == path.read_text(encoding="utf-8"), f"{path.name} changed; rerun with UPDATE_GOLDEN=1 if intended"


def valid_message(text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """Assert that a message payload passes Slack's limits; return it for a golden file."""
    assert validate_blocks(blocks, "message") == []
    assert check_message_text(text) == []
    return {"text": text, "blocks": blocks}


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def plan_payload(view: IntentView, risk: Risk = Risk.MEDIUM) -> dict[str, Any]:
    return valid_message(plan_fallback_text(view), render_plan_message(view, SPEC.summary, risk))


def test_missing_golden_file_fails_without_the_update_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A golden file that does not exist is a failure unless UPDATE_GOLDEN=1 asks to write it."""
    monkeypatch.delenv("UPDATE_GOLDEN", raising=False)
    with pytest.raises(pytest.fail.Exception, match="missing"):
        assert_golden("absent", {"a": 1}, tmp_path)
    monkeypatch.setenv("UPDATE_GOLDEN", "1")
    assert_golden("absent", {"a": 1}, tmp_path)
    assert (tmp_path / "absent.json").exists()


# the plan message --------------------------------------------------------------------------------


def test_pending_plan_offers_approve_and_deny() -> None:
    """A pending medium-risk plan shows its facts, 1/2 approvals, and Approve/Deny without a confirm dialog."""
    intent = make_intent(IntentStatus.PENDING_APPROVAL)
    payload = plan_payload(make_view(intent, approvals=[approval(intent, APPROVER)], needed=2))
    assert action_ids(payload["blocks"]) == [ActionId.APPROVE, ActionId.DENY]
    assert "confirm" not in json.dumps(payload)
    assert "1/2" in json.dumps(payload)
    assert_golden("plan_pending_medium", payload)


def test_high_risk_plan_asks_to_confirm_approval() -> None:
    """Approving a high-risk plan goes through a confirmation dialog."""
    intent = make_intent(IntentStatus.PENDING_APPROVAL, plan=plan_dict(risk="high"))
    payload = plan_payload(make_view(intent), Risk.HIGH)
    approve = next(e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert approve["action_id"] == ActionId.APPROVE and "confirm" in approve
    assert_golden("plan_high_risk", payload)


def test_succeeded_plan_offers_compensation_only() -> None:
    """A succeeded intent has no approval buttons; it offers Compensate because guidance allows it."""
    intent = make_intent(IntentStatus.SUCCEEDED, status_reason="all steps done and postconditions verified")
    view = make_view(intent, [CREATED, AVAILABLE], [approval(intent, APPROVER)])
    assert Action.COMPENSATE in view.guidance.action_names
    payload = plan_payload(view)
    assert action_ids(payload["blocks"]) == [ActionId.COMPENSATE]
    assert_golden("plan_succeeded", payload)


def test_failed_plan_offers_recovery_buttons() -> None:
    """A failed intent offers Retry, Cancel, Mark done and Compensate, each carrying the intent's button value."""
    intent = make_intent(IntentStatus.FAILED, status_reason=FAILED_REASON)
    payload = plan_payload(make_view(intent, [CREATED, BROKEN], [approval(intent, APPROVER)]))
    expected = [ActionId.RETRY, ActionId.CANCEL, ActionId.MARK_DONE, ActionId.COMPENSATE]
    assert action_ids(payload["blocks"]) == expected
    assert_golden("plan_failed", payload)


def test_denied_plan_shows_the_reason_and_no_buttons() -> None:
    """A denied intent names who denied it and why, and offers nothing."""
    intent = make_intent(IntentStatus.DENIED, status_reason="denied by U0APPROVER: wrong instance class")
    denial = approval(intent, APPROVER, Decision.DENY, "wrong instance class")
    payload = plan_payload(make_view(intent, approvals=[denial]))
    assert action_ids(payload["blocks"]) == []
    assert "wrong instance class" in json.dumps(payload["blocks"][-2])
    assert_golden("plan_denied", payload)


def test_every_button_carries_the_intent_version_and_plan_hash() -> None:
    """Button values decode to the intent id, full plan hash and version the message showed."""
    intent = make_intent(IntentStatus.BLOCKED, status_reason="await_available did not converge")
    for blocks in (
        render_plan_message(make_view(intent, [CREATED]), SPEC.summary, Risk.LOW),
        render_verdict(make_view(intent, [CREATED]))[1],
    ):
        for element in (e for b in blocks if b["type"] == "actions" for e in b["elements"]):
            value = button_value(element["value"])
            assert (value.intent_id, value.plan_hash, value.version) == (intent.id, intent.plan_hash, 3)


def test_a_scheduled_plan_says_when_it_runs_and_offers_run_now_behind_a_confirmation() -> None:
    """The time left is counted from when the view was read; Run now and Cancel each ask to confirm."""
    opens = T0 + timedelta(days=3)
    intent = make_intent(IntentStatus.SCHEDULED, status_reason="approved by U0APPROVER", next_check_at=opens)
    window = Opening(opens, opens + timedelta(hours=2), "Sun 02:00-04:00 UTC", "UTC")
    view = dataclasses.replace(
        make_view(intent, approvals=[approval(intent, APPROVER)]),
        schedule=Schedule(opens, window),
        as_of=opens - timedelta(hours=5, minutes=12),
    )
    payload = plan_payload(view)
    assert action_ids(payload["blocks"]) == [ActionId.RUN_NOW, ActionId.CANCEL]
    assert "*Scheduled:* runs in the window Sun 02:00-04:00 UTC, in 5 h 12 min" in json.dumps(payload)
    run_now, cancel = (e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert "confirm" in run_now and "confirm" in cancel


def all_elements(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def every_button_status() -> list[tuple[IntentStatus, list[dict[str, Any]]]]:
    """The buttons of the plan message and of the verdict, for every status, on a high-risk plan."""
    out = []
    for status in IntentStatus:
        intent = make_intent(status, plan=plan_dict(risk="high"))
        view = make_view(intent, [CREATED])
        out.append((status, render_plan_message(view, SPEC.summary, Risk.HIGH)))
        out.append((status, render_verdict(view)[1]))
    return out


def test_every_button_has_an_accessibility_label_naming_the_change() -> None:
    """Each button says to a screen reader what it does and to which change, within Slack's 75 characters."""
    buttons = [e for _, blocks in every_button_status() for e in all_elements(blocks) if e["type"] == "button"]
    assert {e["action_id"] for e in buttons} >= {ActionId.APPROVE, ActionId.DENY, ActionId.RETRY, ActionId.CANCEL}
    for element in buttons:
        label = element["accessibility_label"]
        assert 0 < len(label) <= 75 and label.startswith(element["text"]["text"])
        assert f"{SPEC.name} in prod" in label


def test_an_accessibility_label_is_cut_to_75_characters() -> None:
    """A long workflow name and environment still leave a label Slack accepts."""
    intent = make_intent(IntentStatus.FAILED, environment="e" * 200)
    for element in all_elements(render_verdict(make_view(intent, [CREATED, BROKEN]))[1]):
        assert len(element["accessibility_label"]) <= 75


def test_cancel_always_asks_to_confirm_and_says_nothing_is_undone() -> None:
    """Wherever Cancel is offered, it stands behind a dialog naming the change and the consequence."""
    cancels = [
        e for _, blocks in every_button_status() for e in all_elements(blocks) if e["action_id"] == ActionId.CANCEL
    ]
    assert cancels
    for cancel in cancels:
        text = cancel["confirm"]["text"]["text"]
        assert f"Cancel {SPEC.name} in prod?" in text and "Nothing already changed is undone" in text
        assert "3f07746b015d" not in text  # a consequence, not a plan hash


def test_retry_asks_to_confirm_in_production_only() -> None:
    """Retry in a production environment goes through a dialog saying the failed step runs again; elsewhere not."""
    intent = make_intent(IntentStatus.FAILED, status_reason=FAILED_REASON)
    view = make_view(intent, [CREATED, BROKEN])
    for production, confirmed in ((True, True), (False, False)):
        blocks = render_verdict(dataclasses.replace(view, production=production))[1]
        [retry] = [e for e in all_elements(blocks) if e["action_id"] == ActionId.RETRY]
        assert ("confirm" in retry) is confirmed
    blocks = render_verdict(view)[1]
    [retry] = [e for e in all_elements(blocks) if e["action_id"] == ActionId.RETRY]
    assert f"The failed step of {SPEC.name} in prod runs again" in retry["confirm"]["text"]["text"]


def test_high_risk_approval_confirm_names_what_runs() -> None:
    """Approving a high-risk plan confirms the changes that will run and where, not a plan hash."""
    intent = make_intent(IntentStatus.PENDING_APPROVAL, plan=plan_dict(risk="high"))
    [approve] = [e for e in all_elements(plan_payload(make_view(intent), Risk.HIGH)["blocks"]) if "confirm" in e]
    text = approve["confirm"]["text"]["text"]
    assert text == "Runs create rds:billing-db-r1 in prod as soon as enough approvals are in."


def test_undo_after_a_success_is_a_menu_item_labelled_by_its_effect() -> None:
    """A succeeded intent offers compensation as "Propose undoing" in an overflow menu, behind a confirmation."""
    intent = make_intent(IntentStatus.SUCCEEDED, status_reason="all steps done and postconditions verified")
    [menu] = all_elements(plan_payload(make_view(intent, [CREATED, AVAILABLE]))["blocks"])
    assert menu["type"] == "overflow" and menu["action_id"] == ActionId.COMPENSATE
    [option] = menu["options"]
    assert option["text"]["text"] == "Propose undoing this change" and len(option["value"]) <= 150
    assert button_value(option["value"]).plan_hash == intent.plan_hash
    assert "runs only once approved" in menu["confirm"]["text"]["text"]


def test_every_action_and_status_has_a_rendering() -> None:
    """Each guidance action maps to an action id and a label; each status has a human label."""
    assert set(ACTION_IDS) == set(Action) - {Action.VIEW} == set(ACTION_LABELS)  # request: an expired one's again
    assert all(status_label(s) != s.value for s in IntentStatus)


# thread replies ----------------------------------------------------------------------------------

STEPS = {
    "started": make_step(1, "create_replica", StepStatus.STARTED),
    "succeeded": CREATED,
    "failed": BROKEN,
    "unknown": make_step(1, "create_replica", StepStatus.UNKNOWN, attempts=2, error="ReadTimeout: no response in 120s"),
    "pending": make_step(2, "await_available", StepStatus.PENDING, output={"observed": {"status": "creating"}}),
}


@pytest.mark.parametrize("name", sorted(STEPS))
def test_step_reply(name: str) -> None:
    """Each step state renders as a thread reply with its details."""
    text, blocks = render_step(STEPS[name])
    assert_golden(f"step_{name}", valid_message(text, blocks))


EVENTS = {
    "approved": make_event(3, "approved", APPROVER, {"plan_hash": "a" * 64}),
    "denied": make_event(3, "denied", APPROVER, {"reason": "wrong class", "from": "pending_approval", "to": "denied"}),
    "claimed": make_event(4, "claimed", "executor-7f3a", {"attempt": 1}),
    "step_unknown": make_event(
        6, "step_unknown", "reconciler", {"step": "create_replica", "reason": "executor lease expired mid-step"}
    ),
    "executor_lost": make_event(
        7, "executor_lost", "reconciler", {"lease_owner": "executor-7f3a", "unknown_steps": ["create_replica"]}
    ),
    "stale_plan": make_event(
        5,
        "stale_plan",
        "executor-7f3a",
        {
            "status": "needs_reapproval",
            "reason": "the observed state changed since the plan was approved",
            "new_plan_hash": "b" * 64,
        },
    ),
    "succeeded": make_event(
        9,
        "succeeded",
        "executor-7f3a",
        {
            "status": "succeeded",
            "reason": "all steps done and postconditions verified",
            "replayed": ["create_replica"],
            "external_ids": {"create_replica": {"replica_id": "billing-db-r1"}},
        },
    ),
    "step_failed": make_event(
        8,
        "step_failed",
        "executor-7f3a",
        {
            "status": "failed",
            "reason": FAILED_REASON,
            "guidance": "inspect the instance in the RDS console; compensate to delete it",
        },
    ),
    "marked_done": make_event(
        10, "marked_done", SECOND, {"reason": "verified by hand in the console", "from": "unknown", "to": "marked_done"}
    ),
}


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_notable_event_reply(kind: str) -> None:
    """Notable audit events render as thread replies naming who, what and why."""
    rendered = render_event(EVENTS[kind])
    assert rendered is not None
    assert_golden(f"event_{kind}", valid_message(*rendered))


@pytest.mark.parametrize("kind", ["requested", "duplicate_request", "deny_refused", "request_refused", "still_unknown"])
def test_routine_events_are_not_posted(kind: str) -> None:
    """Routine audit kinds produce no thread reply."""
    assert render_event(make_event(1, kind, REQUESTER, {"reason": "x"})) is None


@pytest.mark.parametrize("kind", ["approval_refused", "action_refused", "deny_refused", "request_refused"])
def test_refusals_are_never_posted_in_the_thread(kind: str) -> None:
    """A refusal is answered privately and kept in the audit log; the thread never names who was refused."""
    assert kind not in NOTABLE_KINDS
    assert render_event(make_event(1, kind, SECOND, {"reason": "you may not approve your own request"})) is None


def test_verdict_gives_the_four_answers_and_recovery_buttons() -> None:
    """A failed intent's verdict says what was requested, changed, uncertain, and what can be done."""
    intent = make_intent(IntentStatus.FAILED, status_reason=FAILED_REASON)
    text, blocks = render_verdict(make_view(intent, [CREATED, BROKEN]))
    assert action_ids(blocks) == [ActionId.RETRY, ActionId.CANCEL, ActionId.MARK_DONE, ActionId.COMPENSATE]
    assert_golden("verdict_failed", valid_message(text, blocks))


def test_verdict_of_an_unknown_outcome() -> None:
    """An unknown outcome names the uncertain step and offers Resume, Cancel and Mark done."""
    step = STEPS["unknown"]
    intent = make_intent(IntentStatus.UNKNOWN, status_reason="create_replica: outcome unknown after 2 attempts")
    text, blocks = render_verdict(make_view(intent, [step]))
    assert action_ids(blocks) == [ActionId.RESUME, ActionId.CANCEL, ActionId.MARK_DONE]
    assert_golden("verdict_unknown", valid_message(text, blocks))


# digest, home, modals ----------------------------------------------------------------------------


def test_digest() -> None:
    """The digest counts intents by status and lists those needing attention with links."""
    digest = Digest(
        channel="C0OPS0001",
        period="24h to 2024-05-01 12:00 UTC",
        counts={IntentStatus.SUCCEEDED: 7, IntentStatus.FAILED: 1, IntentStatus.UNKNOWN: 1, IntentStatus.RUNNING: 0},
        attention=(
            AttentionItem(
                "01HZX3K5V8R2M4N6P8Q0S2T4W6",
                SPEC.name,
                IntentStatus.UNKNOWN,
                "create_replica: outcome unknown after 3 attempts",
                7260,
                "https://example.slack.com/archives/C0OPS0001/p1714564800000100",
            ),
            AttentionItem(
                "01HZX3K5V8R2M4N6P8Q0S2T4W7",
                SPEC.name,
                IntentStatus.FAILED,
                "await_available failed: storage-full",
                90000,
                None,
                owner=REQUESTER,
            ),
        ),
        title="Wed 01 May, 12:00 UTC",
        since="Tue 30 Apr, 12:00",
    )
    message = valid_message(*render_digest(digest))
    assert_golden("digest", message)
    blocks = message["blocks"]
    assert blocks[0]["text"]["text"] == "Ops digest · Wed 01 May, 12:00 UTC"  # the period in words
    assert f"<@{REQUESTER}>" in str(blocks)  # the owner is mentioned
    assert "*Ended since Tue 30 Apr, 12:00*" in str(blocks) and "*Open now*" in str(blocks)


def test_a_quiet_digest_is_one_line() -> None:
    """Nothing needs a human and nothing is about to expire: one line (with the audit head), no list of zeroes."""
    digest = Digest(
        channel="C0OPS0001",
        period="2024-05-01T12:00",
        counts={IntentStatus.SUCCEEDED: 3, IntentStatus.RUNNING: 1},
        audit_head="42:" + "a" * 64,
        title="Wed 01 May, 12:00 UTC",
        since="Tue 30 Apr, 12:00",
    )
    message = valid_message(*render_digest(digest))
    text, blocks = message["text"], message["blocks"]
    assert [b["type"] for b in blocks] == ["section", "context"]
    assert "nothing needs attention (open: 1 running; ended since Tue 30 Apr, 12:00: 3 succeeded)" in str(blocks)
    assert text == "Ops digest · Wed 01 May, 12:00 UTC: nothing needs attention"


def test_home_view() -> None:
    """The home tab lists approvals waiting on the viewer, with buttons, and their recent operations."""
    waiting = make_intent(IntentStatus.PENDING_APPROVAL)
    mine = [
        make_intent(IntentStatus.SUCCEEDED, id=IntentId("01HZX3K5V8R2M4N6P8Q0S2T4W7"), requester=APPROVER),
        make_intent(
            IntentStatus.CONVERGING,
            id=IntentId("01HZX3K5V8R2M4N6P8Q0S2T4W8"),
            requester=APPROVER,
            status_reason="await_available: billing-db-r2 is creating",
        ),
    ]
    view = render_home(APPROVER, [waiting], mine, T0 + timedelta(hours=1))
    assert validate_view(view, "home") == []
    assert action_ids(view["blocks"]) == [ActionId.APPROVE, ActionId.DENY]
    assert_golden("home", view)


def test_request_modal_is_generated_from_the_input_model() -> None:
    """One input per field of CreateReplicaParams, with hints, defaults and an environment select."""
    view = render_request_modal(SPEC, ["prod", "staging"], META)
    assert validate_view(view, "modal") == []
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert list(inputs) == ["env", "source", "replica", "instance_class", "max_lag_seconds"]
    assert inputs["instance_class"]["optional"] is True
    assert inputs["instance_class"]["element"]["initial_value"] == "db.t3.medium"
    assert ModalMeta.decode(view["private_metadata"]) == META
    assert_golden("request_modal", view)


@pytest.mark.parametrize(
    ("name", "required", "callback"),
    [("deny", False, CallbackId.DENY_MODAL), ("mark_done", True, CallbackId.REASON_MODAL)],
)
def test_reason_modal(name: str, required: bool, callback: CallbackId) -> None:
    """Deny asks for an optional reason; mark done requires one."""
    meta = ModalMeta(action=name, channel="C0OPS0001", intent_id=INTENT_ID, plan_hash="a" * 64, version=3)
    view = render_reason_modal("Deny" if name == "deny" else "Mark done", meta, required, callback_id=callback)
    assert validate_view(view, "modal") == []
    assert view["callback_id"] == callback
    assert_golden(f"reason_modal_{name}", view)


# limits under huge inputs ------------------------------------------------------------------------


def huge_plan(filler: str) -> dict[str, Any]:
    return plan_dict(
        workflow="w" * 500,
        targets=[f"rds:{i}-{filler}" for i in range(80)],
        locks=[filler] * 80,
        mutations=[{"action": filler, "target": filler, "detail": filler} for _ in range(80)],
        blast_radius=filler,
        rollback={f"step_{i}_{'s' * 300}": "irreversible" for i in range(80)},
        rollback_limits=filler,
        verification=[filler] * 80,
    )


def huge_view(status: IntentStatus, filler: str = HUGE) -> IntentView:
    intent = make_intent(
        status,
        plan=huge_plan(filler),
        workflow="w" * 500,
        environment="e" * 500,
        status_reason=filler,
        last_error=filler,
        params={f"p{i}": filler for i in range(40)},
    )
    steps = [
        make_step(
            i,
            f"step_{i}_{'s' * 300}",
            list(StepStatus)[i % 5],
            error=filler,
            external_ids={f"k{j}": filler for j in range(20)},
        )
        for i in range(80)
    ]
    approvals = [approval(intent, f"U{i:010d}", Decision(["approve", "deny"][i % 2]), filler) for i in range(60)]
    return make_view(intent, steps, approvals, needed=3)


@pytest.mark.parametrize("status", list(IntentStatus))
@pytest.mark.parametrize("risk", list(Risk))
@pytest.mark.parametrize("filler", [HUGE, WORDS], ids=["token", "words"])
def test_plan_message_fits_slack_limits_with_huge_inputs(status: IntentStatus, risk: Risk, filler: str) -> None:
    """A 500-character workflow name, 10,000-character reasons and 80 steps still give a valid message."""
    view = huge_view(status, filler)
    valid_message(plan_fallback_text(view), render_plan_message(view, filler, risk))
    valid_message(*render_verdict(view))


@pytest.mark.parametrize("filler", [HUGE, WORDS], ids=["token", "words"])
def test_thread_replies_fit_slack_limits_with_huge_inputs(filler: str) -> None:
    """Every step state and every notable event kind stays valid with huge errors, reasons and ids."""
    for step in huge_view(IntentStatus.FAILED, filler).steps:
        observed = {f"o{i}": filler for i in range(30)}
        valid_message(*render_step(dataclasses.replace(step, output={"observed": observed})))
    data = {
        "reason": filler,
        "why": filler,
        "step": filler,
        "guidance": filler,
        "attempt": filler,
        "how": filler,
        "lease_owner": filler,
        "unknown_steps": [filler] * 80,
        "replayed": [filler] * 80,
        "plan_hash": filler,
        "new_plan_hash": filler,
        "external_ids": {f"s{i}": {"id": filler} for i in range(80)},
    }
    for kind in sorted(NOTABLE_KINDS):
        rendered = render_event(make_event(1, kind, "a" * 500, data))
        assert rendered is not None
        valid_message(*rendered)


@pytest.mark.parametrize("filler", [HUGE, WORDS], ids=["token", "words"])
def test_digest_fits_slack_limits_with_huge_inputs(filler: str) -> None:
    """Hundreds of attention items with huge reasons and odd links still give a valid message."""
    items = tuple(
        AttentionItem(
            f"id{i}",
            "w" * 500,
            IntentStatus.UNKNOWN,
            filler,
            10.0**9,
            "https://x/" + "y" * 5000 if i % 2 else "javascript:alert(1)",
        )
        for i in range(500)
    )
    digest = Digest("c" * 500, filler, {s: 10**9 for s in IntentStatus}, items)
    valid_message(*render_digest(digest))


@pytest.mark.parametrize("filler", [HUGE, WORDS], ids=["token", "words"])
def test_home_fits_slack_limits_with_huge_inputs(filler: str) -> None:
    """Two hundred pending approvals and recent operations with huge names still give a valid home tab."""
    big = huge_view(IntentStatus.PENDING_APPROVAL, filler).intent
    many = [dataclasses.replace(big, id=IntentId(f"{i:026d}")) for i in range(200)]
    assert validate_view(render_home("U" + "X" * 500, many, many, T0), "home") == []


@pytest.mark.parametrize("filler", [HUGE, WORDS], ids=["token", "words"])
def test_modals_fit_slack_limits_with_huge_inputs(filler: str) -> None:
    """A model with 150 long-described fields, 300 environments and a long title still give valid modals."""
    fields = {
        f"f{i}_{'n' * 200}": (
            str,
            Field(default=filler[: 100 * i], description=filler, pattern="^" + "a" * 3000 + "$", max_length=9000),
        )
        for i in range(150)
    }
    wide: Any = create_model("Wide", **fields)  # type: ignore[call-overload]
    spec: WorkflowSpec = dataclasses.replace(SPEC, name="n" * 500, summary=filler, blast_radius=filler, params=wide)
    envs = [f"{i}-{'e' * 300}" for i in range(300)]
    assert validate_view(render_request_modal(spec, envs, META), "modal") == []
    meta = ModalMeta(
        action="a" * 40, channel="c" * 40, intent_id="i" * 40, plan_hash="h" * 64, version=10**9, workflow="w" * 100
    )
    assert validate_view(render_reason_modal("t" * 500, meta, True, callback_id=CallbackId.REASON_MODAL), "modal") == []


# secrets -----------------------------------------------------------------------------------------


def test_no_renderer_output_contains_a_secret() -> None:
    """A DSN with a password in reasons, errors, ids, params and defaults is masked in every payload."""
    plan = plan_dict(
        blast_radius=SECRET_DSN,
        mutations=[{"action": "create", "target": "r", "detail": SECRET_DSN}],
        params={"source": SECRET_DSN, "password": CANARY},
    )
    outputs: list[object] = []
    for status in IntentStatus:
        intent = make_intent(status, plan=plan, status_reason=f"failed: {SECRET_DSN}", last_error=SECRET_DSN)
        steps = [
            dataclasses.replace(
                s,
                error=f"could not connect to {SECRET_DSN}",
                external_ids={"dsn": SECRET_DSN, "url": SECRET_DSN},
                output={"observed": {"dsn": SECRET_DSN}},
            )
            for s in STEPS.values()
        ]
        view = make_view(intent, steps, [approval(intent, APPROVER, Decision.DENY, f"no: {SECRET_DSN}")])
        outputs += [render_plan_message(view, SECRET_DSN, Risk.HIGH), plan_fallback_text(view), render_verdict(view)]
        outputs += [render_step(s) for s in steps]
        outputs.append(render_home(APPROVER, [intent], [intent], T0))
    data = {"reason": SECRET_DSN, "why": SECRET_DSN, "guidance": SECRET_DSN, "external_ids": {"a": {"dsn": SECRET_DSN}}}
    outputs += [render_event(make_event(1, kind, APPROVER, data)) for kind in NOTABLE_KINDS]
    outputs.append(
        render_digest(
            Digest("C0OPS0001", "day", {}, (AttentionItem("i", SPEC.name, IntentStatus.FAILED, SECRET_DSN, 1.0, None),))
        )
    )
    leaky: Any = create_model("Leaky", dsn=(str, Field(default=SECRET_DSN, description=SECRET_DSN)))
    outputs.append(render_request_modal(dataclasses.replace(SPEC, params=leaky, summary=SECRET_DSN), ["prod"], META))
    dumped = json.dumps(outputs)
    assert "postgresql://u:***@h/db" in dumped
    assert CANARY not in dumped


def test_a_secret_cut_by_a_length_limit_is_not_half_shown() -> None:
    """Wherever a length limit falls inside a DSN, no part of its password is shown."""
    for offset in range(0, 3400, 7):
        text = ("word " * 700)[:offset] + SECRET_DSN + " and more"
        intent = make_intent(IntentStatus.FAILED, status_reason=text, last_error=text)
        step = dataclasses.replace(BROKEN, error=text)
        view = make_view(intent, [CREATED, step], [approval(intent, APPROVER, Decision.DENY, text)])
        rendered = [
            render_plan_message(view, text, Risk.LOW),
            render_verdict(view),
            render_step(step),
            render_event(make_event(1, "step_failed", "executor", {"reason": text, "guidance": text})),
        ]
        assert "CANARY" not in json.dumps(rendered), offset


# text helpers ------------------------------------------------------------------------------------


def test_truncation_never_splits_links_escapes_or_code_fences() -> None:
    """Cutting mrkdwn keeps `<…>` links and `&…;` escapes whole and closes an open code fence."""
    assert truncate_mrkdwn("see <@U0APPROVER> now", 12) == "see …"
    assert truncate_mrkdwn("a &amp; b", 5) == "a …"
    cut = truncate_mrkdwn("error:\n" + code_block("y" * 100, 200), 40)
    assert len(cut) <= 40 and cut.count("```") == 2
    assert bullets([f"item {i}" for i in range(100)], 100).endswith("more_")


def test_fit_blocks_keeps_the_buttons() -> None:
    """When there are too many blocks the tail (the buttons) survives and a note says what was dropped."""
    blocks = [section(str(i)) for i in range(60)] + [context(["tail"])]
    fitted = fit_blocks(blocks, 50, keep_tail=1)
    assert len(fitted) == 50 and fitted[-1] == context(["tail"]) and "12 more" in json.dumps(fitted[-2])


def test_the_notification_text_names_the_change_and_its_target_in_plain_words() -> None:
    """All a push notification shows: status, action and target, environment; no mrkdwn marks to show raw."""
    reason = "create_replica: `ReadTimeout` *twice*"
    text = plan_fallback_text(make_view(make_intent(IntentStatus.FAILED, status_reason=reason)))
    assert text.startswith("Failed: create rds:billing-db-r1 (read replica of billing-db as db.r6g.large) in prod")
    assert "create_replica: ReadTimeout twice" in text  # ids keep their underscores
    assert not set("*`~") & set(text)
