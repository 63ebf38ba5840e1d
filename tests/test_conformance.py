"""The conformance kit, and the whole catalog put through it: static checks and the crash matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from conformance import (
    CrashCase,
    Example,
    Fault,
    ScriptedAdapters,
    ScriptedWorld,
    check_workflow,
    crash_cases,
    run_crash_case,
)
from conformance.scripted_aws import add_cluster, add_instance, add_policy, add_secret, set_replication
from conformance.scripted_pg import add_database, add_role
from workflows.authoring import definition_of
from workflows.catalog import CATALOG, build_registry
from workflows.config import Environment
from workflows.errors import AlreadyExists, OutcomeUnknown, PermanentError, TransientError
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


def _source(world: ScriptedWorld) -> None:
    add_instance(world, "billing-db")


def _broken_replica(world: ScriptedWorld) -> None:
    add_instance(world, "billing-db")
    add_instance(world, "billing-db-r1", source_identifier="billing-db")
    set_replication(world, "billing-db-r1", "error")


def _cluster(world: ScriptedWorld) -> None:
    add_cluster(world, "analytics", writer="analytics-1", readers=["analytics-2", "analytics-3"])


def _policy(world: ScriptedWorld) -> None:
    add_policy(world, READONLY)


def _billing(world: ScriptedWorld) -> None:
    add_database(world, "billing")
    add_role(world, "billing", "app_user", "old-password-1")
    add_secret(
        world,
        "prod/billing/app_user",
        {
            "engine": "postgres",
            "host": "db.scripted.local",
            "port": 5432,
            "username": "app_user",
            "password": "old-password-1",
            "dbname": "billing",
        },
    )


def _billing_settings(workdir: Path) -> dict[str, Any]:
    migrations = workdir / "migrations"
    migrations.mkdir(exist_ok=True)
    (migrations / "1_create_users.sql").write_text("CREATE TABLE users (id int primary key, email text);\n")
    (migrations / "2_users_email.sql").write_text(
        "-- opsbot:no-transaction\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n"
    )
    database = {
        "dsn_env": "BILLING_DSN",
        "migrations": str(migrations),
        "secrets": {"app_user": "prod/billing/app_user"},
    }
    return {"databases": {"billing": database}}


READONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
# One valid request per catalog workflow, and the world it succeeds in. A workflow added to the catalog without
# an example here fails `test_every_catalog_workflow_has_an_example`, so nothing escapes the matrix.
EXAMPLES: dict[str, Example] = {
    "rds.create-replica": Example({"source": "billing-db", "replica": "billing-db-r1"}, _source),
    "rds.resize": Example({"instance": "billing-db", "instance_class": "db.r6g.large"}, _source),
    "rds.snapshot": Example({"instance": "billing-db"}, _source),
    "rds.rebuild-replica": Example({"replica": "billing-db-r1"}, _broken_replica),
    "rds.resize-cluster": Example({"cluster": "analytics", "instance_class": "db.r6g.xlarge"}, _cluster),
    "pg.migrate": Example({"database": "billing"}, _billing, settings=_billing_settings),
    "db.rotate-password": Example({"database": "billing", "role": "app_user"}, _billing, settings=_billing_settings),
    "iam.create-role": Example(
        {"role": "etl-reader", "trusted_service": "glue.amazonaws.com", "policy_arn": READONLY}, _policy
    ),
}
REGISTRY = build_registry()
CASES = crash_cases(REGISTRY)


def test_every_catalog_workflow_has_an_example() -> None:
    """The crash matrix covers the whole catalog: every workflow in it has a conformance example."""
    assert {definition_of(c).name for c in CATALOG} <= set(EXAMPLES)


@pytest.mark.parametrize("cls", CATALOG, ids=lambda c: definition_of(c).name)
def test_every_catalog_workflow_passes_the_static_check(cls: type, tmp_path: Path) -> None:
    """Declaration, identifiers and checkpointing of external ids: no problems for any catalog workflow."""
    example = EXAMPLES[definition_of(cls).name]
    world = ScriptedWorld()
    example.seed(world)
    env = Environment.model_validate(example.environment_config(tmp_path))
    assert check_workflow(cls, example.params, world, env) == []


def test_the_matrix_has_three_points_for_every_step_and_compensation() -> None:
    """rds.create-replica: 2 steps + verification + 1 compensation, 3 crash points each."""
    mine = [c for c in CASES if c.workflow == "rds.create-replica"]
    assert len(mine) == 12
    steps = {"create_replica", "await_available", "verify_postconditions", "compensate_create_replica"}
    assert {c.step for c in mine} == steps


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_crash_matrix(case: CrashCase, tmp_path: Path) -> None:
    """SIGKILL at the case's point, recovery in another process: right final state, each effect once, resolved."""
    report = run_crash_case(case, REGISTRY, EXAMPLES[case.workflow], tmp_path)
    assert report.ok, report.problems
    assert report.resolution


# --- the kit catches what it should --------------------------------------------------------------


class LooseParams(BaseModel):
    name: str = Field(min_length=1, max_length=64)  # no pattern: whitespace, quotes, ';' and '/' all pass


class StrictParams(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")


def _kit_workflow(params: type[BaseModel], checkpoint: bool) -> type:
    @workflow(
        name="test.kit",
        summary="s",
        risk=Risk.LOW,
        blast_radius="none",
        request_roles=("dba",),
        approve_roles=("dba-lead",),
    )
    class Kit(Workflow[params]):  # type: ignore[valid-type]
        def preflight(self, ctx: PreflightContext[BaseModel]) -> PlanDraft:
            return PlanDraft(targets=(), mutations=(), observed={})

        @step(rollback=Rollback.NONE)
        def create(self, ctx: StepContext[BaseModel]) -> StepOutcome:
            made = ctx.adapters.rds("us-east-1").create_read_replica(
                replica_id="kit-r1", source_id="billing-db", instance_class="db.t3.medium", tags={}
            )
            if checkpoint:
                ctx.checkpoint(replica_id=made.identifier)
            return Done(external_ids={"replica_id": made.identifier})

        @create.probe
        def _probe(self, ctx: StepContext[BaseModel]) -> Observation:
            return Absent("")

        @postcondition("ok")
        def ok(self, ctx: StepContext[BaseModel]) -> Evidence:
            return Evidence(True)

    return Kit


def test_the_static_check_finds_an_input_model_that_accepts_bad_identifiers() -> None:
    """A field without a pattern lets whitespace, quotes, semicolons and path separators through: each named."""
    problems = check_workflow(_kit_workflow(LooseParams, checkpoint=True), {"name": "billing"})
    kinds = {p.split("accepts ")[1].split(":")[0] for p in problems}
    assert {
        "whitespace",
        "quotes",
        "semicolons",
        "path separators",
        "shell metacharacters",
        "unicode lookalikes",
    } <= kinds
    assert check_workflow(_kit_workflow(StrictParams, checkpoint=True), {"name": "billing"}) == []


def test_the_static_check_finds_external_ids_reported_but_never_checkpointed() -> None:
    """A step that returns a created id without `ctx.checkpoint` first would lose it to a crash: refused."""
    world = ScriptedWorld()
    add_instance(world, "billing-db")
    problems = check_workflow(_kit_workflow(StrictParams, checkpoint=False), {"name": "billing"}, world)
    assert problems == [
        "workflow 'test.kit': step 'create' reports external ids ['replica_id'] it did not checkpoint when they "
        "became known (call ctx.checkpoint(...) right after the call that creates them)"
    ]


def test_the_static_check_reports_an_undecorated_class() -> None:
    """A class that never went through @workflow is reported, not crashed on."""

    class Bare(Workflow[StrictParams]):
        pass

    assert check_workflow(Bare, {"name": "x"}) == ["'Bare' is not a workflow: decorate it with @workflow(...)"]


# --- the scripted world ----------------------------------------------------------------------------


def test_scripted_faults_fail_calls_as_told_and_count_only_applied_effects(tmp_path: Path) -> None:
    """Transient, permanent and unknown faults apply nothing; a lost answer applies the effect and hides it."""
    world = ScriptedWorld(tmp_path / "world.json")
    add_instance(world, "billing-db")
    rds = ScriptedAdapters(world).rds("us-east-1")

    def create() -> object:
        return rds.create_read_replica(replica_id="r1", source_id="billing-db", instance_class="db.t3.medium", tags={})

    failures: list[tuple[Fault, type[Exception]]] = [
        (Fault.TRANSIENT, TransientError),
        (Fault.PERMANENT, PermanentError),
        (Fault.UNKNOWN, OutcomeUnknown),
    ]
    for fault, error in failures:
        world.fail("create_read_replica", fault)
        with pytest.raises(error):
            create()
        assert world.effects() == {}
    world.fail("create_read_replica", Fault.LOST_ANSWER)
    with pytest.raises(OutcomeUnknown):
        create()
    assert world.effects() == {"create_read_replica:r1": 1}
    with pytest.raises(AlreadyExists):
        create()
    assert ScriptedWorld(tmp_path / "world.json").effects() == {"create_read_replica:r1": 1}  # survives the process


def test_the_crash_matrix_catches_a_probe_that_cannot_see_the_effect(tmp_path: Path) -> None:
    """A probe that always answers 'absent' makes recovery create twice: the kit's report says so."""

    @workflow(
        name="test.blind",
        summary="s",
        risk=Risk.LOW,
        blast_radius="none",
        request_roles=("dba",),
        approve_roles=("dba-lead",),
    )
    class Blind(Workflow[StrictParams]):
        def preflight(self, ctx: PreflightContext[StrictParams]) -> PlanDraft:
            return PlanDraft(targets=(), mutations=(), observed={})

        @step(rollback=Rollback.NONE)
        def create(self, ctx: StepContext[StrictParams]) -> StepOutcome:
            made = ctx.adapters.rds("us-east-1").create_read_replica(
                replica_id=ctx.params.name, source_id="billing-db", instance_class="db.t3.medium", tags={}
            )
            ctx.checkpoint(replica_id=made.identifier)
            return Done(external_ids={"replica_id": made.identifier})

        @create.probe
        def _blind(self, ctx: StepContext[StrictParams]) -> Observation:
            return Absent("this probe never looks")

        @postcondition("ok")
        def ok(self, ctx: StepContext[StrictParams]) -> Evidence:
            return Evidence(True)

    registry = Registry([Blind])
    case = CrashCase("test.blind", "create", "after_effect")
    report = run_crash_case(case, registry, Example({"name": "blind-r1"}, _source), tmp_path)
    assert not report.ok
    assert any("recovery ended failed" in p for p in report.problems), report.problems
