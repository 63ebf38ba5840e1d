"""A workflow definition that changes under in-flight intents: re-approval before they start, parked after."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from store.sql import SqlStore
from tests.conftest import CONFIG, approve_current
from workflows.authoring import definition_of
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.executor import Executor
from workflows.guidance import guidance
from workflows.model import IntentStatus
from workflows.reconciler import Reconciler
from workflows.registry import Registry
from workflows.runtime import FrozenClock
from workflows.sdk import (
    Absent,
    Done,
    Evidence,
    Observation,
    Pending,
    PlanDraft,
    PreflightContext,
    Risk,
    Rollback,
    StepContext,
    StepOutcome,
    Workflow,
    postcondition,
    step,
    workflow,
)
from workflows.service import OpsService
from workflows.states import Action


class Params(BaseModel):
    name: str


def _declare() -> Callable[[type[Any]], type[Any]]:
    return workflow(
        name="test.evolve",
        summary="a workflow that a deploy changes",
        risk=Risk.LOW,
        blast_radius="none",
        request_roles=("dba",),
        approve_roles=("dba-lead",),
    )


class _Base(Workflow[Params]):
    def preflight(self, ctx: PreflightContext[Params]) -> PlanDraft:
        return PlanDraft(targets=(ctx.params.name,), mutations=(), observed={"name": ctx.params.name})


@_declare()
class V1(_Base):
    @step(rollback=Rollback.COMPENSATE)
    def create(self, ctx: StepContext[Params]) -> StepOutcome:
        return Done(external_ids={"name": ctx.params.name})

    @create.probe
    def _find(self, ctx: StepContext[Params]) -> Observation:
        return Absent("not there")

    @create.compensate
    def _remove(self, ctx: StepContext[Params]) -> StepOutcome:
        return Done()

    @step(rollback=Rollback.NONE, idempotent="it only looks", convergence_window=3600)
    def settle(self, ctx: StepContext[Params]) -> StepOutcome:
        return Pending("still settling", retry_after=30)

    @postcondition("fine")
    def fine(self, ctx: StepContext[Params]) -> Evidence:
        return Evidence(True)


@_declare()
class V2(_Base):
    """The same workflow after a deploy added a step between the two."""

    @step(rollback=Rollback.COMPENSATE)
    def create(self, ctx: StepContext[Params]) -> StepOutcome:
        return Done(external_ids={"name": ctx.params.name})

    @create.probe
    def _find(self, ctx: StepContext[Params]) -> Observation:
        return Absent("not there")

    @create.compensate
    def _remove(self, ctx: StepContext[Params]) -> StepOutcome:
        return Done()

    @step(rollback=Rollback.NONE, idempotent="it only looks")
    def configure(self, ctx: StepContext[Params]) -> StepOutcome:
        return Done()

    @step(rollback=Rollback.NONE, idempotent="it only looks", convergence_window=3600)
    def settle(self, ctx: StepContext[Params]) -> StepOutcome:
        return Done()

    @postcondition("fine")
    def fine(self, ctx: StepContext[Params]) -> Evidence:
        return Evidence(True)


def _rt(store: SqlStore, clock: FrozenClock, cls: type) -> Runtime:
    return Runtime(
        store=store,
        registry=Registry([cls]),
        config=parse_config(CONFIG),
        adapters=None,  # type: ignore[arg-type]  # these workflows touch nothing outside
        clock=clock,
    )


def test_the_definition_fingerprint_covers_steps_and_their_bindings() -> None:
    """Adding a step changes the fingerprint; the same shape declared again does not."""
    assert definition_of(V1).definition.hash != definition_of(V2).definition.hash
    assert definition_of(V1).definition.steps[0] == "create:compensate:probe=True:compensation=True:idempotent=False"


def test_an_intent_not_yet_started_goes_back_to_approval_with_a_new_plan(store: SqlStore, clock: FrozenClock) -> None:
    """Planned against V1, run after V2 is deployed: nothing runs; a new plan for V2 waits for approval."""
    old = _rt(store, clock, V1)
    ops = OpsService(old)
    intent = ops.request("test.evolve", {"name": "x"}, "prod", "alice").intent
    approve_current(ops, intent.id, "bob")
    new = _rt(store, clock, V2)
    [parked] = Executor(new, "after-deploy").run_until_idle()
    assert parked.status is IntentStatus.NEEDS_REAPPROVAL
    assert (
        "the workflow changed since it was planned (steps were create → settle, now create → configure → settle)"
        in (parked.status_reason or "")
    )
    assert parked.plan_hash != intent.plan_hash and parked.plan["definition"] == definition_of(V2).definition.hash
    with store.transaction() as tx:
        assert tx.steps(intent.id) == []
    approve_current(OpsService(new), intent.id, "bob")
    Executor(new, "after-deploy").run_until_idle()
    assert OpsService(new).get(intent.id).status is IntentStatus.SUCCEEDED


def test_an_intent_that_started_is_parked_with_what_changed_and_what_remains_safe(
    store: SqlStore, clock: FrozenClock
) -> None:
    """Converging under V1 when V2 lands: parked unsafe, naming the change; only compensate/cancel/mark done offered."""
    old = _rt(store, clock, V1)
    ops = OpsService(old)
    intent = ops.request("test.evolve", {"name": "x"}, "prod", "alice").intent
    approve_current(ops, intent.id, "bob")
    [converging] = Executor(old, "before-deploy").run_until_idle()
    assert converging.status is IntentStatus.CONVERGING
    new = _rt(store, clock, V2)
    clock.advance(60)
    [classified] = Reconciler(new).reconcile_due()
    assert classified.status is IntentStatus.UNSAFE
    parked = OpsService(new).get(intent.id)
    assert "steps were create → settle, now create → configure → settle" in (parked.status_reason or "")
    with store.transaction() as tx:
        steps = tx.steps(intent.id)
    offered = guidance(parked, definition_of(V2), steps).action_names
    assert offered == (Action.CANCEL, Action.MARK_DONE, Action.COMPENSATE)
    assert Executor(new, "after-deploy").run_until_idle() == []  # nothing runs the mismatched step list


def test_the_executor_also_refuses_a_changed_definition_for_a_started_intent(
    store: SqlStore, clock: FrozenClock
) -> None:
    """Resumed by the executor (not the reconciler) after the deploy: parked the same way, nothing run."""
    old = _rt(store, clock, V1)
    ops = OpsService(old)
    intent = ops.request("test.evolve", {"name": "x"}, "prod", "alice").intent
    approve_current(ops, intent.id, "bob")
    Executor(old, "before-deploy").run_until_idle()
    new = _rt(store, clock, V2)
    resumed = OpsService(new).resume(intent.id, "alice", "keep going")
    assert resumed.status is IntentStatus.APPROVED
    [parked] = Executor(new, "after-deploy").run_until_idle()
    assert parked.status is IntentStatus.UNSAFE and "the workflow changed under this intent" in (
        parked.status_reason or ""
    )
    with store.transaction() as tx:
        assert [s.name for s in tx.steps(intent.id)] == ["create", "settle"]
