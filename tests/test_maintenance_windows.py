"""Maintenance windows and start times: an approved intent waits in `scheduled`, starts by itself when its window
opens, never starts a step that would run past the window's end, and asks again for an approval that expired while
it waited. Cancel and Run now work on it with the usual authorization. Time is a FrozenClock the tests move."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from conformance import ScriptedAdapters, ScriptedWorld
from conformance.scripted_aws import add_instance
from store.db import make_engine
from store.sql import SqlStore
from tests.conftest import approve_current
from workflows.catalog import build_registry
from workflows.config import MaintenanceWindow, parse_config
from workflows.deps import Runtime
from workflows.errors import ConfigError, InvalidInput, InvalidTransition, PermissionDenied
from workflows.executor import Executor, fault_point
from workflows.model import EventKind, Intent, IntentStatus, StepStatus
from workflows.ports import FaultSeam
from workflows.reconciler import Reconciler
from workflows.runtime import FrozenClock, NoFaults
from workflows.scheduling import next_start
from workflows.service import OpsService
from workflows.states import STATES, Action
from workflows.windows import next_opening, opening_at

S = IntentStatus
PARAMS = {"source": "billing-db", "replica": "billing-db-r1"}
SUNDAY_NIGHT = {"days": ["sun"], "start": "02:00", "end": "04:00", "timezone": "UTC"}
SATURDAY_EVENING = datetime(2026, 1, 3, 20, 48, tzinfo=UTC)  # 5 h 12 min before the window opens
OPENS = datetime(2026, 1, 4, 2, 0, tzinfo=UTC)
CLOSES = datetime(2026, 1, 4, 4, 0, tzinfo=UTC)
NEXT_OPENS = OPENS + timedelta(days=7)
Faults = Callable[[FrozenClock], FaultSeam]


def config(windows: list[dict[str, Any]] | None = None, **policy: Any) -> dict[str, Any]:
    return {
        "environments": {"prod": {"aws_region": "us-east-1", "maintenance_windows": windows or [SUNDAY_NIGHT]}},
        "roles": {"dba": ["alice", "carol"], "dba-lead": ["bob", "erin"]},
        "policies": {"rds.create-replica": {"request": ["dba"], "approve": ["dba-lead"], **policy}},
    }


class AdvanceAfter:
    """A fault seam that moves the clock when a crash point is reached: a step that takes this long."""

    def __init__(self, clock: FrozenClock, point: str, seconds: float) -> None:
        self.clock, self.point, self.seconds = clock, point, seconds

    def reached(self, point: str) -> None:
        if point == self.point:
            self.clock.advance(self.seconds)


class Stack:
    """The real catalog over a scripted world, an intent store, and a clock the test moves."""

    def __init__(self, url: str, raw: dict[str, Any], start: datetime, faults: Faults | None = None) -> None:
        self.clock, self.world = FrozenClock(start), ScriptedWorld()
        add_instance(self.world, "billing-db")
        self.rt = Runtime(
            store=SqlStore(make_engine(url)),
            registry=build_registry(),
            config=parse_config(raw),
            adapters=ScriptedAdapters(self.world),
            clock=self.clock,
            faults=faults(self.clock) if faults else NoFaults(),
        )
        self.ops = OpsService(self.rt)

    def at(self, moment: datetime) -> None:
        self.clock.advance((moment - self.clock.now()).total_seconds())

    def run(self) -> list[Intent]:
        """One worker pass: the reconciler's due checks, then whatever became runnable."""
        Reconciler(self.rt).reconcile_due()
        return Executor(self.rt, "test").run_until_idle()

    def request(self, by: str = "alice", **extra: str) -> str:
        return self.ops.request("rds.create-replica", {**PARAMS, **extra}, "prod", by).intent.id

    def approved(self, **extra: str) -> str:
        intent_id = self.request(**extra)
        approve_current(self.ops, intent_id, "bob")
        return intent_id

    def created(self) -> int:
        return self.world.effects().get("create_read_replica:billing-db-r1", 0)

    def kinds(self, intent_id: str) -> list[str]:
        return [e.kind for e in self.ops.show(intent_id).events]


@pytest.fixture
def make(db_url: str) -> Any:
    def build(
        raw: dict[str, Any] | None = None, start: datetime = SATURDAY_EVENING, faults: Faults | None = None
    ) -> Stack:
        return Stack(db_url, raw or config(scheduled_approval_ttl_hours=12), start, faults)

    return build


# the calendar ------------------------------------------------------------------------------------


def test_a_window_is_found_in_its_own_time_zone_across_daylight_saving() -> None:
    """02:00 Europe/Berlin is 01:00 UTC in winter and 00:00 UTC in summer; an overnight window ends the next day."""
    berlin = MaintenanceWindow.model_validate({**SUNDAY_NIGHT, "timezone": "Europe/Berlin"})
    winter = next_opening([berlin], datetime(2026, 1, 1, tzinfo=UTC))
    summer = next_opening([berlin], datetime(2026, 7, 1, tzinfo=UTC))
    assert winter is not None and winter.start == datetime(2026, 1, 4, 1, 0, tzinfo=UTC)
    assert summer is not None and summer.start == datetime(2026, 7, 5, 0, 0, tzinfo=UTC)
    overnight = MaintenanceWindow.model_validate({"days": ["sat"], "start": "22:00", "end": "01:00"})
    inside = opening_at([overnight], datetime(2026, 1, 4, 0, 30, tzinfo=UTC))
    assert inside is not None and inside.label == "Sat 22:00-01:00 UTC" and inside.seconds == 3 * 3600
    assert opening_at([overnight], datetime(2026, 1, 4, 1, 0, tzinfo=UTC)) is None


def test_the_next_window_long_enough_for_a_step_is_chosen() -> None:
    """A step needing 90 minutes skips a one-hour window for the next one that lasts long enough."""
    short = MaintenanceWindow.model_validate({"days": ["sat"], "start": "02:00", "end": "03:00"})
    long = MaintenanceWindow.model_validate(SUNDAY_NIGHT)
    found = next_opening([short, long], SATURDAY_EVENING - timedelta(days=1), lasting=90 * 60)
    assert found is not None and found.start == OPENS
    assert next_opening([short], SATURDAY_EVENING, lasting=2 * 3600) is None


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ('{days: [sun], start: 12:30, end: "14:00"}', 'in quotes, "HH:MM"'),  # YAML reads 12:30 as 750
        ('{days: [sun], start: "2:00", end: "04:00"}', 'in quotes, "HH:MM"'),
        ('{days: [sun], start: "02:00", end: "04:00", timezone: Mars/Olympus}', "unknown time zone"),
        ('{days: [sun], start: "02:00", end: "02:00"}', "needs a length"),
        ('{days: [sunday], start: "02:00", end: "04:00"}', "days.0"),
        ('{days: [sun], start: "02:00", end: "04:00", tz: UTC}', "unknown key"),
    ],
)
def test_a_badly_written_window_is_refused_with_its_path(window: str, expected: str) -> None:
    """Each mistake names the window's path in the config; no time is silently misread."""
    raw = yaml.safe_load(f"environments: {{prod: {{maintenance_windows: [{window}]}}}}")
    with pytest.raises(ConfigError, match=r"environments\.prod\.maintenance_windows\.0") as refused:
        parse_config(raw)
    assert expected in str(refused.value)


def test_a_policy_requiring_a_window_where_none_is_declared_is_refused() -> None:
    """`window: required` in an environment without maintenance windows could never run: the config says so."""
    raw = config()
    raw["environments"]["lab"] = {"production": False}
    raw["policies"]["rds.create-replica"]["by_environment"] = {"lab": {"window": "required"}}
    with pytest.raises(ConfigError, match="requires a maintenance window in environment 'lab'"):
        parse_config(raw)


def test_a_policy_letting_the_requester_run_now_alone_in_production_is_refused() -> None:
    """Run now skips the window everyone agreed on: in production, not by the requester alone."""
    with pytest.raises(ConfigError, match="lets the requester run-now alone in production"):
        parse_config(config(actions={"run-now": {"requester": True}}))


# scheduling at approval ----------------------------------------------------------------------------


def test_an_approval_outside_the_window_schedules_the_intent_for_its_opening(make: Any) -> None:
    """Approved on Saturday evening, it waits in `scheduled` until Sunday 02:00 and says so, with the time left."""
    stack = make()
    intent_id = stack.approved()
    intent = stack.ops.get(intent_id)
    assert intent.status is S.SCHEDULED and intent.next_check_at == OPENS
    assert "runs in the window Sun 02:00-04:00 UTC on 4 Jan" in (intent.status_reason or "")
    view = stack.ops.show(intent_id)
    assert view.schedule is not None and view.as_of == SATURDAY_EVENING
    assert view.schedule.describe(view.as_of) == "runs in the window Sun 02:00-04:00 UTC, in 5 h 12 min"
    assert [a for a, _ in view.guidance.actions] == [Action.RUN_NOW, Action.CANCEL]
    assert EventKind.SCHEDULED in stack.kinds(intent_id)


def test_nothing_runs_before_the_window_and_it_starts_by_itself_when_it_opens(make: Any) -> None:
    """The executor and the reconciler leave it alone until 02:00; then it starts and succeeds on its own."""
    stack = make()
    intent_id = stack.approved()
    assert stack.run() == []
    stack.at(OPENS - timedelta(seconds=1))
    assert stack.run() == [] and stack.created() == 0
    assert stack.ops.get(intent_id).status is S.SCHEDULED
    stack.at(OPENS)
    [done] = stack.run()
    assert done.status is S.SUCCEEDED and stack.created() == 1
    assert EventKind.WINDOW_OPENED in stack.kinds(intent_id)


def test_the_policys_scheduled_approval_ttl_keeps_the_approval_valid_until_it_starts(make: Any) -> None:
    """With scheduled_approval_ttl_hours, an approval of a scheduled intent lasts that long, not one hour."""
    stack = make()
    intent_id = stack.approved()
    [approval] = stack.ops.show(intent_id).approvals
    assert approval.expires_at == SATURDAY_EVENING + timedelta(hours=12)


def test_an_approval_that_expires_before_the_window_asks_again_with_the_reason(make: Any) -> None:
    """Without a scheduled TTL the one-hour approval lapses: at 02:00 nothing runs, and the reason says why."""
    stack = make(config())
    intent_id = stack.approved()
    assert "the approval expires before that" in (stack.ops.get(intent_id).status_reason or "")
    stack.at(OPENS)
    assert stack.run() == []
    intent = stack.ops.get(intent_id)
    assert intent.status is S.NEEDS_REAPPROVAL and stack.created() == 0
    reason = intent.status_reason or ""
    assert "the window Sun 02:00-04:00 UTC opened" in reason and "expired" in reason
    assert "scheduled_approval_ttl_hours" in reason
    approve_current(stack.ops, intent_id, "erin")  # inside the window: it runs now
    assert [i.status for i in stack.run()] == [S.SUCCEEDED]


def test_inside_the_window_an_approval_runs_at_once(make: Any) -> None:
    """Approved at 02:30 on Sunday, it is approved to run, not scheduled."""
    stack = make(start=OPENS + timedelta(minutes=30))
    intent_id = stack.approved()
    assert stack.ops.get(intent_id).status is S.APPROVED
    assert [i.status for i in stack.run()] == [S.SUCCEEDED]


def test_a_workflow_the_policy_lets_run_any_time_is_not_scheduled(make: Any) -> None:
    """`window: optional` lifts the environment's windows for this workflow."""
    stack = make(config(window="optional"))
    intent_id = stack.approved()
    assert stack.ops.get(intent_id).status is S.APPROVED


def test_an_intent_approved_as_the_window_closes_is_scheduled_by_the_claim_holding_nothing(make: Any) -> None:
    """Approved a second before 04:00 and claimed after it: the claim schedules it for next week, locks free."""
    stack = make(start=CLOSES - timedelta(seconds=1))
    intent_id = stack.approved()
    assert stack.ops.get(intent_id).status is S.APPROVED
    stack.at(CLOSES + timedelta(seconds=1))
    assert Executor(stack.rt, "test").run_until_idle() == []
    intent = stack.ops.get(intent_id)
    assert intent.status is S.SCHEDULED and intent.next_check_at == NEXT_OPENS
    with stack.rt.store.transaction() as tx:
        assert tx.lock_holders(["rds:billing-db-r1"]) == []


# the window's end ----------------------------------------------------------------------------------


def test_a_step_that_would_run_past_the_window_is_not_started(make: Any) -> None:
    """At 03:59 the two-minute create would end after 04:00: nothing starts, and it waits for next Sunday."""
    stack = make(start=CLOSES - timedelta(minutes=1))
    intent_id = stack.approved()
    [stopped] = stack.run()
    assert stopped.status is S.SCHEDULED and stopped.next_check_at == NEXT_OPENS
    assert stack.created() == 0 and stack.ops.show(intent_id).steps == ()
    reason = stopped.status_reason or ""
    assert "step create_replica (timeout 2 min) would run past the window's end at Sun 4 Jan 04:00 UTC" in reason
    assert "it will continue in the next window: runs in the window Sun 02:00-04:00 UTC on 11 Jan" in reason
    with stack.rt.store.transaction() as tx:
        assert tx.lock_holders(["rds:billing-db-r1"]) == []
    assert EventKind.WINDOW_CLOSING in stack.kinds(intent_id)


def test_a_run_stops_between_steps_and_continues_in_the_next_window_holding_its_locks(make: Any) -> None:
    """The create took 2.5 min, leaving 30 s: the one-minute wait step is not started; next Sunday it finishes."""
    slow_create = fault_point("create_replica", "after_effect")
    stack = make(start=CLOSES - timedelta(minutes=3), faults=lambda clock: AdvanceAfter(clock, slow_create, 150))
    intent_id = stack.approved()
    [paused] = stack.run()
    assert paused.status is S.SCHEDULED and paused.next_check_at == NEXT_OPENS, paused.status_reason
    assert "step await_available (timeout 1 min) would run past the window's end" in (paused.status_reason or "")
    assert [s.status for s in stack.ops.show(intent_id).steps] == [StepStatus.SUCCEEDED]
    assert paused.started_at is None, "a fresh timeout budget in the next window"
    with stack.rt.store.transaction() as tx:
        [holder] = tx.lock_holders(["rds:billing-db-r1"])
    assert holder.intent_id == intent_id, "a half-done change keeps its resources between windows"
    stack.at(NEXT_OPENS)
    [done] = stack.run()
    assert done.status is S.SUCCEEDED and stack.created() == 1


def test_a_step_longer_than_every_window_waits_for_an_approvers_run_now(make: Any) -> None:
    """A one-minute window never fits the two-minute create: it waits, with no start time, for Run now."""
    tiny = {"days": ["sun"], "start": "02:00", "end": "02:01", "timezone": "UTC"}
    stack = make(config([tiny], scheduled_approval_ttl_hours=12), start=OPENS + timedelta(seconds=10))
    intent_id = stack.approved()
    [waiting] = stack.run()
    assert waiting.status is S.SCHEDULED and waiting.next_check_at is None
    assert "is longer than any maintenance window of prod (Sun 02:00-02:01 UTC)" in (waiting.status_reason or "")
    stack.at(OPENS + timedelta(hours=1))
    assert stack.run() == [] and stack.created() == 0
    stack.ops.run_now(intent_id, "erin", "it cannot fit any window")
    assert [i.status for i in stack.run()] == [S.SUCCEEDED]


# start times -------------------------------------------------------------------------------------


def test_a_start_time_inside_the_window_is_kept_and_shown(make: Any) -> None:
    """`at=02:30` asks for 02:30 Sunday, the next such time: approved before, it waits until then."""
    stack = make()
    intent_id = stack.approved(at="02:30")
    intent = stack.ops.get(intent_id)
    assert intent.not_before == OPENS + timedelta(minutes=30)
    assert intent.status is S.SCHEDULED and intent.next_check_at == OPENS + timedelta(minutes=30)
    assert "runs at 02:30 in the window Sun 02:00-04:00 UTC on 4 Jan" in (intent.status_reason or "")
    stack.at(OPENS)
    assert stack.run() == []
    stack.at(OPENS + timedelta(minutes=30))
    assert [i.status for i in stack.run()] == [S.SUCCEEDED]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-01-03T20:00Z", "has passed"),
        ("2026-01-04T05:00Z", "outside the maintenance windows of prod (Sun 02:00-04:00 UTC)"),
        ("tomorrow at two", "expected a time of day such as 02:00"),
        ("25:00", "expected a time of day"),
    ],
)
def test_a_start_time_in_the_past_outside_the_windows_or_unreadable_is_refused(
    make: Any, at: str, expected: str
) -> None:
    """The request is refused before anything is planned, naming `at` and what is expected."""
    stack = make()
    with pytest.raises(InvalidInput, match=r"^at: ") as refused:
        stack.request(at=at)
    assert expected in str(refused.value)
    assert "next opens Sun 11 Jan 02:00 UTC" in str(refused.value) or "outside" not in expected
    assert stack.ops.list() == []


def test_a_start_time_without_windows_runs_at_that_time(make: Any) -> None:
    """Where no window binds, `at=` alone schedules the start; the same request at another time is another one."""
    raw = config(scheduled_approval_ttl_hours=12)
    del raw["environments"]["prod"]["maintenance_windows"]
    stack = make(raw, start=datetime(2026, 1, 1, tzinfo=UTC))
    intent_id = stack.approved(at="2026-01-01T06:00Z")
    intent = stack.ops.get(intent_id)
    assert intent.status is S.SCHEDULED and "runs at Thu 1 Jan 06:00 UTC" in (intent.status_reason or "")
    assert stack.request(at="2026-01-01T07:00Z") != intent_id
    stack.at(datetime(2026, 1, 1, 6, 0, tzinfo=UTC))
    assert stack.run()[0].status is S.SUCCEEDED


# cancel and run now --------------------------------------------------------------------------------


def test_the_state_table_offers_run_now_and_cancel_while_scheduled() -> None:
    """`scheduled` is a row of the one table: approved, not final, no human needed, Run now and Cancel."""
    row = STATES[S.SCHEDULED]
    assert row.actions == (Action.RUN_NOW, Action.CANCEL) and not row.terminal and not row.needs_human
    assert {S.APPROVED, S.NEEDS_REAPPROVAL, S.CANCELLED} <= row.next


def test_a_scheduled_intent_can_be_cancelled_by_its_requester_and_never_runs(make: Any) -> None:
    """Cancel works as it does elsewhere; the window opening later changes nothing."""
    stack = make()
    intent_id = stack.approved()
    assert stack.ops.cancel(intent_id, "alice", "not this week").status is S.CANCELLED
    stack.at(OPENS)
    assert stack.run() == [] and stack.created() == 0


def test_run_now_needs_an_approver_other_than_the_requester_and_is_audited(make: Any) -> None:
    """The requester and a non-approver are refused; an approver starts it at once, outside the window."""
    stack = make()
    intent_id = stack.approved()
    with pytest.raises(PermissionDenied, match="someone else must run-now"):
        stack.ops.run_now(intent_id, "alice", "urgent")
    with pytest.raises(PermissionDenied, match="carol may not run-now"):
        stack.ops.run_now(intent_id, "carol", "urgent")
    assert stack.ops.get(intent_id).status is S.SCHEDULED
    moved = stack.ops.run_now(intent_id, "erin", "the incident needs the replica tonight")
    assert moved.status is S.APPROVED and moved.windows_waived
    assert next_start(stack.rt.config, moved, stack.clock.now()) is None
    assert [i.status for i in stack.run()] == [S.SUCCEEDED]
    kinds = stack.kinds(intent_id)
    assert EventKind.ACTION_REFUSED in kinds and EventKind.RUN_NOW in kinds


def test_run_now_on_a_lapsed_approval_asks_for_a_new_one_then_runs_outside_the_window(make: Any) -> None:
    """Run now is gated like a retry: an expired approval sends it to approval first; approved, it runs at once."""
    stack = make(config())
    intent_id = stack.approved()
    stack.at(SATURDAY_EVENING + timedelta(hours=2))
    moved = stack.ops.run_now(intent_id, "erin", "tonight after all")
    assert moved.status is S.NEEDS_REAPPROVAL and "needs a new approval first" in (moved.status_reason or "")
    approve_current(stack.ops, intent_id, "bob")
    assert stack.ops.get(intent_id).status is S.APPROVED, "the Run now choice stands for the new approval"
    assert [i.status for i in stack.run()] == [S.SUCCEEDED]


def test_run_now_is_offered_only_while_scheduled(make: Any) -> None:
    """An intent awaiting approval cannot be run now: approving it is the way."""
    stack = make()
    intent_id = stack.request()
    with pytest.raises(InvalidTransition, match="run-now is not available while intent"):
        stack.ops.run_now(intent_id, "erin", "now")
