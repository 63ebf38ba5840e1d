"""Block Kit renderers: golden payloads, the order an on-call engineer reads them in, Slack's limits under huge
inputs, and no secret in any output."""

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
    checklist,
    plan_fallback_text,
    render_digest,
    render_home,
    render_plan_message,
    render_plan_modal,
    render_reason_modal,
    render_request_modal,
    render_verdict,
)
from bot.blocks.buttons import ACTION_IDS, ACTION_LABELS, undo_label
from bot.blocks.kit import context, fit_blocks, section
from bot.blocks.status import status_label
from bot.blocks.text import bullets, code_block, truncate_mrkdwn
from bot.blocks.thread import NOTABLE_KINDS, superseded
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
PLANNED = tuple((s.name, s.description) for s in SPEC.steps)  # what OpsService.show puts in steps_planned
ROLES = ("dba-lead",)
REQUESTER, APPROVER, SECOND = "U0REQUESTER", "U0APPROVER", "U0SECOND"
INTENT_ID = IntentId("01HZX3K5V8R2M4N6P8Q0S2T4W6")
CANARY = "CANARY-123"
SECRET_DSN = f"postgresql://u:{CANARY}@h/db"
HUGE = "x" * 10_000  # one 10,000-character token
WORDS = ("lorem ipsum " * 900)[:10_000]  # 10,000 characters of words
FAILED_REASON = "await_available failed: billing-db-r1 is incompatible-parameters"
QUOTA_REASON = (
    "create_replica failed: CreateDBInstanceReadReplica: InstanceQuotaExceeded: "
    "the account's quota of 40 DB instances is reached"
)
QUOTA_ADVICE = "raise the quota for DB instances in Service Quotas (Amazon RDS, DB instances), then Retry"
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
    **extra: Any,
) -> IntentView:
    """A view as OpsService.show builds it: approver roles, the planned steps and, while awaiting, a deadline."""
    decide_by = T0 + timedelta(days=1) if intent.status.awaiting_approval and not steps else None
    fields: dict[str, Any] = {"approver_roles": ROLES, "decide_by": decide_by, "steps_planned": PLANNED, **extra}
    return IntentView(
        intent,
        tuple(steps),
        tuple(approvals),
        tuple(events),
        guidance(intent, SPEC, list(steps)),
        needed,
        **fields,
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
STEPS = {
    "started": make_step(1, "create_replica", StepStatus.STARTED),
    "succeeded": CREATED,
    "failed": BROKEN,
    "unknown": make_step(1, "create_replica", StepStatus.UNKNOWN, attempts=2, error="ReadTimeout: no response in 120s"),
    "pending": make_step(
        2,
        "await_available",
        StepStatus.PENDING,
        output={"observed": {"status": "creating", "replica_lag": None}},
    ),
}


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


def all_elements(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for e in all_elements(blocks)]


def block_text(block: dict[str, Any]) -> str:
    """The text a reader sees in one block (a section's text or a context's elements)."""
    if "text" in block:
        return str(block["text"]["text"])
    return "\n".join(str(e.get("text", "")) for e in block.get("elements", ()))


def plan_payload(view: IntentView, risk: Risk = Risk.MEDIUM) -> dict[str, Any]:
    return valid_message(plan_fallback_text(view), render_plan_message(view, SPEC.summary, risk))


def verdict_payload(view: IntentView, entry: AuditEvent | None = None) -> dict[str, Any]:
    return valid_message(*render_verdict(view, entry))


def test_missing_golden_file_fails_without_the_update_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A golden file that does not exist is a failure unless UPDATE_GOLDEN=1 asks to write it."""
    monkeypatch.delenv("UPDATE_GOLDEN", raising=False)
    with pytest.raises(pytest.fail.Exception, match="missing"):
        assert_golden("absent", {"a": 1}, tmp_path)
    monkeypatch.setenv("UPDATE_GOLDEN", "1")
    assert_golden("absent", {"a": 1}, tmp_path)
    assert (tmp_path / "absent.json").exists()


# the plan message: the decision first ------------------------------------------------------------


def pending_view() -> IntentView:
    """A medium-risk plan awaiting its second approval."""
    intent = make_intent(IntentStatus.PENDING_APPROVAL)
    return make_view(intent, approvals=[approval(intent, APPROVER)], needed=2)


def test_a_pending_plan_puts_the_decision_first() -> None:
    """Status, environment and risk; then the change in plain words; then who must approve by when; buttons last."""
    payload = plan_payload(pending_view())
    blocks = payload["blocks"]
    status, change, who = (block_text(b) for b in blocks[:3])
    assert status.startswith(":hourglass_flowing_sand: *Pending approval*") and "`prod`" in status
    assert "medium risk" in status
    assert "*Create RDS instance* `billing-db-r1`" in change and f"<@{REQUESTER}>" in change
    assert "*Needs 1 more approval*" in who and "`dba-lead`" in who and "not the requester" in who
    assert "decide by <!date^" in who and f"<@{APPROVER}> approved" in who
    kinds = [b["type"] for b in blocks]
    assert kinds.index("actions") == len(blocks) - 2 and kinds[-1] == "context"  # buttons, then the footer
    assert_golden("plan_pending_medium", payload)


def test_a_pending_plan_offers_approve_deny_and_the_full_plan_without_a_confirm_dialog() -> None:
    """A medium-risk plan is approved in one click; the whole plan is one click away."""
    blocks = plan_payload(pending_view())["blocks"]
    assert action_ids(blocks) == [ActionId.APPROVE, ActionId.DENY, ActionId.CANCEL, ActionId.VIEW_PLAN]
    assert not any("confirm" in e for e in all_elements(blocks) if e["action_id"] != ActionId.CANCEL)


def test_locks_rollback_and_verification_stay_out_of_the_message() -> None:
    """The message is for deciding; the locks, rollback and verification are behind View full plan."""
    dumped = json.dumps(plan_payload(pending_view()))
    for detail in ("Locks", "Rollback", "Verification", "Blast radius", SPEC.rollback_limits or "?", "rds:billing-db"):
        assert detail not in dumped, detail
    assert "the replica has an endpoint address" not in dumped


def test_the_full_plan_modal_has_the_locks_rollback_and_verification() -> None:
    """View full plan shows what the message leaves out; from the home tab its submit approves this plan."""
    view = pending_view()
    modal = render_plan_modal(view, SPEC.summary, Risk.MEDIUM, approve=True, channel="C0OPS0001")
    assert validate_view(modal, "modal") == []
    dumped = json.dumps(modal)
    for detail in ("*Locks*", "`rds:billing-db-r1`", "*Rollback*", "*Verification*", "*Blast radius*"):
        assert detail in dumped, detail
    assert "the replica has an endpoint address" in dumped and "carries this intent" in dumped
    assert modal["callback_id"] == CallbackId.APPROVE_MODAL and modal["submit"]["text"] == "Approve"
    meta = ModalMeta.decode(modal["private_metadata"])
    assert isinstance(meta, ModalMeta) and (meta.plan_hash, meta.version) == (view.intent.plan_hash, 3)
    assert_golden("plan_modal_approve", modal)


def test_the_full_plan_modal_only_reads_when_there_is_nothing_to_approve() -> None:
    """Opened to read, or on an intent past approval, the modal has no submit and says why."""
    running = make_view(make_intent(IntentStatus.RUNNING), [STEPS["started"]])
    for view, approve in ((pending_view(), False), (running, True)):
        modal = render_plan_modal(view, SPEC.summary, Risk.MEDIUM, approve=approve)
        assert validate_view(modal, "modal") == []
        assert modal["callback_id"] == CallbackId.PLAN_MODAL and "submit" not in modal
    assert "Nothing to approve" in json.dumps(render_plan_modal(running, SPEC.summary, Risk.MEDIUM, approve=True))


def test_high_risk_plan_asks_to_confirm_approval() -> None:
    """Approving a high-risk plan goes through a confirmation dialog; the risk is bold in the status line."""
    intent = make_intent(IntentStatus.PENDING_APPROVAL, plan=plan_dict(risk="high"))
    payload = plan_payload(make_view(intent), Risk.HIGH)
    assert "*high risk*" in block_text(payload["blocks"][0])
    approve = all_elements(payload["blocks"])[0]
    assert approve["action_id"] == ActionId.APPROVE and "confirm" in approve
    assert_golden("plan_high_risk", payload)


def test_high_risk_approval_confirm_names_what_runs() -> None:
    """Approving a high-risk plan confirms the change that will run and where, not a plan hash."""
    intent = make_intent(IntentStatus.PENDING_APPROVAL, plan=plan_dict(risk="high"))
    elements = all_elements(plan_payload(make_view(intent), Risk.HIGH)["blocks"])
    [approve] = [e for e in elements if e["action_id"] == ActionId.APPROVE]
    text = approve["confirm"]["text"]["text"]
    assert text == "Create RDS instance billing-db-r1 in prod: it runs as soon as enough approvals are in."


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
    assert action_ids(payload["blocks"]) == [ActionId.RUN_NOW, ActionId.CANCEL, ActionId.VIEW_PLAN]
    assert "*Scheduled:* runs in the window Sun 02:00-04:00 UTC, in 5 h 12 min" in block_text(payload["blocks"][0])
    run_now, cancel, _ = all_elements(payload["blocks"])
    assert "confirm" in run_now and "confirm" in cancel
    assert "*Progress*" not in json.dumps(payload)  # nothing has run yet


# the plan message: a checklist while it runs -----------------------------------------------------


def progress_of(blocks: list[dict[str, Any]]) -> str:
    [text] = [block_text(b) for b in blocks if block_text(b).startswith("*Progress*")]
    return text


def test_a_running_plan_shows_a_checklist_of_its_steps() -> None:
    """While a step runs, the message lists every planned step: done, running, and the one still to do."""
    intent = make_intent(IntentStatus.RUNNING, status_reason="running create_replica")
    payload = plan_payload(make_view(intent, [STEPS["started"]], [approval(intent, APPROVER)]))
    lines = progress_of(payload["blocks"]).splitlines()
    assert lines[0] == "*Progress* · 0 of 2 steps done"
    assert lines[1].startswith(":arrow_forward: create the read replica `create_replica` — running, started <!date^")
    assert lines[2] == ":white_circle: wait until the replica is available and replicating with a healthy lag " + (
        "`await_available`"
    )
    assert action_ids(payload["blocks"]) == [ActionId.VIEW_PLAN]  # running offers nothing else
    assert_golden("plan_running", payload)


def test_a_converging_step_shows_its_last_observation() -> None:
    """A step waiting to converge says so, since when, and what was last seen, beside the step already done."""
    intent = make_intent(IntentStatus.CONVERGING, status_reason="await_available: billing-db-r1 is creating")
    payload = plan_payload(make_view(intent, [CREATED, STEPS["pending"]], [approval(intent, APPROVER)]))
    lines = progress_of(payload["blocks"]).splitlines()
    assert lines[0] == "*Progress* · 1 of 2 steps done"
    assert lines[1] == ":white_check_mark: create the read replica `create_replica` — done in 1 min"
    assert lines[2].startswith(":hourglass_flowing_sand: wait until the replica is available")
    assert "waiting for it to converge" in lines[2] and "last seen: status=creating" in lines[2]
    assert action_ids(payload["blocks"]) == [ActionId.RESUME, ActionId.CANCEL, ActionId.MARK_DONE, ActionId.VIEW_PLAN]
    assert_golden("plan_converging", payload)


def test_a_stuck_plan_marks_the_step_whose_outcome_is_unknown() -> None:
    """An unknown step is marked as such, with what opsbot does about it; the next step is still to do."""
    intent = make_intent(IntentStatus.UNKNOWN, status_reason="create_replica: outcome unknown after 2 attempts")
    payload = plan_payload(make_view(intent, [STEPS["unknown"]], [approval(intent, APPROVER)]))
    lines = progress_of(payload["blocks"]).splitlines()
    assert lines[1].startswith(":grey_question: create the read replica `create_replica` — *outcome unknown*")
    assert lines[2].startswith(":white_circle: wait until") and "not run" not in lines[2]
    assert "outcome unknown after 2 attempts" in block_text(payload["blocks"][0])  # why, under the status
    assert action_ids(payload["blocks"]) == [ActionId.RESUME, ActionId.CANCEL, ActionId.MARK_DONE, ActionId.VIEW_PLAN]
    assert_golden("plan_stuck_unknown", payload)


def test_failed_plan_marks_the_failed_step_and_offers_recovery_buttons() -> None:
    """A failed intent keeps its checklist (the failed step, its error) and offers Retry, Cancel, Mark done, Undo."""
    intent = make_intent(IntentStatus.FAILED, status_reason=FAILED_REASON)
    payload = plan_payload(make_view(intent, [CREATED, BROKEN], [approval(intent, APPROVER)]))
    lines = progress_of(payload["blocks"]).splitlines()
    assert lines[2].startswith(":x: wait until the replica is available")
    assert "*failed*, attempt 2: billing-db-r1 is incompatible-parameters" in lines[2]
    expected = [ActionId.RETRY, ActionId.CANCEL, ActionId.MARK_DONE, ActionId.COMPENSATE, ActionId.VIEW_PLAN]
    assert action_ids(payload["blocks"]) == expected
    assert_golden("plan_failed", payload)


def test_the_checklist_marks_every_step_state() -> None:
    """Done, running, converging (with its observation), failed, unknown and to do each read differently."""
    planned = tuple((f"s{i}", f"step {i}") for i in range(1, 7))
    records = [
        make_step(1, "s1", StepStatus.SUCCEEDED, finished_at=T0 + timedelta(minutes=9)),
        make_step(2, "s2", StepStatus.STARTED),
        make_step(3, "s3", StepStatus.PENDING, output={"observed": {"status": "modifying"}}),
        make_step(4, "s4", StepStatus.FAILED, attempts=3, error="storage-full"),
        make_step(5, "s5", StepStatus.UNKNOWN),
    ]
    view = make_view(make_intent(IntentStatus.RUNNING), records, steps_planned=planned)
    head, *lines = checklist(view).splitlines()
    assert head == "*Progress* · 1 of 6 steps done"
    marks = [line.split(" ", 1)[0] for line in lines]
    assert marks == [
        ":white_check_mark:",
        ":arrow_forward:",
        ":hourglass_flowing_sand:",
        ":x:",
        ":grey_question:",
        ":white_circle:",
    ]
    assert lines[0].endswith("— done in 3 min") and "— running, started" in lines[1]
    assert "last seen: status=modifying" in lines[2] and "*failed*, attempt 3: storage-full" in lines[3]
    assert "*outcome unknown*" in lines[4] and lines[5] == ":white_circle: step 6 `s6`"


@pytest.mark.parametrize("status", [IntentStatus.SUCCEEDED, IntentStatus.DENIED, IntentStatus.CANCELLED])
def test_a_finished_plan_message_shrinks_to_its_outcome(status: IntentStatus) -> None:
    """Once final, the message has no checklist and no approval line: a handful of blocks."""
    intent = make_intent(status, status_reason=f"{status.value} by U0SECOND: because")
    steps = [CREATED, AVAILABLE] if status is IntentStatus.SUCCEEDED else []
    blocks = plan_payload(make_view(intent, steps, [approval(intent, APPROVER)]))["blocks"]
    assert len(blocks) <= 5
    assert "*Progress*" not in json.dumps(blocks) and "Needs" not in json.dumps(blocks)


def test_succeeded_plan_says_what_it_created_and_offers_undo_only() -> None:
    """A succeeded intent names what it created, who approved it, and offers undoing (a menu) and the full plan."""
    intent = make_intent(IntentStatus.SUCCEEDED, status_reason="all steps done and postconditions verified")
    view = make_view(intent, [CREATED, AVAILABLE], [approval(intent, APPROVER)])
    assert Action.COMPENSATE in view.guidance.action_names
    payload = plan_payload(view)
    outcome = block_text(payload["blocks"][2])
    assert outcome.startswith("Created RDS instance billing-db-r1")
    assert action_ids(payload["blocks"]) == [ActionId.COMPENSATE, ActionId.VIEW_PLAN]
    assert f"Approved by <@{APPROVER}>" in block_text(payload["blocks"][-1])
    assert_golden("plan_succeeded", payload)


def test_denied_plan_shows_who_denied_it_and_why() -> None:
    """A denied intent names who denied it and why, and offers only the full plan."""
    intent = make_intent(IntentStatus.DENIED, status_reason="denied by U0APPROVER: wrong instance class")
    denial = approval(intent, APPROVER, Decision.DENY, "wrong instance class")
    payload = plan_payload(make_view(intent, approvals=[denial]))
    assert action_ids(payload["blocks"]) == [ActionId.VIEW_PLAN]
    assert f"<@{APPROVER}> denied: wrong instance class" in block_text(payload["blocks"][2])
    assert_golden("plan_denied", payload)


# buttons -----------------------------------------------------------------------------------------


def every_button_status() -> list[tuple[IntentStatus, list[dict[str, Any]]]]:
    """The buttons of the plan message and of the verdict, for every status, on a high-risk plan."""
    out = []
    for status in IntentStatus:
        intent = make_intent(status, plan=plan_dict(risk="high"))
        view = make_view(intent, [CREATED])
        out.append((status, render_plan_message(view, SPEC.summary, Risk.HIGH)))
        out.append((status, render_verdict(view)[1]))
    return out


def test_every_button_carries_the_intent_version_and_plan_hash() -> None:
    """Button and menu values decode to the intent id, full plan hash and version the message showed."""
    for status, blocks in every_button_status():
        intent = make_intent(status, plan=plan_dict(risk="high"))
        for element in all_elements(blocks):
            values = [element["value"]] if "value" in element else [o["value"] for o in element["options"]]
            for raw in values:
                value = button_value(raw)
                assert (value.intent_id, value.plan_hash, value.version) == (intent.id, intent.plan_hash, 3)


def test_every_button_has_an_accessibility_label_naming_the_change() -> None:
    """Each button says to a screen reader what it does and to which change, within Slack's 75 characters."""
    buttons = [e for _, blocks in every_button_status() for e in all_elements(blocks) if e["type"] == "button"]
    assert {e["action_id"] for e in buttons} >= {
        ActionId.APPROVE,
        ActionId.DENY,
        ActionId.RETRY,
        ActionId.CANCEL,
        ActionId.VIEW_PLAN,
    }
    for element in buttons:
        label = element["accessibility_label"]
        assert 0 < len(label) <= 75 and "billing-db-r1 in prod" in label, label
        assert label.startswith(element["text"]["text"]), "a screen reader hears the words the button shows first"


def test_the_undo_buttons_accessibility_label_starts_with_its_visible_text() -> None:
    """A screen reader (and voice control) hears the words the button shows: "Undo: delete RDS instance …"."""
    intent = make_intent(IntentStatus.FAILED, status_reason=FAILED_REASON)
    [undo] = [e for e in all_elements(render_verdict(make_view(intent, [CREATED, BROKEN]))[1]) if "Undo" in str(e)]
    assert undo["accessibility_label"].startswith(undo["text"]["text"])


def test_an_accessibility_label_is_cut_to_75_characters() -> None:
    """A long workflow name and environment still leave a label Slack accepts."""
    intent = make_intent(IntentStatus.FAILED, environment="e" * 200, workflow="w" * 200)
    for blocks in (
        render_verdict(make_view(intent, [CREATED, BROKEN]))[1],
        render_plan_message(make_view(intent, [CREATED, BROKEN]), SPEC.summary, Risk.LOW),
    ):
        for element in all_elements(blocks):
            assert len(element["accessibility_label"]) <= 75


def test_cancel_always_asks_to_confirm_and_says_nothing_is_undone() -> None:
    """Wherever Cancel is offered, it stands behind a dialog naming the change and the consequence."""
    cancels = [
        e for _, blocks in every_button_status() for e in all_elements(blocks) if e["action_id"] == ActionId.CANCEL
    ]
    assert cancels
    for cancel in cancels:
        text = cancel["confirm"]["text"]["text"]
        assert "Cancel the change to RDS instance billing-db-r1 in prod?" in text
        assert "Nothing already changed is undone" in text
        assert "3f07746b015d" not in text  # a consequence, not a plan hash


def test_retry_asks_to_confirm_in_production_only() -> None:
    """Retry in a production environment goes through a dialog saying the failed step runs again; elsewhere not."""
    intent = make_intent(IntentStatus.FAILED, status_reason=FAILED_REASON)
    view = make_view(intent, [CREATED, BROKEN])
    for production, confirmed in ((True, True), (False, False)):
        blocks = render_verdict(dataclasses.replace(view, production=production))[1]
        [retry] = [e for e in all_elements(blocks) if e["action_id"] == ActionId.RETRY]
        assert ("confirm" in retry) is confirmed
    [retry] = [e for e in all_elements(render_verdict(view)[1]) if e["action_id"] == ActionId.RETRY]
    text = retry["confirm"]["text"]["text"]
    assert text.startswith("The failed step runs again now, in prod: Create RDS instance billing-db-r1.")
    assert "steps already done are not repeated" in text


def test_compensate_is_labelled_by_its_effect() -> None:
    """The Compensate button says what undoing does, and its dialog says it is only proposed, to be approved."""
    intent = make_intent(IntentStatus.FAILED, status_reason=FAILED_REASON)
    assert undo_label(intent) == "Undo: delete RDS instance billing-db-r1"
    [undo] = [e for e in all_elements(render_verdict(make_view(intent, [CREATED, BROKEN]))[1]) if "confirm" in e][-1:]
    assert undo["action_id"] == ActionId.COMPENSATE and undo["text"]["text"] == undo_label(intent)
    assert undo["style"] == "danger"
    text = undo["confirm"]["text"]["text"]
    assert text.startswith("Proposes a plan to delete RDS instance billing-db-r1 in prod")
    assert "runs only once approved" in text


def test_undo_after_a_success_is_a_menu_item_labelled_by_its_effect() -> None:
    """A succeeded intent offers compensation as a menu item named by its effect, behind a confirmation."""
    intent = make_intent(IntentStatus.SUCCEEDED, status_reason="all steps done and postconditions verified")
    menu, _ = all_elements(plan_payload(make_view(intent, [CREATED, AVAILABLE]))["blocks"])
    assert menu["type"] == "overflow" and menu["action_id"] == ActionId.COMPENSATE
    [option] = menu["options"]
    assert option["text"]["text"] == "Undo: delete RDS instance billing-db-r1" and len(option["value"]) <= 150
    assert button_value(option["value"]).plan_hash == intent.plan_hash
    assert "runs only once approved" in menu["confirm"]["text"]["text"]


def test_every_action_and_status_has_a_rendering() -> None:
    """Each guidance action maps to an action id and a label; each status has a human label."""
    assert set(ACTION_IDS) == set(Action) - {Action.VIEW} == set(ACTION_LABELS)  # request: an expired one's again
    assert all(status_label(s) != s.value for s in IntentStatus)


# the verdict: the one thread post, for a human ---------------------------------------------------

NEEDS_A_HUMAN = ["*What you can do now*", "*What is uncertain*", "*What changed*"]


def section_heads(blocks: list[dict[str, Any]]) -> list[str]:
    """The bold first line of each section, in order."""
    return [block_text(b).split("\n", 1)[0] for b in blocks if b["type"] == "section"]


def one_line(blocks: list[dict[str, Any]]) -> str:
    """The text of a post that is one line (and at most a footer naming the change): nothing to click."""
    [line] = [b for b in blocks if b["type"] == "section"]
    assert all(b["type"] in ("section", "context") for b in blocks) and len(blocks) <= 2
    text = block_text(line)
    assert "\n" not in text
    footers = [block_text(b) for b in blocks if b["type"] == "context"]
    assert all("billing-db-r1" in f for f in footers)  # a footer, if any, names the change
    return text


def failed_on_quota() -> tuple[IntentView, AuditEvent]:
    """Creating the replica failed for good on the account's quota; the adapter said what to do."""
    intent = make_intent(IntentStatus.FAILED, status_reason=QUOTA_REASON, last_error=QUOTA_REASON)
    step = make_step(1, "create_replica", StepStatus.FAILED, finished_at=T0 + timedelta(minutes=6), error=QUOTA_REASON)
    entry = make_event(
        8,
        "step_failed",
        "executor-7f3a",
        {"from": "running", "to": "failed", "reason": QUOTA_REASON, "guidance": QUOTA_ADVICE},
    )
    return make_view(intent, [step], [approval(intent, APPROVER)], [entry]), entry


def test_a_failed_verdict_says_what_to_do_first_with_the_adapters_advice() -> None:
    """What you can do now (the advice first), then what is uncertain, then what changed; everyone involved pinged."""
    view, entry = failed_on_quota()
    payload = verdict_payload(view, entry)
    blocks = payload["blocks"]
    head = block_text(blocks[0])
    assert head.startswith(f"<@{REQUESTER}> <@{APPROVER}> :x: *Failed*") and "InstanceQuotaExceeded" in head
    assert section_heads(blocks)[1:] == NEEDS_A_HUMAN
    todo = block_text(blocks[1]).splitlines()
    assert todo[1] == f":bulb: {QUOTA_ADVICE}"  # before the generic actions
    assert todo[2].startswith("• *Retry* —")
    assert "nothing: every recorded step has an observed outcome" in block_text(blocks[2])  # a failure is certain
    assert "nothing has been changed" in block_text(blocks[3])
    assert action_ids(blocks) == [ActionId.RETRY, ActionId.CANCEL, ActionId.MARK_DONE]
    assert_golden("verdict_failed", payload)


def test_a_failed_verdict_offers_undoing_what_was_created() -> None:
    """When a step had already changed something, What changed names it and Undo is offered."""
    intent = make_intent(IntentStatus.FAILED, status_reason=FAILED_REASON)
    blocks = verdict_payload(make_view(intent, [CREATED, BROKEN], [approval(intent, APPROVER)]))["blocks"]
    assert section_heads(blocks)[1:] == NEEDS_A_HUMAN
    assert "create the read replica (create_replica): done (replica_id=billing-db-r1" in block_text(blocks[3])
    assert action_ids(blocks) == [ActionId.RETRY, ActionId.CANCEL, ActionId.MARK_DONE, ActionId.COMPENSATE]


def test_an_unknown_verdict_never_claims_nothing_changed() -> None:
    """An unknown outcome names the uncertain step, says nothing is confirmed, and offers Resume, Cancel, Mark done."""
    intent = make_intent(IntentStatus.UNKNOWN, status_reason="create_replica: outcome unknown after 2 attempts")
    entry = make_event(
        6,
        "step_unknown",
        "reconciler",
        {"from": "running", "to": "unknown", "step": "create_replica", "reason": "executor lease expired mid-step"},
    )
    view = make_view(intent, [STEPS["unknown"]], [approval(intent, APPROVER)], [entry])
    payload = verdict_payload(view, entry)
    blocks = payload["blocks"]
    assert block_text(blocks[0]).startswith(f"<@{REQUESTER}> <@{APPROVER}> :grey_question: *Step outcome unknown*")
    assert section_heads(blocks)[1:] == NEEDS_A_HUMAN
    assert "create the read replica (create_replica): outcome not yet observed" in block_text(blocks[2])
    assert "nothing confirmed" in block_text(blocks[3])
    assert "nothing has been changed" not in json.dumps(payload)
    assert action_ids(blocks) == [ActionId.RESUME, ActionId.CANCEL, ActionId.MARK_DONE]
    assert_golden("verdict_unknown", payload)


def test_a_succeeded_verdict_lists_what_it_created() -> None:
    """Success names what was created, with its ids, pings who asked and approved, and offers only undoing."""
    intent = make_intent(IntentStatus.SUCCEEDED, status_reason="all steps done and postconditions verified")
    entry = make_event(9, "succeeded", "executor-7f3a", {"from": "running", "to": "succeeded"})
    view = make_view(intent, [CREATED, AVAILABLE], [approval(intent, APPROVER)], [entry])
    payload = verdict_payload(view, entry)
    blocks = payload["blocks"]
    head = block_text(blocks[0])
    assert head.startswith(f"<@{REQUESTER}> <@{APPROVER}> :large_green_circle: *Succeeded*")
    assert "created RDS instance billing-db-r1" in head
    changed = block_text(blocks[1])
    assert changed.startswith("*What changed*\n• created RDS instance billing-db-r1") and "replica_id" in changed
    assert [b["type"] for b in blocks if b["type"] != "context"] == ["section", "section", "actions"]
    assert action_ids(blocks) == [ActionId.COMPENSATE]
    assert_golden("verdict_succeeded", payload)


def test_a_denied_verdict_is_one_line_with_who_and_why() -> None:
    """A denial is one line: the requester pinged, who denied it and the reason; nothing to click."""
    intent = make_intent(IntentStatus.DENIED, status_reason="denied by U0APPROVER: wrong instance class")
    entry = make_event(
        3,
        "denied",
        APPROVER,
        {"from": "pending_approval", "to": "denied", "reason": "denied by U0APPROVER: wrong instance class"},
    )
    denial = approval(intent, APPROVER, Decision.DENY, "wrong instance class")
    payload = verdict_payload(make_view(intent, approvals=[denial], events=[entry]), entry)
    text = one_line(payload["blocks"])
    assert text.startswith(f"<@{REQUESTER}> :no_entry: *Denied* by <@{APPROVER}>") and "wrong instance class" in text
    assert_golden("verdict_denied", payload)


def test_a_cancelled_verdict_is_one_line() -> None:
    """A cancellation is one line naming who cancelled it and why."""
    intent = make_intent(IntentStatus.CANCELLED, status_reason="cancelled by U0SECOND: not needed any more")
    entry = make_event(
        4, "cancelled", SECOND, {"from": "pending_approval", "to": "cancelled", "reason": "not needed any more"}
    )
    payload = verdict_payload(make_view(intent, events=[entry]), entry)
    text = one_line(payload["blocks"])
    assert text.startswith(f"<@{REQUESTER}> :heavy_multiplication_x: *Cancelled* by <@{SECOND}>")
    assert "not needed any more" in text
    assert_golden("verdict_cancelled", payload)


def test_a_verdict_while_waiting_for_a_lock_says_who_holds_it() -> None:
    """Waiting behind another intent: what holds it, that it starts by itself, and Cancel."""
    reason = (
        "waiting for rds:billing-db-r1, held by intent 01HZX3K5V8R2M4N6P8Q0S2T4W9 "
        "(rds.resize, requested by @U0SECOND, running)"
    )
    intent = make_intent(IntentStatus.WAITING, status_reason=reason)
    entry = make_event(
        4,
        "waiting_for_lock",
        "executor-7f3a",
        {"from": "approved", "to": "waiting", "reason": reason, "holder": "01HZX3K5V8R2M4N6P8Q0S2T4W9"},
    )
    payload = verdict_payload(make_view(intent, approvals=[approval(intent, APPROVER)], events=[entry]), entry)
    blocks = payload["blocks"]
    head = block_text(blocks[0])
    assert head.startswith(f"<@{REQUESTER}> <@{APPROVER}> :lock: *Waiting for a resource another intent holds*")
    assert "01HZX3K5V8R2M4N6P8Q0S2T4W9" in head
    assert section_heads(blocks)[1:] == NEEDS_A_HUMAN
    assert "nothing has been changed" in block_text(blocks[3])
    assert action_ids(blocks) == [ActionId.CANCEL]
    assert_golden("verdict_waiting_for_lock", payload)


def test_a_verdict_for_a_stale_plan_asks_to_approve_the_new_plan() -> None:
    """The world changed before anything ran: the post says so and offers Approve and Deny of the new plan."""
    reason = "the observed state changed since the plan was approved; review the new plan and approve again"
    intent = make_intent(IntentStatus.NEEDS_REAPPROVAL, status_reason=reason)
    entry = make_event(
        5,
        "stale_plan",
        "executor-7f3a",
        {"from": "running", "to": "needs_reapproval", "reason": reason, "new_plan_hash": "b" * 64},
    )
    payload = verdict_payload(make_view(intent, approvals=[approval(intent, APPROVER)], events=[entry]), entry)
    blocks = payload["blocks"]
    assert block_text(blocks[0]).startswith(
        f"<@{REQUESTER}> <@{APPROVER}> :warning: *The plan is stale; approve the new plan*"
    )
    assert section_heads(blocks)[1:] == NEEDS_A_HUMAN
    assert "*Approve* —" in block_text(blocks[1])
    assert action_ids(blocks) == [ActionId.APPROVE, ActionId.DENY, ActionId.RETRY, ActionId.CANCEL, ActionId.MARK_DONE]
    assert_golden("verdict_stale_plan", payload)


def test_a_verdict_without_its_entry_event_is_titled_by_the_status() -> None:
    """Rendered on its own (a re-projection), a verdict falls back to the status badge and still offers the actions."""
    intent = make_intent(IntentStatus.BLOCKED, status_reason="await_available did not converge in 1 h")
    blocks = render_verdict(make_view(intent, [CREATED]))[1]
    assert ":octagonal_sign: *Blocked* — await_available did not converge in 1 h" in block_text(blocks[0])
    assert ActionId.RESUME in action_ids(blocks)


@pytest.mark.parametrize("kind", ["approval_refused", "action_refused", "deny_refused", "request_refused"])
def test_a_refusal_is_never_named_in_the_thread(kind: str) -> None:
    """A refusal is answered privately and kept in the audit log; a post never names who was refused."""
    assert kind not in NOTABLE_KINDS
    intent = make_intent(IntentStatus.FAILED, status_reason=FAILED_REASON)
    refusal = make_event(9, kind, SECOND, {"reason": "you may not approve your own request"})
    text, blocks = render_verdict(make_view(intent, [CREATED, BROKEN], events=[refusal]), refusal)
    assert SECOND not in json.dumps(blocks) + text
    assert "your own request" not in json.dumps(blocks) + text


def test_a_superseded_post_loses_its_buttons_and_says_why() -> None:
    """Once the intent moved on, an earlier post keeps its words, loses every actions block, and gains a note."""
    view, entry = failed_on_quota()
    payload = verdict_payload(view, entry)
    over = superseded(payload)
    assert validate_blocks(over["blocks"], "message") == []
    assert over["text"] == payload["text"]
    assert not [b for b in over["blocks"] if b["type"] == "actions"]
    kept = [b for b in payload["blocks"] if b["type"] != "actions"]
    assert over["blocks"][:-1] == kept
    assert over["blocks"][-1]["type"] == "context" and "Superseded" in block_text(over["blocks"][-1])


# notification text -------------------------------------------------------------------------------


def test_the_notification_text_names_the_change_and_its_target_in_plain_words() -> None:
    """All a push notification shows: status, action and target, environment; no mrkdwn marks to show raw."""
    reason = "create_replica: `ReadTimeout` *twice*"
    text = plan_fallback_text(make_view(make_intent(IntentStatus.FAILED, status_reason=reason)))
    assert text.startswith("Failed: Create RDS instance billing-db-r1 in prod")
    assert "create_replica: ReadTimeout twice" in text  # ids keep their underscores
    assert not set("*`~") & set(text)


def test_a_pending_notification_says_who_must_approve() -> None:
    """A pending plan's notification says how many approvals it needs, and from which role."""
    text = plan_fallback_text(pending_view())
    assert text == "Pending approval: Create RDS instance billing-db-r1 in prod — needs 1 approval from dba-lead"


@pytest.mark.parametrize("status", list(IntentStatus))
def test_every_notification_text_is_plain_and_names_the_target(status: IntentStatus) -> None:
    """The plan message's and the verdict's notification texts name billing-db-r1 and carry no `*`, backtick or `~`."""
    reason = "step `create_replica` ~failed~ *twice*"
    intent = make_intent(status, status_reason=reason)
    view = make_view(intent, [CREATED, BROKEN], [approval(intent, APPROVER)])
    entry = make_event(8, "step_failed", "executor", {"reason": reason, "guidance": "see *the* `console`"})
    for text in (plan_fallback_text(view), render_verdict(view, entry)[0]):
        assert "billing-db-r1" in text
        assert not set("*`~") & set(text), text


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
    """The home tab names each waiting change in plain words and offers Review and approve (the plan) and Deny."""
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
    assert action_ids(view["blocks"]) == [ActionId.REVIEW, ActionId.DENY]
    review = all_elements(view["blocks"])[0]
    assert review["text"]["text"] == "Review and approve" and "confirm" not in review
    assert "Create RDS instance billing-db-r1" in json.dumps(view)
    assert_golden("home", view)


def test_request_modal_is_generated_from_the_input_model() -> None:
    """One input per field of CreateReplicaParams, with hints, defaults, an environment select and a "Plan it"."""
    view = render_request_modal(SPEC, ["prod", "staging"], META)
    assert validate_view(view, "modal") == []
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert list(inputs) == ["env", "source", "replica", "instance_class", "max_lag_seconds"]
    assert inputs["instance_class"]["optional"] is True
    assert inputs["instance_class"]["element"]["initial_value"] == "db.t3.medium"
    assert ModalMeta.decode(view["private_metadata"]) == META
    assert view["submit"]["text"] == "Plan it"
    assert_golden("request_modal", view)


DENY_HINT = "Required. Say why, so the requester knows what to change; the thread and the audit log keep it."


@pytest.mark.parametrize(
    ("name", "title", "submit", "hint", "callback"),
    [
        ("deny", "Deny this plan", "Deny", DENY_HINT, CallbackId.DENY_MODAL),  # as bot.surface opens them
        ("mark_done", "Mark done by hand", "Mark done", None, CallbackId.REASON_MODAL),
    ],
)
def test_reason_modal(name: str, title: str, submit: str, hint: str | None, callback: CallbackId) -> None:
    """Deny and mark done require a reason, and their submit button says what it does."""
    meta = ModalMeta(action=name, channel="C0OPS0001", intent_id=INTENT_ID, plan_hash="a" * 64, version=3)
    view = render_reason_modal(title, meta, True, callback_id=callback, submit=submit, hint=hint)
    assert validate_view(view, "modal") == []
    assert view["callback_id"] == callback and view["submit"]["text"] == submit
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert "optional" not in field and field["element"]["min_length"] == 1
    assert_golden(f"reason_modal_{name}", view)


def test_an_optional_reason_may_be_left_blank() -> None:
    """A reason form that does not require one says so and accepts an empty field."""
    meta = ModalMeta(action="cancel", channel="C0OPS0001", intent_id=INTENT_ID, plan_hash="a" * 64, version=3)
    view = render_reason_modal("Cancel", meta, False, callback_id=CallbackId.REASON_MODAL)
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["optional"] is True and "min_length" not in field["element"]
    assert field["hint"]["text"].startswith("Optional.")


# limits under huge inputs ------------------------------------------------------------------------


def huge_plan(filler: str) -> dict[str, Any]:
    return plan_dict(
        workflow="w" * 500,
        targets=[f"rds:{i}-{filler}" for i in range(80)],
        locks=[filler] * 80,
        conflicts=[filler] * 80,
        mutations=[{"action": filler, "target": f"rds:{filler}", "detail": filler} for _ in range(80)],
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
        requester="U" + "R" * 500,
        status_reason=filler,
        last_error=filler,
        params={f"p{i}": filler for i in range(40)},
    )
    steps = [
        make_step(
            i,
            f"step_{i}_{'s' * 300}",
            list(StepStatus)[i % 5],
            attempts=i,
            error=filler,
            external_ids={f"k{j}": filler for j in range(20)},
            output={"observed": {f"o{j}": filler for j in range(30)}},
        )
        for i in range(1, 81)
    ]
    approvals = [approval(intent, f"U{i:010d}", Decision(["approve", "deny"][i % 2]), filler) for i in range(60)]
    events = [make_event(i, "step_failed", "a" * 500, {"reason": filler, "guidance": filler}) for i in range(1, 4)]
    return make_view(
        intent,
        steps,
        approvals,
        events,
        needed=3,
        approver_roles=tuple(f"{filler}-{i}" for i in range(40)),
        steps_planned=tuple((f"step_{i}_{'s' * 300}", filler) for i in range(1, 101)),
    )


@pytest.mark.parametrize("status", list(IntentStatus))
@pytest.mark.parametrize("risk", list(Risk))
@pytest.mark.parametrize("filler", [HUGE, WORDS], ids=["token", "words"])
def test_plan_message_fits_slack_limits_with_huge_inputs(status: IntentStatus, risk: Risk, filler: str) -> None:
    """A 500-character workflow name, 10,000-character reasons and 100 planned steps still give a valid message."""
    view = huge_view(status, filler)
    valid_message(plan_fallback_text(view), render_plan_message(view, filler, risk))
    valid_message(*render_verdict(view))
    for approve in (True, False):
        assert validate_view(render_plan_modal(view, filler, risk, approve=approve, channel="C0OPS0001"), "modal") == []


@pytest.mark.parametrize("filler", [HUGE, WORDS], ids=["token", "words"])
def test_verdicts_fit_slack_limits_with_huge_inputs(filler: str) -> None:
    """Every notable entry kind, in every status that tells people, stays valid with huge reasons and advice."""
    data = {
        "reason": filler,
        "why": filler,
        "step": filler,
        "guidance": filler,
        "attempt": filler,
        "lease_owner": filler,
        "unknown_steps": [filler] * 80,
        "new_plan_hash": filler,
        "external_ids": {f"s{i}": {"id": filler} for i in range(80)},
    }
    for status in (s for s in IntentStatus if s.tells):
        view = huge_view(status, filler)
        for kind in sorted(NOTABLE_KINDS):
            text, blocks = render_verdict(view, make_event(1, kind, "a" * 500, data))
            valid_message(text, blocks)
            over = superseded({"text": text, "blocks": blocks})
            valid_message(over["text"], over["blocks"])


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
    assert validate_view(render_request_modal(spec, envs, META, tickets=filler), "modal") == []
    meta = ModalMeta(
        action="a" * 40, channel="c" * 40, intent_id="i" * 40, plan_hash="h" * 64, version=10**9, workflow="w" * 100
    )
    reason = render_reason_modal("t" * 500, meta, True, callback_id=CallbackId.REASON_MODAL, submit="s" * 500)
    assert validate_view(reason, "modal") == []


# secrets -----------------------------------------------------------------------------------------


def test_no_renderer_output_contains_a_secret() -> None:
    """A DSN with a password in reasons, errors, advice, ids, params and defaults is masked in every payload."""
    plan = plan_dict(
        blast_radius=SECRET_DSN,
        mutations=[{"action": "create", "target": "r", "detail": SECRET_DSN}],
        params={"source": SECRET_DSN, "password": CANARY},
        locks=[SECRET_DSN],
        verification=[SECRET_DSN],
        rollback_limits=SECRET_DSN,
    )
    data = {"reason": SECRET_DSN, "why": SECRET_DSN, "guidance": SECRET_DSN, "external_ids": {"a": {"dsn": SECRET_DSN}}}
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
        events = [make_event(1, "step_failed", APPROVER, data)]
        view = make_view(intent, steps, [approval(intent, APPROVER, Decision.DENY, f"no: {SECRET_DSN}")], events)
        outputs += [render_plan_message(view, SECRET_DSN, Risk.HIGH), plan_fallback_text(view), checklist(view)]
        outputs.append(render_plan_modal(view, SECRET_DSN, Risk.HIGH, approve=True))
        outputs += [render_verdict(view, make_event(1, kind, APPROVER, data)) for kind in sorted(NOTABLE_KINDS)]
        outputs.append(render_home(APPROVER, [intent], [intent], T0))
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
        step = dataclasses.replace(BROKEN, error=text, output={"observed": {"why": text}})
        entry = make_event(1, "step_failed", "executor", {"reason": text, "guidance": text})
        view = make_view(intent, [CREATED, step], [approval(intent, APPROVER, Decision.DENY, text)], [entry])
        rendered = [
            render_plan_message(view, text, Risk.LOW),
            plan_fallback_text(view),
            render_verdict(view, entry),
            checklist(view),
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


def test_only_the_people_of_an_intent_become_mentions_in_its_reasons() -> None:
    """A reason's raw id of someone who acted becomes a mention; a word like UNAVAILABLE, or an id someone typed
    into a reason, stays text (a reason cannot ping anyone)."""
    reason = f"cancelled by {SECOND}: gRPC UNAVAILABLE, ask U0STRANGER01"
    intent = make_intent(IntentStatus.CANCELLED, status_reason=reason)
    entry = make_event(4, "cancelled", SECOND, {"from": "failed", "to": "cancelled", "reason": reason})
    first = block_text(verdict_payload(make_view(intent, events=[entry]), entry)["blocks"][0])
    assert f"by <@{SECOND}>" in first and "gRPC UNAVAILABLE, ask U0STRANGER01" in first
    assert "<@UNAVAILABLE>" not in first and "<@U0STRANGER01>" not in first


def test_advice_comes_from_the_current_stop_not_an_earlier_one() -> None:
    """The advice given for a failure already retried does not lead the post of the next stop."""
    intent = make_intent(IntentStatus.UNKNOWN, status_reason="create_replica: outcome unknown")
    old = make_event(3, "step_failed", "executor", {"from": "running", "to": "failed", "guidance": "raise the quota"})
    entry = make_event(6, "step_unknown", "executor", {"from": "running", "to": "unknown"})
    blocks = verdict_payload(make_view(intent, [STEPS["unknown"]], events=[old, entry]), entry)["blocks"]
    assert "raise the quota" not in json.dumps(blocks)


def test_an_unknown_outcome_keeps_the_changes_already_confirmed() -> None:
    """One step done, the next unknown: what changed names the done one; nothing is hidden behind the unknown."""
    intent = make_intent(IntentStatus.UNKNOWN, status_reason="await_available: outcome unknown")
    unknown = dataclasses.replace(STEPS["unknown"], seq=2, name="await_available")
    blocks = verdict_payload(make_view(intent, [CREATED, unknown]))["blocks"]
    [changed] = [block_text(b) for b in blocks if block_text(b).startswith("*What changed*")]
    assert "billing-db-r1" in changed and "nothing" not in changed
