"""A signed body that arrives twice (replayed inside the five-minute signature window, or retried by Slack with
`X-Slack-Retry-Num`) is answered and changes nothing the second time, whatever kind of request it is."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bot.ids import ActionId
from tests.conftest import create_source
from tests.slack_harness import APPROVER, OPS, REQUESTER, Bench, served, wait_until

FORM = "application/x-www-form-urlencoded"
REQUEST = "rds.create-replica source=billing-db replica=billing-db-r1 env=prod"


@pytest.fixture
def bench(tmp_path: Path, sqlite_url: str, aws: str) -> Any:
    create_source(aws)
    with served(tmp_path, sqlite_url, aws) as b:
        yield b


def _planned(b: Bench) -> str:
    b.driver.slash_command("/ops", REQUEST, user=REQUESTER, channel=OPS)
    wait_until(lambda: len(b.services.ops.list()) == 1)
    b.settle()
    return b.only_intent()


def test_a_command_replayed_after_its_intent_is_over_does_not_request_again(bench: Bench) -> None:
    """Byte for byte the same signed /ops, sent again once the first request was cancelled: still one intent."""
    stamp = int(time.time())
    first = bench.driver.slash_command("/ops", REQUEST, user=REQUESTER, channel=OPS, timestamp=stamp)
    wait_until(lambda: len(bench.services.ops.list()) == 1)
    bench.settle()
    bench.services.ops.cancel(bench.only_intent(), REQUESTER, "changed my mind")
    again = bench.driver.send("replay", first.request_body, FORM, timestamp=stamp)
    assert first.status == 200 and again.status == 200, (first, again)
    bench.settle()
    assert len(bench.services.ops.list()) == 1


def test_slack_retrying_a_click_changes_nothing_twice(bench: Bench) -> None:
    """Approve delivered twice: one approval, one answer to the approver, one execution."""
    intent_id = _planned(bench)
    click = bench.driver.click(OPS, bench.parent(intent_id).ts, ActionId.APPROVE.value, user=APPROVER)
    bench.settle()
    answers = len(bench.ephemeral_texts(APPROVER))
    retry = bench.driver.send("retry", click.request_body, FORM, headers={"X-Slack-Retry-Num": "1"})
    assert click.status == 200 and retry.status == 200, (click, retry)
    bench.settle()
    kinds = [e.kind for e in bench.services.ops.show(intent_id).events]
    assert kinds.count("approved") == 1, kinds
    assert len(bench.ephemeral_texts(APPROVER)) == answers


def test_an_event_delivered_twice_is_handled_once(bench: Bench) -> None:
    """Slack redelivers an event it thinks timed out: the App Home is published once."""
    first = bench.driver.app_home_opened(APPROVER)
    wait_until(lambda: len(bench.fake.calls_to("views.publish")) == 1)
    retry = bench.driver.send(
        "event retry",
        first.request_body,
        "application/json",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert first.status == 200 and retry.status == 200, (first, retry)
    bench.settle()
    assert len(bench.fake.calls_to("views.publish")) == 1
