"""Peer approval: nobody approves their own request, roles are enforced, and every refusal is audited."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import CONFIG, ROLES, approve_current, create_source
from tests.fakes import Script, ScriptedAdapters
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.errors import InvalidInput, InvalidTransition, PermanentError, PermissionDenied, StalePlan
from workflows.executor import Executor
from workflows.model import IntentStatus
from workflows.service import OpsService

PARAMS = {"source": "billing-db", "replica": "billing-db-r1"}


def pending(rt: Runtime) -> str:
    return OpsService(rt).request("rds.create-replica", dict(PARAMS), "prod", "bob").intent.id


def events(rt: Runtime, intent_id: str) -> list[tuple[str, str]]:
    with rt.store.transaction() as tx:
        return [(e.kind, e.actor) for e in tx.events(intent_id)]  # type: ignore[arg-type]


def test_self_approval_is_refused_and_audited(runtime: Runtime, aws: str) -> None:
    """The requester cannot approve, even holding the approver role, and the attempt is recorded."""
    create_source(aws)
    intent_id = pending(runtime)
    with pytest.raises(PermissionDenied, match="your own request"):
        approve_current(OpsService(runtime), intent_id, "bob")
    assert ("approval_refused", "bob") in events(runtime, intent_id)
    assert OpsService(runtime).show(intent_id).intent.status is IntentStatus.PENDING_APPROVAL


def test_approval_without_the_role_is_refused_and_audited(runtime: Runtime, aws: str) -> None:
    """A requester-role holder who is not an approver cannot approve."""
    create_source(aws)
    intent_id = pending(runtime)
    with pytest.raises(PermissionDenied, match="dba-lead"):
        approve_current(OpsService(runtime), intent_id, "carol")
    assert ("approval_refused", "carol") in events(runtime, intent_id)
    assert OpsService(runtime).show(intent_id).intent.status is IntentStatus.PENDING_APPROVAL


def test_approval_of_a_stale_plan_hash_is_refused(runtime: Runtime, aws: str) -> None:
    """An approval carrying a plan hash other than the current one is refused."""
    create_source(aws)
    intent_id = pending(runtime)
    with pytest.raises(StalePlan):
        OpsService(runtime).approve(intent_id, "erin", plan_hash="deadbeefdeadbeef")


def test_double_approval_is_harmless(runtime: Runtime, aws: str) -> None:
    """A second click by the same approver changes nothing and says it is already approved."""
    create_source(aws)
    intent_id = pending(runtime)
    approve_current(OpsService(runtime), intent_id, "erin")
    with pytest.raises(InvalidTransition, match="already approved"):
        approve_current(OpsService(runtime), intent_id, "erin")


def test_two_approvers_at_once_give_one_execution(runtime: Runtime, aws: str, config: object) -> None:
    """Concurrent approvals by two approvers converge on one approved intent and one run."""
    create_source(aws)
    rt = Runtime(
        **{
            **runtime.__dict__,
            "config": parse_config({**CONFIG, "roles": {**ROLES, "dba-lead": ["erin", "frank"]}}),
        }
    )
    intent_id = OpsService(rt).request("rds.create-replica", dict(PARAMS), "prod", "alice").intent.id
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def click(who: str) -> None:
        barrier.wait()
        try:
            approve_current(OpsService(rt), intent_id, who)
        except InvalidTransition as exc:
            errors.append(exc)

    threads = [threading.Thread(target=click, args=(w,)) for w in ("erin", "frank")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert OpsService(rt).show(intent_id).intent.status is IntentStatus.APPROVED
    ran = Executor(rt, "a").run_until_idle() + Executor(rt, "b").run_until_idle()
    assert [i.status for i in ran] == [IntentStatus.SUCCEEDED]


def test_two_distinct_approvers_required_when_policy_says_so(runtime: Runtime, aws: str) -> None:
    """With approvals: 2, one approval leaves the intent pending; a second distinct approver releases it."""
    create_source(aws)
    cfg = {**CONFIG, "policies": {"rds.create-replica": {"request": ["dba"], "approve": ["dba-lead"], "approvals": 2}}}
    rt = Runtime(**{**runtime.__dict__, "config": parse_config(cfg)})
    intent_id = OpsService(rt).request("rds.create-replica", dict(PARAMS), "prod", "alice").intent.id
    assert approve_current(OpsService(rt), intent_id, "bob").status is IntentStatus.PENDING_APPROVAL
    assert Executor(rt, "x").run_once() == []
    assert approve_current(OpsService(rt), intent_id, "erin").status is IntentStatus.APPROVED


def test_deny_stops_the_intent_with_its_reason(runtime: Runtime, aws: str) -> None:
    """A denial is final, recorded with who and why, and nothing runs."""
    create_source(aws)
    intent_id = pending(runtime)
    denied = OpsService(runtime).deny(intent_id, "erin", "not during the freeze")
    assert denied.status is IntentStatus.DENIED and "freeze" in (denied.status_reason or "")
    assert Executor(runtime, "x").run_once() == []
    with pytest.raises(InvalidTransition):
        approve_current(OpsService(runtime), intent_id, "erin")


def test_mark_done_needs_an_approver_and_a_reason(runtime: Runtime, aws: str) -> None:
    """Marking a failed intent done by hand is refused without a reason or without the approver role."""
    create_source(aws)
    script = Script(errors={"create_read_replica": [PermanentError("InsufficientDBInstanceCapacity")]})
    rt = Runtime(**{**runtime.__dict__, "adapters": ScriptedAdapters(runtime.adapters, script)})
    intent_id = pending(rt)
    approve_current(OpsService(rt), intent_id, "erin")
    [failed] = Executor(rt, "x").run_once()
    assert failed.status is IntentStatus.FAILED
    with pytest.raises(PermissionDenied):
        OpsService(rt).mark_done(intent_id, "carol", "created it in the console")
    with pytest.raises(InvalidInput):
        OpsService(rt).mark_done(intent_id, "erin", "  ")
    done = OpsService(rt).mark_done(intent_id, "erin", "created it in the console")
    assert done.status is IntentStatus.MARKED_DONE
    assert ("marked_done", "erin") in events(rt, intent_id)
    assert ("action_refused", "carol") in events(rt, intent_id)
