"""The authoring API: what a workflow class may declare, and what registration refuses (one test per refusal)."""

from __future__ import annotations

import types
from typing import Any

import pytest
from pydantic import BaseModel

from workflows.authoring import definition_of
from workflows.catalog import CATALOG, build_registry
from workflows.errors import DefinitionError, UnknownWorkflow
from workflows.registry import Registry
from workflows.sdk import (
    Absent,
    Done,
    Evidence,
    Observation,
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


class Params(BaseModel):
    name: str


def _declare(**options: Any) -> Any:
    return workflow(
        name=options.pop("name", "test.thing"),
        summary="a test workflow",
        risk=Risk.LOW,
        blast_radius="none",
        request_roles=("dba",),
        approve_roles=("dba-lead",),
        **options,
    )


def test_a_whole_workflow_declares_steps_probes_compensations_and_checks_by_reference() -> None:
    """Steps keep definition order; probe and compensation bind to their step, whatever their method names."""

    @_declare()
    class Thing(Workflow[Params]):
        def preflight(self, ctx: PreflightContext[Params]) -> PlanDraft:
            return PlanDraft(targets=(ctx.params.name,), mutations=(), observed={})

        @step(rollback=Rollback.COMPENSATE)
        def create(self, ctx: StepContext[Params]) -> StepOutcome:
            return Done(external_ids={"name": ctx.params.name})

        @create.probe
        def look_for_it(self, ctx: StepContext[Params]) -> Observation:
            return Absent("not there")

        @create.compensate
        def remove_it(self, ctx: StepContext[Params]) -> StepOutcome:
            return Done()

        @step(rollback=Rollback.NONE, idempotent="it only reads")
        def wait(self, ctx: StepContext[Params]) -> StepOutcome:
            return Done()

        @postcondition("it exists")
        def exists(self, ctx: StepContext[Params]) -> Evidence:
            return Evidence(True)

    spec = definition_of(Thing)
    assert [s.name for s in spec.steps] == ["create", "wait"]
    create = spec.steps[0]
    assert create.probe is Thing.look_for_it and create.compensation is Thing.remove_it
    assert spec.params is Params and [p.name for p in spec.postconditions] == ["exists"]
    assert Registry([Thing]).get("test.thing") is spec


def test_the_decorator_returns_the_class_itself_and_needs_no_registry() -> None:
    """@workflow hands back the very class; registries are built from lists and are independent."""

    class Plain(Workflow[Params]):
        @step(rollback=Rollback.NONE, idempotent="no effect")
        def noop(self, ctx: StepContext[Params]) -> StepOutcome:
            return Done()

        @postcondition("always")
        def fine(self, ctx: StepContext[Params]) -> Evidence:
            return Evidence(True)

    decorated = _declare()(Plain)
    assert decorated is Plain
    one, other = Registry([Plain]), Registry()
    assert "test.thing" in one and "test.thing" not in other
    with pytest.raises(UnknownWorkflow):
        other.get("test.thing")


def test_the_catalog_is_a_list_of_classes_and_each_build_is_fresh() -> None:
    """Two registries built from the catalog hold the same definitions but are not the same object."""
    first, second = build_registry(), build_registry()
    assert first is not second and [s.name for s in first] == [s.name for s in second]
    assert {definition_of(c).name for c in CATALOG} == {s.name for s in first}


def test_refuses_a_compensate_step_without_a_compensation() -> None:
    """rollback=compensate with no @<step>.compensate: the plan would promise an undo that does nothing."""
    with pytest.raises(DefinitionError) as info:

        @_declare()
        class Broken(Workflow[Params]):
            @step(rollback=Rollback.COMPENSATE)
            def create(self, ctx: StepContext[Params]) -> StepOutcome:
                return Done()

            @create.probe
            def _probe(self, ctx: StepContext[Params]) -> Observation:
                return Absent("")

            @postcondition("x")
            def ok(self, ctx: StepContext[Params]) -> Evidence:
                return Evidence(True)

    assert str(info.value) == (
        "workflow 'test.thing' (Broken): step 'create' declares rollback=compensate but binds no compensation "
        "(@create.compensate)"
    )


def test_refuses_a_compensation_on_a_step_that_does_not_declare_one() -> None:
    """A compensation bound to a rollback=none step is a contradiction, named as such."""
    with pytest.raises(DefinitionError, match=r"step 'create' binds a compensation but declares rollback=none"):

        @_declare()
        class Broken(Workflow[Params]):
            @step(rollback=Rollback.NONE, idempotent="x")
            def create(self, ctx: StepContext[Params]) -> StepOutcome:
                return Done()

            @create.compensate
            def _undo(self, ctx: StepContext[Params]) -> StepOutcome:
                return Done()

            @postcondition("x")
            def ok(self, ctx: StepContext[Params]) -> Evidence:
                return Evidence(True)


def test_refuses_a_step_with_effects_and_no_probe() -> None:
    """Without a probe a crashed step would stay unknown for ever, unless it says why re-running is harmless."""
    with pytest.raises(DefinitionError) as info:

        @_declare()
        class Broken(Workflow[Params]):
            @step(rollback=Rollback.NONE)
            def create(self, ctx: StepContext[Params]) -> StepOutcome:
                return Done()

            @postcondition("x")
            def ok(self, ctx: StepContext[Params]) -> Evidence:
                return Evidence(True)

    assert str(info.value) == (
        "workflow 'test.thing' (Broken): step 'create' has no probe: bind one with @create.probe, or declare "
        "idempotent='why re-running it is harmless' if its effect is naturally idempotent"
    )


def test_an_empty_idempotency_reason_is_no_reason() -> None:
    """idempotent='' (or spaces) does not excuse a missing probe."""
    with pytest.raises(DefinitionError, match="has no probe"):

        @_declare()
        class Broken(Workflow[Params]):
            @step(rollback=Rollback.NONE, idempotent="  ")
            def create(self, ctx: StepContext[Params]) -> StepOutcome:
                return Done()

            @postcondition("x")
            def ok(self, ctx: StepContext[Params]) -> Evidence:
                return Evidence(True)


def test_refuses_two_steps_with_the_same_name() -> None:
    """A second `def create` would silently hide the first; the class namespace catches it."""
    with pytest.raises(DefinitionError) as info:

        @_declare()
        class Broken(Workflow[Params]):
            @step(rollback=Rollback.NONE, idempotent="x")
            def create(self, ctx: StepContext[Params]) -> StepOutcome:
                return Done()

            @step(rollback=Rollback.NONE, idempotent="x")  # type: ignore[no-redef]
            def create(self, ctx: StepContext[Params]) -> StepOutcome:  # noqa: F811
                return Done()

            @postcondition("x")
            def ok(self, ctx: StepContext[Params]) -> Evidence:
                return Evidence(True)

    assert str(info.value) == (
        "workflow 'test.thing' (Broken): step 'create' is defined twice (the second definition would hide the first)"
    )


def test_refuses_a_probe_named_after_its_step() -> None:
    """`@create.probe def create` would replace the step with its probe: refused, not silently accepted."""
    with pytest.raises(DefinitionError, match="step 'create' is defined twice"):

        @_declare()
        class Broken(Workflow[Params]):
            @step(rollback=Rollback.NONE)
            def create(self, ctx: StepContext[Params]) -> StepOutcome:
                return Done()

            @create.probe  # type: ignore[no-redef]
            def create(self, ctx: StepContext[Params]) -> Observation:
                return Absent("")

            @postcondition("x")
            def ok(self, ctx: StepContext[Params]) -> Evidence:
                return Evidence(True)


def test_refuses_two_postconditions_with_the_same_name() -> None:
    """Two checks under one name: the first would never run."""
    with pytest.raises(DefinitionError, match="postcondition 'ok' is defined twice"):

        @_declare()
        class Broken(Workflow[Params]):
            @step(rollback=Rollback.NONE, idempotent="x")
            def create(self, ctx: StepContext[Params]) -> StepOutcome:
                return Done()

            @postcondition("x")
            def ok(self, ctx: StepContext[Params]) -> Evidence:
                return Evidence(True)

            @postcondition("y")  # type: ignore[no-redef]
            def ok(self, ctx: StepContext[Params]) -> Evidence:  # noqa: F811
                return Evidence(True)


@pytest.mark.parametrize("name", ["probe", "check", "preflight", "verify_postconditions", "compensate_create"])
def test_refuses_a_name_the_framework_uses(name: str) -> None:
    """A step named like the framework's own parts (or its compensation steps) is refused by name."""
    body: dict[str, Any] = {}

    def run(self: Any, ctx: StepContext[Params]) -> StepOutcome:
        return Done()

    run.__name__ = name
    body[name] = step(rollback=Rollback.NONE, idempotent="x")(run)

    def ok(self: Any, ctx: StepContext[Params]) -> Evidence:
        return Evidence(True)

    body["ok"] = postcondition("x")(ok)
    cls = types.new_class("Broken", (Workflow[Params],), exec_body=lambda ns: ns.update(body))
    with pytest.raises(DefinitionError) as info:
        _declare()(cls)
    assert str(info.value) == (
        f"workflow 'test.thing' (Broken): {name!r} clashes with a name the framework uses itself; rename it"
    )


def test_refuses_a_step_and_a_postcondition_sharing_a_name() -> None:
    """Evidence and steps are addressed by name in the audit log; one name, one thing."""
    body: dict[str, Any] = {}

    def same(self: Any, ctx: StepContext[Params]) -> Any:
        return Done()

    body["same"] = step(rollback=Rollback.NONE, idempotent="x")(same)
    body["same_check"] = postcondition("x")(same)
    with pytest.raises(DefinitionError, match="the name 'same' is used by a step and a postcondition"):
        _declare()(types.new_class("Broken", (Workflow[Params],), exec_body=lambda ns: ns.update(body)))


def test_refuses_a_workflow_without_a_postcondition() -> None:
    """Success needs evidence: a workflow that checks nothing cannot succeed."""
    with pytest.raises(DefinitionError) as info:

        @_declare()
        class Broken(Workflow[Params]):
            @step(rollback=Rollback.NONE, idempotent="x")
            def create(self, ctx: StepContext[Params]) -> StepOutcome:
                return Done()

    assert str(info.value) == (
        "workflow 'test.thing' (Broken): it declares no postcondition: success needs evidence "
        "(decorate a check with @postcondition)"
    )


def test_refuses_a_workflow_without_an_input_model() -> None:
    """The input model comes from Workflow[Model]; a bare subclass is refused with that advice."""
    with pytest.raises(DefinitionError, match=r"subclass Workflow\[<input model>\]"):

        @_declare()
        class Broken(Workflow):  # type: ignore[type-arg]
            @step(rollback=Rollback.NONE, idempotent="x")
            def create(self, ctx: StepContext[Params]) -> StepOutcome:
                return Done()

            @postcondition("x")
            def ok(self, ctx: StepContext[Params]) -> Evidence:
                return Evidence(True)


def test_registry_refuses_an_undecorated_class_and_a_duplicate_name() -> None:
    """Only decorated workflows register, each name once."""

    class Bare(Workflow[Params]):
        pass

    with pytest.raises(DefinitionError, match="'Bare' is not a workflow: decorate it with @workflow"):
        Registry([Bare])
    with pytest.raises(DefinitionError, match="registered twice"):
        Registry([*CATALOG, *CATALOG])


def test_irreversible_steps_need_two_approvers_by_default() -> None:
    """An irreversible step raises the default number of approvers to two."""

    @_declare()
    class Drop(Workflow[Params]):
        @step(rollback=Rollback.IRREVERSIBLE, idempotent="dropping twice is harmless")
        def drop(self, ctx: StepContext[Params]) -> StepOutcome:
            return Done()

        @postcondition("gone")
        def gone(self, ctx: StepContext[Params]) -> Evidence:
            return Evidence(True)

    assert definition_of(Drop).approvals == 2
