"""Maintenance windows over the fake Slack: the plan message and thread say when a scheduled intent runs (counted
from the injected clock), Run now is an approver's button, and the intent starts by itself when its window opens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.ids import ActionId
from tests.conftest import create_source
from tests.slack_harness import APPROVER, APPROVER2, INCIDENT, OUTSIDER, REQUESTER, Bench, served, wait_until
from tests.test_slack_e2e import button_ids, click, plan
from workflows.model import IntentStatus
from workflows.runtime import FrozenClock

SATURDAY_EVENING = datetime(2026, 1, 3, 20, 48, tzinfo=UTC)  # 5 h 12 min before the window opens
OPENS = datetime(2026, 1, 4, 2, 0, tzinfo=UTC)
WINDOWED: dict[str, Any] = {
    "environments": {
        "prod": {
            "aws_region": "us-east-1",
            "incident_channel": INCIDENT,
            "maintenance_windows": [{"days": ["sun"], "start": "02:00", "end": "04:00", "timezone": "UTC"}],
        }
    },
    "policies": {
        "rds.create-replica": {
            "request": ["dba"],
            "approve": ["dba-lead"],
            "approvals": 1,
            "scheduled_approval_ttl_hours": 12,
        }
    },
}
SAYS = "runs in the window Sun 02:00-04:00 UTC, in 5 h 12 min"


@pytest.fixture
def windowed(tmp_path: Path, sqlite_url: str, aws: str) -> Iterator[tuple[Bench, FrozenClock]]:
    create_source(aws)
    clock = FrozenClock(SATURDAY_EVENING)
    with served(tmp_path, sqlite_url, aws, config_overrides=WINDOWED, clock=clock) as b:
        yield b, clock


def shown(b: Bench, intent_id: str) -> str:
    return str(b.parent(intent_id).blocks)


def thread(b: Bench, intent_id: str) -> str:
    return " ".join(m.text + str(m.blocks) for m in b.replies(intent_id))


def test_the_plan_message_and_thread_say_when_it_runs_and_it_starts_when_the_window_opens(
    windowed: tuple[Bench, FrozenClock],
) -> None:
    """Before approval the plan says when it would run; approved, it is scheduled with Run now and Cancel; nothing
    runs until 02:00; then it starts by itself and the thread tells it."""
    b, clock = windowed
    intent_id = plan(b)
    assert f"*Once approved:* {SAYS}" in shown(b, intent_id)

    click(b, intent_id, ActionId.APPROVE, APPROVER)
    b.settle()
    assert b.status(intent_id) is IntentStatus.SCHEDULED
    assert f"*Scheduled:* {SAYS}" in shown(b, intent_id)
    assert button_ids(b.parent(intent_id).blocks) == {
        ActionId.RUN_NOW.value,
        ActionId.CANCEL.value,
        ActionId.VIEW_PLAN.value,
    }
    assert not b.replies(intent_id), "waiting for its window needs nobody: the plan message says it, nothing is posted"
    assert any("scheduled" in t for t in b.ephemeral_texts(APPROVER))

    clock.advance((OPENS - clock.now()).total_seconds() - 1)
    b.services.reconciler.reconcile_due()
    b.settle()
    assert b.status(intent_id) is IntentStatus.SCHEDULED and ":white_check_mark: `create_replica`" not in shown(
        b, intent_id
    )

    clock.advance(1)
    b.services.reconciler.reconcile_due()
    b.settle()
    assert b.status(intent_id) is IntentStatus.SUCCEEDED
    opened = [e for e in b.services.ops.show(intent_id).events if e.kind == "window_opened"]
    assert opened and "the window Sun 02:00-04:00 UTC opened" in str(opened[0].data)
    assert "Created RDS instance billing-db-r1" in shown(b, intent_id), "the plan message shrank to the outcome"
    assert "Succeeded" in thread(b, intent_id)


def test_run_now_is_an_approvers_button_and_starts_it_outside_the_window(
    windowed: tuple[Bench, FrozenClock],
) -> None:
    """Someone without the approver role and the requester are refused ephemerally; an approver's click runs it."""
    b, clock = windowed
    intent_id = plan(b)
    click(b, intent_id, ActionId.APPROVE, APPROVER)
    b.settle()
    run_now = next(
        e
        for blk in b.parent(intent_id).blocks
        if blk.get("type") == "actions"
        for e in blk["elements"]
        if e.get("action_id") == ActionId.RUN_NOW.value
    )
    assert "confirm" in run_now, "Run now asks to confirm"

    click(b, intent_id, ActionId.RUN_NOW, OUTSIDER)
    wait_until(lambda: any("may not run-now" in t for t in b.ephemeral_texts(OUTSIDER)))
    click(b, intent_id, ActionId.RUN_NOW, REQUESTER)
    wait_until(lambda: any("someone else must run-now" in t for t in b.ephemeral_texts(REQUESTER)))
    b.settle()
    assert b.status(intent_id) is IntentStatus.SCHEDULED

    click(b, intent_id, ActionId.RUN_NOW, APPROVER2)
    b.settle()
    assert b.status(intent_id) is IntentStatus.SUCCEEDED
    assert clock.now() < OPENS - timedelta(hours=5)
    assert [e.actor for e in b.services.ops.show(intent_id).events if e.kind == "run_now"] == [APPROVER2]
