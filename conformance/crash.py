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

from conformance.faults import KillAtPoint
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

LEASE = 5.0
REQUESTER = "kit-requester"


@dataclass(frozen=True, slots=True)
class Example:
    """Valid parameters for a workflow, and how to seed a scripted world so that they succeed."""

    params: Mapping[str, Any]
    seed: Callable[[ScriptedWorld], None]
    environment: str = "conformance"


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
        names = [s.name for s in spec.steps] + [VERIFY_STEP]
        names += [f"{COMPENSATION_PREFIX}{s.name}" for s in reversed(spec.steps) if s.compensation is not None]
        cases += [CrashCase(spec.name, name, phase) for name in names for phase in PHASES]
    return cases


def kit_config(spec: WorkflowDefinition, environment: str) -> Any:
    """Roles and a policy under which the kit's requester and approvers may do what the workflow needs."""
    approvers = [f"kit-approver-{i}" for i in range(1, spec.approvals + 2)]  # one more proposes compensations
    roles: dict[str, list[str]] = {}
    for role in spec.request_roles:
        roles.setdefault(role, []).append(REQUESTER)
    for role in spec.approve_roles:
        roles.setdefault(role, []).extend(approvers)
    return parse_config({"environments": {environment: {"aws_region": "us-east-1"}}, "roles": roles})


class _LaterClock:
    """The recovering process's clock: far enough ahead that the dead executor's lease has lapsed."""

    def __init__(self, ahead: float) -> None:
        self.ahead = ahead

    def now(self) -> datetime:
        return SystemClock().now() + timedelta(seconds=self.ahead)

    def advance(self, seconds: float) -> None:
        self.ahead += seconds


def _runtime(
    registry: Registry, spec: WorkflowDefinition, example: Example, db_url: str, world: Path, **kw: Any
) -> Runtime:
    return Runtime(
        store=SqlStore(make_engine(db_url)),
        registry=registry,
        config=kit_config(spec, example.environment),
        adapters=ScriptedAdapters(ScriptedWorld(world)),
        lease_seconds=LEASE,
        **kw,
    )


def _drive(rt: Runtime, intent_id: IntentId, rounds: int = 40, clock: _LaterClock | None = None) -> Intent:
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
        if clock is not None:
            clock.advance(60.0)  # converging checks come due
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


def run_crash_case(case: CrashCase, registry: Registry, example: Example, workdir: Path) -> CrashReport:
    """Set up, crash a forked executor at the case's point, recover in this process, and report what went wrong."""
    spec = registry.get(case.workflow)
    report = CrashReport(case)
    db_url, world_path = _migrated_db(workdir), workdir / "world.json"
    world = ScriptedWorld(world_path)
    example.seed(world)
    rt = _runtime(registry, spec, example, db_url, world_path)
    ops = OpsService(rt)
    intent = ops.request(spec.name, dict(example.params), example.environment, REQUESTER).intent
    _approve(ops, spec, intent.id)
    if case.compensation:
        done = _drive(rt, intent.id)
        if done.status is not IntentStatus.SUCCEEDED:
            report.problems.append(
                f"the forward run before compensating ended {done.status.value}: {done.status_reason}"
            )
            return report
        proposer = f"kit-approver-{spec.approvals + 1}"  # neither the requester nor an approver of what it undoes
        proposed = ops.compensate(intent.id, proposer, "conformance: undo")
        _approve(ops, spec, proposed.id)
    before = world.effects()

    point = fault_point(case.step, case.phase)
    child = multiprocessing.get_context("fork").Process(
        target=_crash_child, args=(registry, spec, example, db_url, world_path, intent.id, point)
    )
    child.start()
    child.join(120)
    if child.exitcode != -signal.SIGKILL:
        report.problems.append(f"the executor was not killed at {point} (exit code {child.exitcode}): never reached?")
        return report

    clock = _LaterClock(LEASE + 1.0)
    recovered = _runtime(registry, spec, example, db_url, world_path, clock=clock)
    final = _drive(recovered, intent.id, clock=clock)
    report.final = final.status
    expected = IntentStatus.COMPENSATED if case.compensation else IntentStatus.SUCCEEDED
    if final.status is not expected:
        report.problems.append(f"recovery ended {final.status.value}, not {expected.value}: {final.status_reason}")
    report.effects = world.effects()
    applied_now = {k: n - before.get(k, 0) for k, n in report.effects.items() if n != before.get(k, 0)}
    report.problems += [f"effect {k} applied {n} times" for k, n in report.effects.items() if n != 1]
    if case.compensation and not applied_now:
        report.problems.append("the compensation applied no effect")
    _check_resolution(recovered, intent.id, case, spec, report)
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
) -> None:
    faults: FaultSeam = KillAtPoint(point)
    rt = _runtime(registry, spec, example, db_url, world, faults=faults)
    _drive(rt, intent_id)
    os._exit(0)  # the point was never reached


def _check_resolution(
    rt: Runtime, intent_id: IntentId, case: CrashCase, spec: WorkflowDefinition, report: CrashReport
) -> None:
    with rt.store.transaction() as tx:
        events = tx.events(intent_id)
        steps = {s.name: s for s in tx.steps(intent_id)}
    kinds = [(e.kind, e.data.get("step")) for e in events]
    record = steps.get(case.step)
    if record is None or record.status is not StepStatus.SUCCEEDED:
        report.problems.append(f"step {case.step} is not recorded as succeeded")
        return
    lost = [e for e in events if e.kind == EventKind.EXECUTOR_LOST]
    if not lost:
        report.problems.append("no executor_lost event: the crash was not noticed")
        return
    if case.phase == "after_checkpoint":
        report.resolution = "replayed from its checkpoint"
        if case.step in lost[-1].data.get("unknown_steps", []) or (EventKind.STEP_RERUN, case.step) in kinds:
            report.problems.append(f"{case.step} was recorded, yet treated as uncertain or run again")
        if record.attempts != 1:
            report.problems.append(f"{case.step} ran {record.attempts} times after its outcome was recorded")
        return
    if (EventKind.STEP_UNKNOWN, case.step) not in kinds:
        report.problems.append(f"{case.step} was not marked unknown after the crash")
        return
    after = kinds[kinds.index((EventKind.STEP_UNKNOWN, case.step)) :]
    observed = (EventKind.STEP_RESOLVED_BY_OBSERVATION, case.step) in after
    rerun = (EventKind.STEP_RERUN, case.step) in after
    report.resolution = "resolved by its probe" if observed else "run again" if rerun else ""
    if not report.resolution:
        report.problems.append(f"{case.step} was neither observed nor run again after the crash")
    step = spec.step(case.step)
    if case.phase == "after_effect" and step is not None and step.probe is not None and not observed:
        report.problems.append(f"{case.step} has a probe, but its applied effect was not found by observation")
