"""The crash matrix: for every step and every compensation of every workflow, SIGKILL the executor before the
effect, after the effect and after the checkpoint, then recover in another process and check the outcome.

A case passes when recovery ends in the right final state, each side effect was applied exactly once (counted by
the scripted world, which survives the killed process in a file), and the interrupted step was resolved by
observation (its probe) or, for a step declared idempotent, by running it again; both are in the audit log.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from conformance.faults import KillAtPoint, matches
from conformance.world import ScriptedAdapters, ScriptedWorld
from store.db import make_engine
from store.migrate import upgrade
from store.sql import SqlStore
from workflows.authoring import COMPENSATION_PREFIX, VERIFY_STEP, WorkflowDefinition
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.executor import PHASES, Executor, fault_point
from workflows.model import EventKind, Intent, IntentId, IntentStatus, StepStatus
from workflows.ports import FaultSeam
from workflows.reconciler import Reconciler
from workflows.registry import Registry
from workflows.runtime import SystemClock
from workflows.service import OpsService
from workflows.steps import split_name

LEASE = 5.0
REQUESTER = "kit-requester"


def _no_settings(_workdir: Path) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class Example:
    """Valid parameters for a workflow, how to seed a scripted world so that they succeed, and the environment's
    settings it needs (`settings(workdir)`: e.g. databases, with a migrations directory written under workdir)."""

    params: Mapping[str, Any]
    seed: Callable[[ScriptedWorld], None]
    environment: str = "conformance"
    settings: Callable[[Path], dict[str, Any]] = _no_settings

    def environment_config(self, workdir: Path) -> dict[str, Any]:
        return {"aws_region": "us-east-1", **self.settings(workdir)}


@dataclass(frozen=True, slots=True)
class CrashCase:
    workflow: str
    step: str  # as checkpointed: a forward step, `verify_postconditions`, or `compensate_<step>`
    phase: str

    @property
    def compensation(self) -> bool:
        return self.step.startswith(COMPENSATION_PREFIX)

    @property
    def id(self) -> str:
        return f"{self.workflow}:{self.step}:{self.phase}"


@dataclass
class CrashReport:
    case: CrashCase
    final: IntentStatus | None = None
    effects: dict[str, int] = field(default_factory=dict)
    resolution: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def crash_cases(registry: Registry) -> list[CrashCase]:
    """Three crash points for every step (verification included) and every compensation of every workflow."""
    cases = []
    for spec in registry:
        forward = [f"{s.name}[*]" if s.each else s.name for s in spec.steps]
        compensated = [f"{s.name}[*]" if s.each else s.name for s in reversed(spec.steps) if s.compensation]
        names = [*forward, VERIFY_STEP, *(f"{COMPENSATION_PREFIX}{n}" for n in compensated)]
        cases += [CrashCase(spec.name, name, phase) for name in names for phase in PHASES]
    return cases


def kit_config(spec: WorkflowDefinition, environment: str, settings: dict[str, Any] | None = None) -> Any:
    """Roles and a policy under which the kit's requester and approvers may do what the workflow needs."""
    approvers = [f"kit-approver-{i}" for i in range(1, spec.approvals + 2)]  # one more proposes compensations
    roles: dict[str, list[str]] = {}
    for role in spec.request_roles:
        roles.setdefault(role, []).append(REQUESTER)
    for role in spec.approve_roles:
        roles.setdefault(role, []).extend(approvers)
    env = settings or {"aws_region": "us-east-1"}
    return parse_config({"environments": {environment: env}, "roles": roles})


class _CountingIds:
    """Ids that are the same in every run of one example, so a crash run's effects compare with the baseline's."""

    def __init__(self, prefix: str = "c0ffee") -> None:
        self.prefix, self.n = prefix, 0

    def new_id(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n:010x}"


class _JumpingClock:
    """Real time, jumped forward to whatever is due next, so convergence and leases need no sleeping."""

    def __init__(self, ahead: float = 0.0) -> None:
        self.ahead = ahead

    def now(self) -> datetime:
        return SystemClock().now() + timedelta(seconds=self.ahead)

    def jump_to(self, moment: datetime) -> None:
        self.ahead += max((moment - self.now()).total_seconds(), 0.0) + 0.001


def _runtime(
    registry: Registry, spec: WorkflowDefinition, example: Example, db_url: str, world: Path, **kw: Any
) -> Runtime:
    return Runtime(
        store=SqlStore(make_engine(db_url)),
        registry=registry,
        config=kit_config(spec, example.environment, example.environment_config(world.parent)),
        adapters=ScriptedAdapters(ScriptedWorld(world)),
        lease_seconds=LEASE,
        **kw,
    )


def _drive(rt: Runtime, intent_id: IntentId, clock: _JumpingClock, rounds: int = 60) -> Intent:
    """Run executor and reconciler until the intent settles (terminal, or handed to a human)."""
    executor, reconciler = Executor(rt, f"kit-{os.getpid()}"), Reconciler(rt)
    intent: Intent | None = None
    for _ in range(rounds):
        reconciler.reconcile_due()
        executor.run_until_idle()
        with rt.store.transaction() as tx:
            intent = tx.get_intent(intent_id)
        assert intent is not None
        if intent.status.terminal or intent.status.needs_human:
            return intent
        if intent.next_check_at is not None:
            clock.jump_to(intent.next_check_at)  # the next convergence check (or retry) comes due
    assert intent is not None
    return intent


def _approve(ops: OpsService, spec: WorkflowDefinition, intent_id: IntentId) -> None:
    for i in range(1, spec.approvals + 1):
        intent = ops.get(intent_id)
        ops.approve(intent_id, f"kit-approver-{i}", intent.plan_hash)


_TEMPLATE: dict[str, Path] = {}


def _migrated_db(workdir: Path) -> str:
    """A fresh SQLite intent store, copied from one migrated template per process (migrating is the slow part)."""
    if "db" not in _TEMPLATE:
        template = Path(tempfile.mkdtemp(prefix="opsbot-kit-")) / "template.db"
        upgrade(f"sqlite:///{template}")
        _TEMPLATE["db"] = template
    target = workdir / "intents.db"
    shutil.copy(_TEMPLATE["db"], target)
    return f"sqlite:///{target}"


@dataclass
class _Setup:
    rt: Runtime
    ops: OpsService
    world: ScriptedWorld
    clock: _JumpingClock
    intent: Intent
    db_url: str


def _set_up(registry: Registry, spec: WorkflowDefinition, example: Example, workdir: Path, compensate: bool) -> _Setup:
    """A requested, approved intent (run forward and with its compensation approved, for a compensation case)."""
    db_url, world_path = _migrated_db(workdir), workdir / "world.json"
    world = ScriptedWorld(world_path)
    example.seed(world)
    clock = _JumpingClock()
    rt = _runtime(registry, spec, example, db_url, world_path, clock=clock, ids=_CountingIds())
    ops = OpsService(rt)
    intent = ops.request(spec.name, dict(example.params), example.environment, REQUESTER).intent
    _approve(ops, spec, intent.id)
    if compensate:
        done = _drive(rt, intent.id, clock)
        if done.status is not IntentStatus.SUCCEEDED:
            raise AssertionError(f"the forward run before compensating ended {done.status.value}: {done.status_reason}")
        proposer = f"kit-approver-{spec.approvals + 1}"  # neither the requester nor an approver of what it undoes
        ops.compensate(intent.id, proposer, "conformance: undo")
        _approve(ops, spec, intent.id)
    return _Setup(rt, ops, world, clock, ops.get(intent.id), db_url)


_BASELINES: dict[tuple[int, str, bool], dict[str, int]] = {}


def baseline_effects(registry: Registry, example: Example, workflow: str, compensate: bool) -> dict[str, int]:
    """The side effects of the same request run to the end without any crash: what "exactly once" means."""
    key = (id(registry), workflow, compensate)
    if key not in _BASELINES:
        spec = registry.get(workflow)
        workdir = Path(tempfile.mkdtemp(prefix="opsbot-kit-baseline-"))
        try:
            setup = _set_up(registry, spec, example, workdir, compensate)
            final = _drive(setup.rt, setup.intent.id, setup.clock)
            expected = IntentStatus.COMPENSATED if compensate else IntentStatus.SUCCEEDED
            if final.status is not expected:
                raise AssertionError(f"without any crash, {workflow} ended {final.status.value}: {final.status_reason}")
            _BASELINES[key] = setup.world.effects()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return dict(_BASELINES[key])


def run_crash_case(case: CrashCase, registry: Registry, example: Example, workdir: Path) -> CrashReport:
    """Set up, crash a forked executor at the case's point, recover in this process, and report what went wrong."""
    spec = registry.get(case.workflow)
    report = CrashReport(case)
    expected_effects = baseline_effects(registry, example, case.workflow, case.compensation)
    try:
        setup = _set_up(registry, spec, example, workdir, case.compensation)
    except AssertionError as exc:
        report.problems.append(str(exc))
        return report
    rt, world, clock, intent, db_url = setup.rt, setup.world, setup.clock, setup.intent, setup.db_url
    world_path = workdir / "world.json"

    point = fault_point(case.step, case.phase)
    child = multiprocessing.get_context("fork").Process(
        target=_crash_child, args=(registry, spec, example, db_url, world_path, intent.id, point, clock.ahead)
    )
    child.start()
    child.join(120)
    if child.exitcode != -signal.SIGKILL:
        report.problems.append(f"the executor was not killed at {point} (exit code {child.exitcode}): never reached?")
        return report

    with rt.store.transaction() as tx:
        dead = tx.get_intent(intent.id)
    assert dead is not None
    later = _JumpingClock(clock.ahead)
    if dead.lease_expires_at is not None:
        later.jump_to(dead.lease_expires_at)  # the dead executor's lease has lapsed
    recovered = _runtime(registry, spec, example, db_url, world_path, clock=later, ids=_CountingIds("beef"))
    final = _drive(recovered, intent.id, later)
    report.final = final.status
    expected = IntentStatus.COMPENSATED if case.compensation else IntentStatus.SUCCEEDED
    if final.status is not expected:
        report.problems.append(f"recovery ended {final.status.value}, not {expected.value}: {final.status_reason}")
    report.effects = world.effects()
    for key in sorted(set(report.effects) | set(expected_effects)):
        got, want = report.effects.get(key, 0), expected_effects.get(key, 0)
        if got != want:
            report.problems.append(f"effect {key} applied {got} times; a run without a crash applies it {want} times")
    _check_resolution(recovered, intent.id, case, spec, report, finished_before=dead.status is expected)
    if not recovered.store.verify_audit().ok:
        report.problems.append("the audit chain does not verify")
    return report


def _crash_child(
    registry: Registry,
    spec: WorkflowDefinition,
    example: Example,
    db_url: str,
    world: Path,
    intent_id: IntentId,
    point: str,
    ahead: float,
) -> None:
    faults: FaultSeam = KillAtPoint(point)
    clock = _JumpingClock(ahead)
    rt = _runtime(registry, spec, example, db_url, world, faults=faults, clock=clock, ids=_CountingIds("dead"))
    _drive(rt, intent_id, clock)
    os._exit(0)  # the point was never reached


def _check_resolution(
    rt: Runtime,
    intent_id: IntentId,
    case: CrashCase,
    spec: WorkflowDefinition,
    report: CrashReport,
    finished_before: bool = False,
) -> None:
    with rt.store.transaction() as tx:
        events = tx.events(intent_id)
        steps = {s.name: s for s in tx.steps(intent_id)}
    kinds = [(e.kind, e.data.get("step")) for e in events]
    # A repeated step's case names its first run (`name[*]`): the checkpoint that matched the glob first.
    step_name = next((n for n in sorted(steps, key=lambda n: steps[n].seq) if matches(n, case.step)), case.step)
    record = steps.get(step_name)
    if record is None or record.status is not StepStatus.SUCCEEDED:
        report.problems.append(f"step {case.step} is not recorded as succeeded")
        return
    if finished_before:
        # The last step's success is committed with the verdict: a crash after it finds the intent finished.
        if case.phase != "after_checkpoint":
            report.problems.append(f"the intent was already finished when the executor died at {case.phase}")
        report.resolution = "committed with the verdict: nothing to recover"
        if record.attempts != 1 or (EventKind.STEP_RERUN, step_name) in kinds:
            report.problems.append(f"{step_name} ran again after the verdict was recorded")
        return
    lost = [e for e in events if e.kind == EventKind.EXECUTOR_LOST]
    if not lost:
        report.problems.append("no executor_lost event: the crash was not noticed")
        return
    if case.phase == "after_checkpoint":
        report.resolution = "replayed from its checkpoint"
        if step_name in lost[-1].data.get("unknown_steps", []) or (EventKind.STEP_RERUN, step_name) in kinds:
            report.problems.append(f"{step_name} was recorded, yet treated as uncertain or run again")
        if record.attempts != 1:
            report.problems.append(f"{step_name} ran {record.attempts} times after its outcome was recorded")
        return
    if (EventKind.STEP_UNKNOWN, step_name) not in kinds:
        report.problems.append(f"{step_name} was not marked unknown after the crash")
        return
    after = kinds[kinds.index((EventKind.STEP_UNKNOWN, step_name)) :]
    observed = (EventKind.STEP_RESOLVED_BY_OBSERVATION, step_name) in after
    rerun = (EventKind.STEP_RERUN, step_name) in after
    report.resolution = "resolved by its probe" if observed else "run again" if rerun else ""
    if not report.resolution:
        report.problems.append(f"{step_name} was neither observed nor run again after the crash")
    step = spec.step(split_name(step_name)[0])
    if case.phase == "after_effect" and step is not None and step.probe is not None and not observed:
        report.problems.append(f"{case.step} has a probe, but its applied effect was not found by observation")
