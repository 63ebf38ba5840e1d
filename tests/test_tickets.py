"""Change tickets: required per environment (or per policy there), checked in the ack, carried in the plan and its
hash, linked in the plan message, the verdict, the digest and `intents show`, and recorded in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.digest import build_digest
from bot.ids import ActionId, CallbackId
from opsbot.cli_render import intent_json
from tests.conftest import approve_current, create_source
from tests.slack_harness import APPROVER, OPS, REQUESTER, SLACK_CONFIG, Bench, served, wait_until
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.errors import ConfigError, InvalidInput
from workflows.executor import Executor
from workflows.model import IntentStatus
from workflows.service import OpsService
from workflows.tickets import check_ticket

WF = "rds.create-replica"
PARAMS = {"source": "billing-db", "replica": "billing-db-r1"}
RULE = {"pattern": r"^[A-Z]+-\d+$", "link": "https://jira.example.com/browse/{ticket}"}
TICKETED = {
    **SLACK_CONFIG,
    "environments": {
        "prod": {**SLACK_CONFIG["environments"]["prod"], "ticket": RULE},
        "lab": {"aws_region": "us-east-1", "production": False},
    },
}


def config(**env_policy: Any) -> Any:
    raw = {
        "environments": {"prod": {"ticket": RULE}, "lab": {"production": False}},
        "roles": {"dba": ["alice"], "dba-lead": ["bob"]},
        "policies": {WF: {"request": ["dba"], "approve": ["dba-lead"], "by_environment": env_policy}},
    }
    return parse_config(raw)


def test_the_rule_is_the_policys_for_the_environment_else_the_environments() -> None:
    plain = config()
    assert check_ticket(plain, WF, "lab", None) is None  # lab asks for none
    ticket = check_ticket(plain, WF, "prod", "OPS-123")
    assert ticket is not None and ticket.url == "https://jira.example.com/browse/OPS-123"
    with pytest.raises(InvalidInput, match=r"needs a change ticket: add ticket=<id> matching \^\[A-Z\]\+-\\d\+\$"):
        check_ticket(plain, WF, "prod", None)
    with pytest.raises(InvalidInput, match=r"'ops-1' does not match"):
        check_ticket(plain, WF, "prod", "ops-1")
    with pytest.raises(InvalidInput, match="no spaces"):
        check_ticket(plain, WF, "prod", "OPS-1; rm -rf /")
    loose = config(prod={"ticket": {"pattern": r"^CHG\d{7}$", "required": False}})
    assert check_ticket(loose, WF, "prod", None) is None
    chg = check_ticket(loose, WF, "prod", "CHG0001234")
    assert chg is not None and chg.url is None  # no link template: the id alone
    with pytest.raises(InvalidInput, match="does not match"):
        check_ticket(loose, WF, "prod", "OPS-123")  # the policy's rule replaces the environment's here


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"pattern": "[A-Z"}, "is not a regular expression"),
        ({"pattern": ".*", "link": "https://jira/browse/"}, "containing {ticket}"),
        ({"pattern": ".*", "link": "javascript:alert(1)//{ticket}"}, "must be an http(s) URL"),
    ],
)
def test_a_bad_rule_is_a_config_error(rule: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=r"environments\.prod\.ticket") as err:
        parse_config({"environments": {"prod": {"ticket": rule}}, "roles": {}, "policies": {}})
    assert expected in str(err.value)


@pytest.fixture
def ticketed(runtime: Runtime) -> Runtime:
    from dataclasses import replace

    return replace(runtime, config=parse_config({**TICKETED, "roles": {"dba": ["alice"], "dba-lead": ["bob"]}}))


def test_the_ticket_is_part_of_the_plan_its_hash_and_the_audit_log(ticketed: Runtime, aws: str) -> None:
    create_source(aws)
    ops = OpsService(ticketed)
    with pytest.raises(InvalidInput, match="needs a change ticket"):
        ops.request(WF, dict(PARAMS), "prod", "alice")
    assert ops.list() == []  # refused before anything was written
    first = ops.request(WF, {**PARAMS, "ticket": "OPS-1"}, "prod", "alice").intent
    second = ops.request(WF, {**PARAMS, "ticket": "OPS-2"}, "prod", "alice").intent
    assert first.id != second.id  # another ticket is another change
    assert first.plan["ticket"] == "OPS-1" and first.plan["ticket_url"] == "https://jira.example.com/browse/OPS-1"
    assert first.plan_hash != second.plan_hash  # the approval binds the ticket too
    with ticketed.store.transaction() as tx:
        [requested] = [e for e in tx.events(first.id) if e.kind == "requested"]
    assert requested.data["ticket"] == "OPS-1"
    assert intent_json(first)["ticket"] == {"id": "OPS-1", "url": "https://jira.example.com/browse/OPS-1"}
    lab = ops.request(WF, {**PARAMS, "replica": "billing-db-r9"}, "lab", "alice").intent
    assert "ticket" not in lab.plan or lab.plan["ticket"] is None


def test_a_new_plan_keeps_the_ticket(ticketed: Runtime, aws: str) -> None:
    """The world changed between approval and run: the plan offered for re-approval carries the same ticket."""
    from tests.conftest import rds_client

    create_source(aws)
    ops = OpsService(ticketed)
    intent = ops.request(WF, {**PARAMS, "ticket": "OPS-7"}, "prod", "alice").intent
    approve_current(ops, intent.id, "bob")
    rds_client(aws).modify_db_instance(
        DBInstanceIdentifier="billing-db", DBInstanceClass="db.r5.xlarge", ApplyImmediately=True
    )
    [stopped] = Executor(ticketed, "x").run_once()
    assert stopped.status is IntentStatus.NEEDS_REAPPROVAL, stopped.status_reason
    assert stopped.plan_hash != intent.plan_hash and stopped.plan["ticket"] == "OPS-7"


@pytest.fixture
def bench(tmp_path: Path, sqlite_url: str, aws: str) -> Iterator[Bench]:
    create_source(aws)
    with served(tmp_path, sqlite_url, aws, config_overrides=TICKETED) as b:
        yield b


def test_slack_refuses_a_missing_ticket_in_the_ack_and_links_a_given_one_everywhere(bench: Bench) -> None:
    base = "rds.create-replica source=billing-db replica=billing-db-r1 env=prod"
    ack = bench.driver.slash_command("/ops", base, user=REQUESTER, channel=OPS)
    assert ack.status == 200 and "needs a change ticket" in ack.json()["text"] and r"^[A-Z]+-\d+$" in ack.json()["text"]
    bad = bench.driver.slash_command("/ops", base + " ticket=later", user=REQUESTER, channel=OPS)
    assert "does not match" in bad.json()["text"]
    assert bench.services.ops.list() == []

    bench.driver.slash_command("/ops", base + " ticket=OPS-42", user=REQUESTER, channel=OPS)
    wait_until(lambda: len(bench.services.ops.list()) == 1)
    bench.settle()
    intent_id = bench.only_intent()
    linked = "<https://jira.example.com/browse/OPS-42|`OPS-42`>"
    assert linked in str(bench.parent(intent_id).blocks)

    digest = bench.services.runtime.config.digests[0]
    assert bench.services.slack is not None
    later = bench.services.runtime.clock.now() + timedelta(minutes=digest.stale_approval_minutes + 1)
    [item] = build_digest(bench.services.slack, digest, later).attention
    assert item.ticket == linked

    parent = bench.parent(intent_id)
    bench.driver.click(OPS, parent.ts, ActionId.APPROVE.value, user=APPROVER)
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.SUCCEEDED
    verdict = bench.replies(intent_id)[-1]
    assert f"change ticket {linked}" in str(verdict.blocks)


def test_the_request_form_asks_for_the_ticket(bench: Bench) -> None:
    bench.driver.slash_command("/ops", "rds.create-replica", user=REQUESTER, channel=OPS)
    wait_until(lambda: bench.fake.views(kind="modal"))
    view = bench.fake.views(kind="modal")[-1]
    assert view.payload["callback_id"] == CallbackId.REQUEST_MODAL.value
    [field] = [b for b in view.payload["blocks"] if b.get("block_id") == "ticket"]
    assert field["hint"]["text"] == r"prod: ^[A-Z]+-\d+$"
    values = {"source": {"value": "billing-db"}, "replica": {"value": "billing-db-r2"}, "env": {"value": "prod"}}
    refused = bench.driver.submit_view(view.id, values, user=REQUESTER)
    assert refused.json()["response_action"] == "errors" and "ticket" in refused.json()["errors"]
    bench.driver.submit_view(view.id, {**values, "ticket": {"value": "OPS-9"}}, user=REQUESTER)
    wait_until(lambda: len(bench.services.ops.list()) == 1)
    assert bench.services.ops.list()[0].plan["ticket"] == "OPS-9"
