"""Authorization that holds at every step: who may retry, resume, compensate and mark done; approvals checked
against today's roles; one identity per person; the plan hash an approver read. One test per demonstrated case."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance import Fault, ScriptedAdapters, ScriptedWorld
from conformance.scripted_aws import add_instance
from store.db import make_engine
from store.sql import SqlStore
from tests.conftest import approve_current
from workflows.catalog import build_registry
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.errors import ConfigError, InvalidInput, PermissionDenied, StalePlan
from workflows.executor import Executor
from workflows.model import EventKind, IntentStatus
from workflows.reconciler import Reconciler
from workflows.runtime import FrozenClock
from workflows.service import OpsService

PARAMS = {"source": "billing-db", "replica": "billing-db-r1"}
BASE: dict[str, Any] = {
    "environments": {"prod": {"aws_region": "us-east-1"}, "staging": {"aws_region": "us-east-1"}},
    "roles": {"dba": ["alice", "carol"], "dba-lead": ["alice", "bob", "erin"]},
    "policies": {"rds.create-replica": {"request": ["dba"], "approve": ["dba-lead"], "approvals": 1}},
}


class Stack:
    """An intent store on SQLite, the real catalog over a scripted world, and a clock the test moves."""

    def __init__(self, url: str, config: dict[str, Any] | None = None, converge_after: int = 0) -> None:
        self.url, self.clock, self.world = url, FrozenClock(), ScriptedWorld(converge_after=converge_after)
        add_instance(self.world, "billing-db")
        self.store = SqlStore(make_engine(url))
        self.reconfigure(config or BASE)

    def reconfigure(self, config: dict[str, Any]) -> None:
        """A config change, as a deploy or a role change would bring it."""
        self.rt = Runtime(
            store=self.store,
            registry=build_registry(),
            config=parse_config(config),
            adapters=ScriptedAdapters(self.world),
            clock=self.clock,
        )
        self.ops = OpsService(self.rt)

    def run(self) -> None:
        Reconciler(self.rt).reconcile_due()
        Executor(self.rt, "test").run_until_idle()

    def status(self, intent_id: str) -> IntentStatus:
        return self.ops.get(intent_id).status

    def request(self, by: str = "carol", env: str = "prod") -> str:
        return self.ops.request("rds.create-replica", dict(PARAMS), env, by).intent.id

    def events(self, intent_id: str) -> list[str]:
        return [e.kind for e in self.ops.show(intent_id).events]


@pytest.fixture
def stack(sqlite_url: str) -> Stack:
    return Stack(sqlite_url)


def with_policy(**changes: Any) -> dict[str, Any]:
    policy = {**BASE["policies"]["rds.create-replica"], **changes}
    return {**BASE, "policies": {"rds.create-replica": policy}}


def failed_intent(stack: Stack) -> str:
    stack.world.fail("create_read_replica", Fault.PERMANENT)
    intent_id = stack.request()
    approve_current(stack.ops, intent_id, "bob")
    stack.run()
    assert stack.status(intent_id) is IntentStatus.FAILED
    return intent_id


# 1. retry and resume need a role, and a run needs a valid approval every time ---------------------


def test_retry_without_a_role_is_refused_and_nothing_runs(stack: Stack) -> None:
    """A guest retrying a failed change: refused, audited, the step not run again."""
    intent_id = failed_intent(stack)
    with pytest.raises(PermissionDenied, match="mallory may not retry"):
        stack.ops.retry(intent_id, "mallory", "let me try")
    stack.run()
    assert stack.status(intent_id) is IntentStatus.FAILED
    assert stack.world.calls()["create_read_replica"] == 1
    assert EventKind.ACTION_REFUSED in stack.events(intent_id)


def test_retry_days_later_asks_for_a_new_approval_before_anything_runs(stack: Stack) -> None:
    """The requester retries two days on: the approval has expired, so it waits for one; then it runs."""
    intent_id = failed_intent(stack)
    stack.clock.advance(2 * 86400)
    asked = stack.ops.retry(intent_id, "carol", "capacity is back")
    assert asked.status is IntentStatus.NEEDS_REAPPROVAL and "expired" in (asked.status_reason or "")
    stack.run()
    assert stack.world.calls()["create_read_replica"] == 1  # nothing ran without an approval
    approve_current(stack.ops, intent_id, "erin")
    stack.run()
    assert stack.status(intent_id) is IntentStatus.SUCCEEDED


def test_resume_without_a_role_is_refused(sqlite_url: str) -> None:
    """Resume is a role-holder's action too: a guest cannot push a converging change along."""
    stack = Stack(sqlite_url, converge_after=100)
    intent_id = stack.request()
    approve_current(stack.ops, intent_id, "bob")
    stack.run()
    assert stack.status(intent_id) is IntentStatus.CONVERGING
    with pytest.raises(PermissionDenied, match="mallory may not resume"):
        stack.ops.resume(intent_id, "mallory", "go")
    assert stack.ops.resume(intent_id, "carol", "nudge").status is IntentStatus.APPROVED


def test_a_retry_click_on_needs_reapproval_needs_a_role_and_keeps_the_plan(stack: Stack) -> None:
    """A guest cannot force a new plan (which would make every approver's buttons stale)."""
    intent_id = stack.request()
    approve_current(stack.ops, intent_id, "bob")
    stack.clock.advance(7200)  # the approval expires before the executor gets to it
    stack.run()
    before = stack.ops.get(intent_id)
    assert before.status is IntentStatus.NEEDS_REAPPROVAL
    with pytest.raises(PermissionDenied):
        stack.ops.retry(intent_id, "mallory", "replan")
    assert stack.ops.get(intent_id).plan_hash == before.plan_hash


# 2. the requester alone can neither compensate nor mark done ------------------------------------


def test_the_requester_who_is_also_an_approver_cannot_compensate_or_mark_done_alone(stack: Stack) -> None:
    """alice holds dba and dba-lead; on her own succeeded request she can do neither."""
    intent_id = stack.request(by="alice")
    approve_current(stack.ops, intent_id, "bob")
    stack.run()
    assert stack.status(intent_id) is IntentStatus.SUCCEEDED
    with pytest.raises(PermissionDenied, match="someone else must compensate"):
        stack.ops.compensate(intent_id, "alice", "undo mine")
    assert stack.world.effects() == {"create_read_replica:billing-db-r1": 1}


def test_mark_done_by_the_requester_is_refused_and_needs_as_many_people_as_approvals(sqlite_url: str) -> None:
    """With approvals: 2, marking done takes two distinct approvers, neither of them the requester."""
    stack = Stack(sqlite_url, with_policy(approvals=2))
    stack.world.fail("create_read_replica", Fault.PERMANENT)
    intent_id = stack.request(by="alice")
    approve_current(stack.ops, intent_id, "bob")
    approve_current(stack.ops, intent_id, "erin")
    stack.run()
    assert stack.status(intent_id) is IntentStatus.FAILED
    with pytest.raises(PermissionDenied, match="someone else must mark-done"):
        stack.ops.mark_done(intent_id, "alice", "I fixed it myself")
    first = stack.ops.mark_done(intent_id, "bob", "created by hand in the console")
    assert first.status is IntentStatus.FAILED
    assert stack.ops.mark_done(intent_id, "bob", "again").status is IntentStatus.FAILED  # one person, once
    done = stack.ops.mark_done(intent_id, "erin", "checked the console too")
    assert done.status is IntentStatus.MARKED_DONE
    assert stack.events(intent_id).count(EventKind.ACTION_AGREED) == 3


def test_compensation_is_a_plan_approved_by_someone_other_than_requester_and_proposer(stack: Stack) -> None:
    """bob proposes undoing carol's replica; neither carol nor bob can approve it; erin does, then it runs."""
    intent_id = stack.request(by="carol")
    approve_current(stack.ops, intent_id, "bob")
    stack.run()
    proposed = stack.ops.compensate(intent_id, "bob", "wrong region")
    assert proposed.status is IntentStatus.PENDING_APPROVAL and proposed.plan["requested_by"] == "bob"
    assert [m["action"] for m in proposed.plan["mutations"]] == ["undo"]
    stack.run()
    assert "delete_instance:billing-db-r1" not in stack.world.effects()
    for who in ("carol", "bob"):
        with pytest.raises(PermissionDenied):
            approve_current(stack.ops, intent_id, who)
    approve_current(stack.ops, intent_id, "erin")
    stack.run()
    assert stack.status(intent_id) is IntentStatus.COMPENSATED
    assert stack.world.effects()["delete_instance:billing-db-r1"] == 1


# 3. an approval does not outlive the approver's role, nor the policy's environments --------------


def test_an_approval_by_someone_who_lost_the_role_does_not_start_a_run(stack: Stack) -> None:
    """bob approves, then leaves dba-lead: the intent asks for a new approval instead of running."""
    intent_id = stack.request()
    approve_current(stack.ops, intent_id, "bob")
    stack.reconfigure({**BASE, "roles": {**BASE["roles"], "dba-lead": ["alice", "erin"]}})
    stack.run()
    parked = stack.ops.get(intent_id)
    assert parked.status is IntentStatus.NEEDS_REAPPROVAL
    assert "bob no longer holds an approver role" in (parked.status_reason or "")
    assert stack.world.effects() == {}


def test_a_recovering_intent_is_parked_when_its_approver_lost_the_role(stack: Stack) -> None:
    """Automatic recovery continues under its approval, unless that approver's role was revoked meanwhile."""
    intent_id = stack.request()
    approve_current(stack.ops, intent_id, "bob")
    stack.world.fail("create_read_replica", Fault.TRANSIENT, times=3)  # one run's worth of attempts
    stack.run()
    assert stack.status(intent_id) is IntentStatus.RETRYABLE
    stack.reconfigure({**BASE, "roles": {**BASE["roles"], "dba-lead": ["alice", "erin"]}})
    stack.clock.advance(60)
    stack.run()
    parked = stack.ops.get(intent_id)
    assert parked.status is IntentStatus.NEEDS_REAPPROVAL
    assert EventKind.APPROVER_REVOKED in stack.events(intent_id)
    approve_current(stack.ops, intent_id, "erin")
    stack.run()
    assert stack.status(intent_id) is IntentStatus.SUCCEEDED


def test_narrowing_a_policys_environments_stops_intents_planned_before(stack: Stack) -> None:
    """Planned for staging, then the policy allows prod only: the staging intent does not run."""
    intent_id = stack.request(env="staging")
    approve_current(stack.ops, intent_id, "bob")
    stack.reconfigure(with_policy(environments=["prod"]))
    stack.run()
    parked = stack.ops.get(intent_id)
    assert parked.status is IntentStatus.NEEDS_REAPPROVAL and "no longer allows" in (parked.status_reason or "")
    assert stack.world.effects() == {}
    with pytest.raises(PermissionDenied, match="not allowed in environment 'staging'"):
        approve_current(stack.ops, intent_id, "erin")


# 7. re-approval after expiry -----------------------------------------------------------------------


def test_the_same_approver_approving_again_after_expiry_counts(stack: Stack) -> None:
    """The expired approval is refreshed, not ignored: the intent runs."""
    intent_id = stack.request()
    approve_current(stack.ops, intent_id, "bob")
    stack.clock.advance(7200)
    stack.run()
    assert stack.status(intent_id) is IntentStatus.NEEDS_REAPPROVAL
    again = approve_current(stack.ops, intent_id, "bob")
    assert again.status is IntentStatus.APPROVED
    stack.run()
    assert stack.status(intent_id) is IntentStatus.SUCCEEDED


# 8. the plan hash an approver read -----------------------------------------------------------------


@pytest.mark.parametrize("given", ["", "   ", "abc", "0123456789a", "not-a-hash-at-all"])
def test_an_empty_or_short_plan_hash_approves_nothing(stack: Stack, given: str) -> None:
    """An approval must name the plan: at least 12 hex digits of its hash; a prefix check cannot be skipped."""
    intent_id = stack.request()
    with pytest.raises(InvalidInput, match="at least 12 hex digits"):
        stack.ops.approve(intent_id, "bob", given)
    assert stack.status(intent_id) is IntentStatus.PENDING_APPROVAL


def test_a_hash_of_another_plan_is_stale(stack: Stack) -> None:
    """Twelve hex digits that are not the current plan's: refused as stale; the right twelve approve."""
    intent_id = stack.request()
    current = stack.ops.get(intent_id).plan_hash
    wrong = ("f" if current[0] != "f" else "e") + current[1:12]
    with pytest.raises(StalePlan):
        stack.ops.approve(intent_id, "bob", wrong)
    assert stack.ops.approve(intent_id, "bob", current[:12]).status is IntentStatus.APPROVED


# 4. one identity per person: the CLI -------------------------------------------------------------

CLI_CONFIG: dict[str, Any] = {
    **BASE,
    "roles": {"dba": ["U0ALICE", "U0CAROL"], "dba-lead": ["U0BOB", "U0ERIN", "bob"]},
    "policies": {"rds.create-replica": {"request": ["dba"], "approve": ["dba-lead"], "approvals": 2}},
    "cli": {"identities": {"bob": "U0BOB", "carol": "U0CAROL"}},
}
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path, sqlite_url: str) -> Callable[[dict[str, Any]], Cli]:
    def make(config: dict[str, Any]) -> Cli:
        path = tmp_path / "opsbot.yml"
        path.write_text(yaml.safe_dump(config))

        def run(*args: str, os_user: str) -> subprocess.CompletedProcess[str]:
            env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
            env.update(OPSBOT_DATABASE_URL=sqlite_url, OPSBOT_CONFIG=str(path), LOGNAME=os_user, USER=os_user)
            return subprocess.run(
                [sys.executable, "-m", "opsbot.cli", *args], env=env, capture_output=True, text=True, timeout=120
            )

        return run

    return make


def test_one_person_with_a_slack_id_and_an_os_user_counts_once(
    cli: Callable[[dict[str, Any]], Cli], sqlite_url: str
) -> None:
    """U0BOB approves in Slack, then bob (mapped to U0BOB) approves from the CLI: still one of two approvals."""
    stack = Stack(sqlite_url, CLI_CONFIG)
    intent_id = stack.request(by="U0ALICE")
    approve_current(stack.ops, intent_id, "U0BOB")  # as the Slack surface would
    run = cli(CLI_CONFIG)
    result = run("approve", intent_id, "--plan-hash", stack.ops.get(intent_id).plan_hash, os_user="bob")
    assert result.returncode == 0, result.stderr
    view = stack.ops.show(intent_id)
    assert view.intent.status is IntentStatus.PENDING_APPROVAL
    assert {a.actor for a in view.approvals} == {"U0BOB"}
    via = [e.data.get("via") for e in view.events if e.kind == EventKind.APPROVED]
    assert via == [None, f"cli:bob@{socket.gethostname()}"]


def test_nobody_approves_his_own_slack_request_from_the_cli(
    cli: Callable[[dict[str, Any]], Cli], sqlite_url: str
) -> None:
    """carol asked in Slack (U0CAROL); carol at a terminal is U0CAROL too: her approval is her own."""
    stack = Stack(sqlite_url, {**CLI_CONFIG, "roles": {**CLI_CONFIG["roles"], "dba-lead": ["U0CAROL", "U0BOB"]}})
    intent_id = stack.request(by="U0CAROL")
    run = cli({**CLI_CONFIG, "roles": {**CLI_CONFIG["roles"], "dba-lead": ["U0CAROL", "U0BOB"]}})
    result = run("approve", intent_id, "--plan-hash", stack.ops.get(intent_id).plan_hash, os_user="carol")
    assert result.returncode == 2 and "your own request" in result.stderr


def test_an_unmapped_os_user_holds_no_role(cli: Callable[[dict[str, Any]], Cli], sqlite_url: str) -> None:
    """mallory is not in cli.identities: she acts as os:mallory, which no role names."""
    stack = Stack(sqlite_url, CLI_CONFIG)
    intent_id = stack.request(by="U0ALICE")
    result = cli(CLI_CONFIG)("approve", intent_id, "--plan-hash", stack.ops.get(intent_id).plan_hash, os_user="mallory")
    assert result.returncode == 2 and "os:mallory may not approve" in result.stderr


def test_actor_override_off_refuses_anyone_elses_identity(
    cli: Callable[[dict[str, Any]], Cli], sqlite_url: str
) -> None:
    """With cli.actor_override: false, --actor works only for one's own mapped identity."""
    config = {**CLI_CONFIG, "cli": {**CLI_CONFIG["cli"], "actor_override": False}}
    stack = Stack(sqlite_url, config)
    intent_id = stack.request(by="U0ALICE")
    plan_hash = stack.ops.get(intent_id).plan_hash
    run = cli(config)
    refused = run("approve", intent_id, "--plan-hash", plan_hash, "--actor", "U0ERIN", os_user="bob")
    assert refused.returncode == 2 and "actor_override: false" in refused.stderr
    own = run("approve", intent_id, "--plan-hash", plan_hash, "--actor", "U0BOB", os_user="bob")
    assert own.returncode == 0, own.stderr
    assert {a.actor for a in stack.ops.show(intent_id).approvals} == {"U0BOB"}


def test_an_overriding_actor_is_recorded_beside_the_real_os_user(
    cli: Callable[[dict[str, Any]], Cli], sqlite_url: str
) -> None:
    """--actor (allowed by default) is recorded with who typed it, so two agreeing people are visibly one."""
    stack = Stack(sqlite_url, CLI_CONFIG)
    intent_id = stack.request(by="U0ALICE")
    plan_hash = stack.ops.get(intent_id).plan_hash
    run = cli(CLI_CONFIG)
    assert run("approve", intent_id, "--plan-hash", plan_hash, os_user="bob").returncode == 0
    assert run("approve", intent_id, "--plan-hash", plan_hash, "--actor", "U0ERIN", os_user="bob").returncode == 0
    via = [e.data.get("via") for e in stack.ops.show(intent_id).events if e.kind == EventKind.APPROVED]
    host = socket.gethostname()
    assert via == [f"cli:bob@{host}", f"cli:bob@{host} acting as U0ERIN"]
    shown = run("intents", "show", intent_id, os_user="bob").stdout
    assert "U0ERIN (via cli:bob@" in shown


def test_approve_without_a_plan_hash_off_a_terminal_is_refused(
    cli: Callable[[dict[str, Any]], Cli], sqlite_url: str
) -> None:
    """No --plan-hash and no terminal to confirm on: refused, nothing approved."""
    stack = Stack(sqlite_url, CLI_CONFIG)
    intent_id = stack.request(by="U0ALICE")
    result = cli(CLI_CONFIG)("approve", intent_id, os_user="bob")
    assert result.returncode == 2 and "--plan-hash" in result.stderr
    assert stack.ops.show(intent_id).approvals == ()


def test_config_refuses_a_policy_that_lets_one_person_change_production() -> None:
    """A policy letting the requester approve or mark done alone in a production environment is refused."""
    bad = with_policy(actions={"approve": {"requester": True}})
    with pytest.raises(ConfigError, match="nobody acts alone on a change to production"):
        parse_config(bad)
    lab = {
        **bad,
        "environments": {"lab": {"production": False}},
        "policies": {"rds.create-replica": {**bad["policies"]["rds.create-replica"], "environments": ["lab"]}},
    }
    assert parse_config(lab).environments["lab"].production is False
