"""Roles made of Slack user groups: members from the fake Slack over HTTP, intents in PostgreSQL, a clock the test
moves. A member approves; a removed member loses the role within the TTL; a silent Slack is trusted for a bounded
time, then refused; unknown groups, missing scopes and a CLI without Slack are refused clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from structlog.testing import capture_logs

from bot.ids import ActionId
from bot.usergroups import SlackGroupDirectory
from conformance import ScriptedAdapters, ScriptedWorld
from conformance.scripted_aws import add_instance
from fakeslack import FakeSlack, Workspace
from opsbot.settings import Settings
from opsbot.wiring import build_services, web_client
from opsbot.worker import start_worker
from store.sql import SqlStore
from tests.conftest import approve_current, create_source
from tests.slack_harness import APPROVER, GUEST, REQUESTER, served, wait_until
from tests.test_slack_e2e import click, plan
from workflows.catalog import build_registry
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.errors import ConfigError, PermissionDenied
from workflows.executor import Executor
from workflows.model import EventKind, IntentStatus
from workflows.reconciler import Reconciler
from workflows.runtime import FrozenClock
from workflows.service import OpsService

TOKEN = "xoxb-test-usergroups"
ALICE, BOB, CAROL, ERIN, MALLORY = "U0ALICE01", "U0BOB0001", "U0CAROL01", "U0ERIN001", "U0MALLORY"
USERS = {ALICE: "alice", BOB: "bob", CAROL: "carol", ERIN: "erin", MALLORY: "mallory"}
TTL, MAX_STALE = 60.0, 900.0
PARAMS = {"source": "billing-db", "replica": "billing-db-r1"}
CONFIG: dict[str, Any] = {
    "environments": {"prod": {"aws_region": "us-east-1"}},
    "roles": {"dba": [ALICE, CAROL], "dba-lead": [ERIN, "@dba-leads"]},
    "policies": {"rds.create-replica": {"request": ["dba"], "approve": ["dba-lead"], "approvals": 1}},
}
POSTGRES = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(TOKEN, "unused-signing-secret", users=USERS) as fake:
        fake.add_usergroup("@dba-leads", [BOB], name="DBA leads")
        yield fake


class Stack:
    """The engine on PostgreSQL over a scripted world, with roles resolved through the fake Slack."""

    def __init__(self, store: SqlStore, slack: FakeSlack, config: dict[str, Any] | None = None) -> None:
        self.clock, self.world, self.slack = FrozenClock(), ScriptedWorld(), slack
        add_instance(self.world, "billing-db")
        parsed = parse_config(config or CONFIG)
        settings = Settings(slack_bot_token=TOKEN, slack_api_url=slack.api_url, slack_timeout_seconds=2)
        self.groups = SlackGroupDirectory(
            web_client(settings), ttl=TTL, max_stale=MAX_STALE, clock=self.clock, groups=parsed.user_groups()
        )
        self.rt = Runtime(
            store=store,
            registry=build_registry(),
            config=parsed,
            adapters=ScriptedAdapters(self.world),
            clock=self.clock,
            groups=self.groups,
        )
        self.ops = OpsService(self.rt)

    def request(self, by: str = CAROL, replica: str = "billing-db-r1") -> str:
        params = {**PARAMS, "replica": replica}
        return self.ops.request("rds.create-replica", params, "prod", by).intent.id

    def run(self) -> None:
        Reconciler(self.rt).reconcile_due()
        Executor(self.rt, "test").run_until_idle()

    def status(self, intent_id: str) -> IntentStatus:
        return self.ops.get(intent_id).status

    def asked_slack(self) -> int:
        """How many times Slack was asked for a group's members."""
        return len(self.slack.calls_to("usergroups.users.list"))


@pytest.fixture
def stack(store: SqlStore, slack: FakeSlack) -> Stack:
    return Stack(store, slack)


def slack_goes_down(fake: FakeSlack) -> None:
    """Every Web API call answers 503 from now on."""
    fake.inject(status=503, times=None)


# --- a member approves ------------------------------------------------------------------------------------------


@POSTGRES
def test_a_member_of_the_group_can_approve_and_the_intent_runs(stack: Stack, slack: FakeSlack) -> None:
    """bob holds dba-lead through @dba-leads: his approval counts and the replica is created."""
    intent_id = stack.request()
    assert approve_current(stack.ops, intent_id, BOB).status is IntentStatus.APPROVED
    stack.run()
    assert stack.status(intent_id) is IntentStatus.SUCCEEDED
    group_id = slack.usergroup("@dba-leads").id
    assert [c.args.get("usergroup") for c in slack.calls_to("usergroups.users.list")] == [group_id]


@POSTGRES
def test_a_user_named_by_id_needs_no_answer_from_slack(stack: Stack, slack: FakeSlack) -> None:
    """erin is in dba-lead by her user id: her approval is decided without asking Slack, even when it is down."""
    slack_goes_down(slack)
    intent_id = stack.request()
    assert approve_current(stack.ops, intent_id, ERIN).status is IntentStatus.APPROVED
    assert stack.asked_slack() == 0


@POSTGRES
def test_a_group_named_by_its_id_works_like_its_handle(store: SqlStore, slack: FakeSlack) -> None:
    """A role may name a group by its S… id: a member of that group approves."""
    group_id = slack.add_usergroup("@platform-leads", [MALLORY])
    stack = Stack(store, slack, {**CONFIG, "roles": {**CONFIG["roles"], "dba-lead": [group_id]}})
    intent_id = stack.request()
    assert approve_current(stack.ops, intent_id, MALLORY).status is IntentStatus.APPROVED


@POSTGRES
def test_someone_outside_the_group_may_not_approve(stack: Stack) -> None:
    """mallory is in no group and no role: refused with the roles she would need, and audited."""
    intent_id = stack.request()
    with pytest.raises(PermissionDenied, match=f"{MALLORY} may not approve"):
        approve_current(stack.ops, intent_id, MALLORY)
    assert EventKind.APPROVAL_REFUSED in [e.kind for e in stack.ops.show(intent_id).events]


# --- removal takes effect within the TTL ------------------------------------------------------------------------


@POSTGRES
def test_someone_removed_from_the_group_loses_the_role_within_the_ttl(stack: Stack, slack: FakeSlack) -> None:
    """bob is taken out of @dba-leads: once the cached answer is a TTL old, his approval is refused."""
    approve_current(stack.ops, stack.request(), BOB)
    slack.set_usergroup_users("@dba-leads", [ERIN])
    stack.clock.advance(TTL)
    second = stack.request(by=ALICE, replica="billing-db-r2")
    with pytest.raises(PermissionDenied, match=f"{BOB} may not approve"):
        approve_current(stack.ops, second, BOB)
    assert stack.asked_slack() == 2


@POSTGRES
def test_the_background_refresh_brings_a_removal_sooner_without_a_check_waiting(stack: Stack, slack: FakeSlack) -> None:
    """The worker's refresh asks again at three quarters of the TTL, so the check finds the new members ready."""
    approve_current(stack.ops, stack.request(), BOB)
    slack.set_usergroup_users("@dba-leads", [ERIN])
    stack.clock.advance(TTL * 3 / 4)
    stack.groups.refresh()
    asked = stack.asked_slack()
    second = stack.request(by=ALICE, replica="billing-db-r2")
    with pytest.raises(PermissionDenied, match=f"{BOB} may not approve"):
        approve_current(stack.ops, second, BOB)
    assert stack.asked_slack() == asked == 2


@POSTGRES
def test_a_disabled_group_grants_nothing(stack: Stack, slack: FakeSlack) -> None:
    """An admin disables @dba-leads: after the TTL it is unknown to Slack's list, and its members are refused."""
    stack.groups.refresh()
    slack.disable_usergroup("@dba-leads")
    stack.clock.advance(TTL)
    with pytest.raises(PermissionDenied, match="Slack has no user group @dba-leads"):
        approve_current(stack.ops, stack.request(), BOB)


# --- Slack down: the last answer for a bounded time, then refused -------------------------------------------------


@POSTGRES
def test_while_slack_is_down_the_last_known_members_stand_until_the_bound(stack: Stack, slack: FakeSlack) -> None:
    """Slack answers 503: bob's last known membership counts for 15 min after Slack's last answer, then not."""
    stack.groups.refresh()
    slack_goes_down(slack)
    stack.clock.advance(TTL + 1)
    assert approve_current(stack.ops, stack.request(), BOB).status is IntentStatus.APPROVED
    stack.clock.advance(16 * 60 - TTL - 1)
    second = stack.request(by=ALICE, replica="billing-db-r2")
    refused = "cannot check membership of @dba-leads: Slack has not answered for 16 min; approval refused"
    with pytest.raises(PermissionDenied, match=refused):
        approve_current(stack.ops, second, BOB)
    reasons = [e.data.get("reason") for e in stack.ops.show(second).events if e.kind == EventKind.APPROVAL_REFUSED]
    assert reasons == [refused]


@POSTGRES
def test_slack_down_before_its_first_answer_refuses_clearly(stack: Stack, slack: FakeSlack) -> None:
    """No answer yet and Slack answers 503: refused, saying Slack did not answer."""
    slack_goes_down(slack)
    with (
        capture_logs() as logs,
        pytest.raises(
            PermissionDenied, match=r"cannot check membership of @dba-leads: Slack did not answer \(HTTP 503"
        ),
    ):
        approve_current(stack.ops, stack.request(), BOB)
    unreadable = [e for e in logs if e["event"] == "slack_group_unreadable"]
    assert unreadable and unreadable[0]["group"] == "@dba-leads" and unreadable[0]["log_level"] == "warning"


@POSTGRES
def test_an_unreachable_slack_is_an_outage_too(stack: Stack, slack: FakeSlack) -> None:
    """The fake Slack is stopped (connections refused): the last answer stands within the bound."""
    stack.groups.refresh()
    slack.stop()
    stack.clock.advance(TTL * 2)
    assert approve_current(stack.ops, stack.request(), BOB).status is IntentStatus.APPROVED


# --- definite answers refuse at once ------------------------------------------------------------------------------


@POSTGRES
def test_an_unknown_group_handle_is_a_clear_error(store: SqlStore, slack: FakeSlack) -> None:
    """A role naming @dba-laeds (a typo): approving is refused, naming the handle Slack does not have."""
    stack = Stack(store, slack, {**CONFIG, "roles": {**CONFIG["roles"], "dba-lead": ["@dba-laeds"]}})
    expected = r"cannot check membership of @dba-laeds: Slack has no user group @dba-laeds \(check the roles"
    with pytest.raises(PermissionDenied, match=expected):
        approve_current(stack.ops, stack.request(), BOB)


@POSTGRES
def test_a_token_without_usergroups_read_is_refused_naming_the_scope(store: SqlStore) -> None:
    """An app installed before usergroups:read was added: refused, saying what to do."""
    granted = tuple(s for s in Workspace().scopes if s != "usergroups:read")
    with FakeSlack(TOKEN, "s", users=USERS, workspace=Workspace(scopes=granted)) as narrow:
        narrow.add_usergroup("@dba-leads", [BOB])
        stack = Stack(store, narrow)
        with pytest.raises(PermissionDenied, match="the Slack token lacks usergroups:read"):
            approve_current(stack.ops, stack.request(), BOB)


# --- the executor's gate asks again ------------------------------------------------------------------------------


@POSTGRES
def test_the_gate_rechecks_an_approval_against_the_groups_current_members(stack: Stack, slack: FakeSlack) -> None:
    """bob approves, then leaves @dba-leads before the run: the intent asks for a new approval; erin's runs it."""
    intent_id = stack.request()
    approve_current(stack.ops, intent_id, BOB)
    slack.set_usergroup_users("@dba-leads", [])
    stack.clock.advance(TTL)
    stack.run()
    parked = stack.ops.get(intent_id)
    assert parked.status is IntentStatus.NEEDS_REAPPROVAL
    assert f"{BOB} no longer holds an approver role" in (parked.status_reason or "")
    assert stack.world.effects() == {}
    approve_current(stack.ops, intent_id, ERIN)
    stack.run()
    assert stack.status(intent_id) is IntentStatus.SUCCEEDED


@POSTGRES
def test_the_gate_does_not_start_a_run_when_the_group_cannot_be_checked(stack: Stack, slack: FakeSlack) -> None:
    """bob approves; Slack is silent past the bound before the run: nothing runs, and the reason says why."""
    intent_id = stack.request()
    approve_current(stack.ops, intent_id, BOB)
    slack_goes_down(slack)
    stack.clock.advance(MAX_STALE + 60)
    stack.run()
    parked = stack.ops.get(intent_id)
    assert parked.status is IntentStatus.NEEDS_REAPPROVAL
    assert "cannot check membership of @dba-leads: Slack has not answered for 16 min" in (parked.status_reason or "")
    assert stack.world.effects() == {}


# --- without Slack ----------------------------------------------------------------------------------------------


@POSTGRES
def test_the_cli_without_slack_refuses_group_roles_clearly(tmp_path: Path, db_url: str, store: SqlStore) -> None:
    """No SLACK_BOT_TOKEN: bob (a group member only) is refused with the reason; erin (by user id) approves."""
    config = {**CONFIG, "cli": {"identities": {"bob": BOB, "erin": ERIN}}}
    path = tmp_path / "opsbot.yml"
    path.write_text(yaml.safe_dump(config))
    world = ScriptedWorld()
    add_instance(world, "billing-db")
    ops = OpsService(Runtime(store, build_registry(), parse_config(config), ScriptedAdapters(world)))
    requested = ops.request("rds.create-replica", dict(PARAMS), "prod", CAROL).intent

    def approve(os_user: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_"))}
        env.update(OPSBOT_DATABASE_URL=db_url, OPSBOT_CONFIG=str(path), LOGNAME=os_user, USER=os_user)
        command = ["approve", requested.id, "--plan-hash", requested.plan_hash]
        return subprocess.run(
            [sys.executable, "-m", "opsbot.cli", *command], env=env, capture_output=True, text=True, timeout=120
        )

    refused = approve("bob")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "cannot check membership of @dba-leads: this process has no Slack connection" in refused.stderr
    assert approve("erin").returncode == 0


# --- the configuration ------------------------------------------------------------------------------------------


def test_config_accepts_groups_by_handle_and_by_id() -> None:
    """Roles may mix user ids, @handles and S… ids; the config lists the groups it names."""
    parsed = parse_config({**CONFIG, "roles": {"dba": [ALICE, "@dbas"], "dba-lead": ["S0614TZR7", "@dbas"]}})
    assert parsed.user_groups() == ("@dbas", "S0614TZR7")


@pytest.mark.parametrize("handle", ["@DBA-Leads", "@dba leads", "@", "@-x"])
def test_config_refuses_a_malformed_group_handle(handle: str) -> None:
    """A handle Slack could not have is refused when the config is read, naming the role."""
    with pytest.raises(ConfigError, match=r"roles: .*role 'dba-lead' names"):
        parse_config({**CONFIG, "roles": {**CONFIG["roles"], "dba-lead": [handle]}})


def test_config_refuses_a_cli_identity_that_is_a_group() -> None:
    """One identity per person: an OS user maps to one Slack user, never to a group."""
    with pytest.raises(ConfigError, match="bob is mapped to the user group @dba-leads"):
        parse_config({**CONFIG, "cli": {"identities": {"bob": "@dba-leads"}}})


def test_config_still_refuses_letting_the_requester_approve_alone_with_group_roles() -> None:
    """Group roles change nothing for the rule the config can check: requester: true on approve in production."""
    policy = {**CONFIG["policies"]["rds.create-replica"], "actions": {"approve": {"requester": True}}}
    with pytest.raises(ConfigError, match="nobody acts alone on a change to production"):
        parse_config({**CONFIG, "policies": {"rds.create-replica": policy}})


@POSTGRES
def test_a_requester_in_the_approver_group_still_cannot_approve_his_own_request(stack: Stack, slack: FakeSlack) -> None:
    """The config cannot know who a group holds; the check excludes the requester by identity, whatever it holds."""
    slack.set_usergroup_users("@dba-leads", [CAROL, BOB])
    intent_id = stack.request(by=CAROL)
    with pytest.raises(PermissionDenied, match="you cannot approve your own request"):
        approve_current(stack.ops, intent_id, CAROL)
    assert stack.status(intent_id) is IntentStatus.PENDING_APPROVAL


# --- Slack end to end -------------------------------------------------------------------------------------------


@POSTGRES
def test_a_group_member_approves_from_slack(tmp_path: Path, db_url: str, aws: str) -> None:
    """Served over HTTP: a member of @dba-leads clicks Approve and the change runs; a guest's click is refused."""
    create_source(aws)
    roles = {"roles": {"dba": [REQUESTER], "dba-lead": ["@dba-leads"]}}
    with served(tmp_path, db_url, aws, config_overrides=roles) as bench:
        bench.fake.add_usergroup("@dba-leads", [APPROVER])
        assert bench.services.groups is not None and bench.services.runtime.groups is bench.services.groups
        intent_id = plan(bench)
        click(bench, intent_id, ActionId.APPROVE, GUEST)
        wait_until(lambda: any("may not approve" in t for t in bench.ephemeral_texts(GUEST)))
        click(bench, intent_id, ActionId.APPROVE, APPROVER)
        bench.settle()
        assert bench.status(intent_id) is IntentStatus.SUCCEEDED


def test_the_worker_keeps_the_groups_warm(tmp_path: Path, sqlite_url: str, slack: FakeSlack) -> None:
    """`opsbot serve`/`worker` run a `slack-groups` loop that asks Slack about the config's groups unprompted."""
    path = tmp_path / "opsbot.yml"
    path.write_text(yaml.safe_dump(CONFIG))
    settings = Settings(
        database_url=sqlite_url,
        config=path,
        slack_bot_token=TOKEN,
        slack_api_url=slack.api_url,
        slack_groups_ttl_seconds=0.2,
        slack_groups_max_stale_seconds=1,
    )
    services = build_services(settings)
    worker = start_worker(services, settings, engine_jobs=False)
    try:
        wait_until(lambda: len(slack.calls_to("usergroups.users.list")) >= 2)
    finally:
        worker.shutdown()
        services.store.engine.dispose()
    assert services.groups is not None and services.groups.members("@dba-leads") == {BOB}


# --- the fake Slack serves the methods as Slack does --------------------------------------------------------------


def _call(fake: FakeSlack, method: str, **args: Any) -> dict[str, Any]:
    reply = requests.get(
        f"{fake.api_url}{method}", params=args, headers={"Authorization": f"Bearer {fake.token}"}, timeout=10
    )
    body: dict[str, Any] = reply.json()
    return body


def test_the_fake_lists_user_groups_like_slack(slack: FakeSlack) -> None:
    """usergroups.list: usergroup objects; users and a string count on request; disabled ones only when asked."""
    off = slack.add_usergroup("@retired", [ERIN])
    slack.disable_usergroup(off)
    listed = _call(slack, "usergroups.list", include_users="true", include_count="true")
    assert listed["ok"] is True
    [group] = listed["usergroups"]
    assert group["handle"] == "dba-leads" and group["id"].startswith("S") and group["is_usergroup"] is True
    assert group["users"] == [BOB] and group["user_count"] == "1" and group["date_delete"] == 0
    assert "users" not in _call(slack, "usergroups.list")["usergroups"][0]
    with_disabled = _call(slack, "usergroups.list", include_disabled="true")["usergroups"]
    assert [g["id"] for g in with_disabled if g["date_delete"]] == [off]


def test_the_fake_lists_a_groups_members_and_refuses_what_slack_refuses(slack: FakeSlack) -> None:
    """usergroups.users.list: the ids by group id; an unknown id, a handle or no argument are refused."""
    group_id = slack.usergroup("@dba-leads").id
    assert _call(slack, "usergroups.users.list", usergroup=group_id) == {"ok": True, "users": [BOB]}
    assert _call(slack, "usergroups.users.list", usergroup="S0NOSUCH01")["error"] == "no_such_subteam"
    assert _call(slack, "usergroups.users.list", usergroup="dba-leads")["error"] == "no_such_subteam"
    assert _call(slack, "usergroups.users.list")["error"] == "invalid_arguments"


def test_the_fake_refuses_user_groups_without_the_scope() -> None:
    """A token without usergroups:read gets missing_scope, naming the scope, from both methods."""
    granted = tuple(s for s in Workspace().scopes if s != "usergroups:read")
    with FakeSlack(TOKEN, "s", workspace=Workspace(scopes=granted)) as fake:
        for method in ("usergroups.list", "usergroups.users.list"):
            body = _call(fake, method, usergroup="S0NOSUCH01")
            assert body["error"] == "missing_scope" and body["needed"] == "usergroups:read"
