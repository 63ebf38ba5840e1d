"""Steps as the executor and the reconciler see them: the plan of steps, bounded calls, observation."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from workflows.context import StepContext
from workflows.errors import OutcomeUnknown
from workflows.model import Mode, StepRecord, StepStatus
from workflows.outcomes import Absent, Done, Observation, Pending, StepOutcome, Unclear
from workflows.registry import Rollback, Step, Workflow, WorkflowSpec

VERIFY = Step("verify_postconditions", rollback=Rollback.NONE, timeout=120.0, description="check postconditions")
COMPENSATION_SEQ_BASE = 1000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PlannedStep:
    seq: int
    step: Step
    run: Callable[[StepContext], StepOutcome]
    probe: Callable[[StepContext], Observation] | None
    rerun_safe: bool


class StepRunner:
    """Runs step calls on one worker thread, bounded in time, renewing the lease while they run.

    A call past its timeout has an unknown outcome: its thread cannot be killed, so the runner abandons it
    (and its thread) and later calls get a fresh thread; the step is then resolved by observation.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    def call(
        self,
        fn: Callable[[], T],
        seconds: float,
        what: str,
        heartbeat: Callable[[], None] | None = None,
        every: float = 10.0,
    ) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="step")
        future = self._pool.submit(fn)
        deadline = time.monotonic() + seconds
        while True:
            try:
                return future.result(timeout=min(every, max(deadline - time.monotonic(), 0.0)))
            except FutureTimeout:
                if time.monotonic() >= deadline:
                    self.close()
                    raise OutcomeUnknown(
                        f"{what} exceeded its timeout of {seconds:g}s; its outcome is unknown"
                    ) from None
                if heartbeat is not None:
                    heartbeat()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def call_with_timeout(fn: Callable[[], T], seconds: float, what: str) -> T:
    """One bounded call on its own thread (probes from the reconciler)."""
    runner = StepRunner()
    try:
        return runner.call(fn, seconds, what)
    finally:
        runner.close()


def planned_steps(spec: WorkflowSpec, wf: Workflow, mode: Mode, records: dict[int, StepRecord]) -> list[PlannedStep]:
    """The forward steps plus the verification step, or the compensations of what succeeded, in reverse."""
    if mode is Mode.FORWARD:
        out = [
            PlannedStep(i, s, wf.action(s), wf.probe(s), s.convergence_window is not None)
            for i, s in enumerate(spec.steps, 1)
        ]
        out.append(PlannedStep(len(spec.steps) + 1, VERIFY, lambda ctx: verify(spec, wf, ctx), None, True))
        return out
    out = []
    for i, s in reversed(list(enumerate(spec.steps, 1))):
        rec = records.get(i)
        comp = wf.compensation(s)
        if s.rollback is Rollback.COMPENSATE and comp and rec and rec.status is StepStatus.SUCCEEDED:
            name = f"compensate_{s.name}"
            out.append(PlannedStep(COMPENSATION_SEQ_BASE + i, Step(name, timeout=s.timeout), comp, None, True))
    return out


def verify(spec: WorkflowSpec, wf: Workflow, ctx: StepContext) -> StepOutcome:
    """Success needs evidence: every postcondition checked and true, or the intent is still converging."""
    evidence = {p.name: wf.check(p)(ctx) for p in spec.postconditions}
    failing = [name for name, ev in evidence.items() if not ev.ok]
    detail = {name: {"ok": ev.ok, **ev.detail} for name, ev in evidence.items()}
    if failing:
        return Pending(f"postconditions not yet met: {', '.join(failing)}", retry_after=10.0, observed=detail)
    return Done(output={"evidence": detail})


def window_start(rec: StepRecord) -> datetime:
    """When a step's convergence window opened: its first start, or the last operator resume."""
    since = rec.output.get("window_from")
    return datetime.fromisoformat(since) if since else rec.started_at


def observe(ps: PlannedStep, ctx: StepContext, active: bool = False) -> Observation:
    """Ask the world whether a step's effect exists.

    Its probe answers when it has one. A step that is safe to repeat (a convergence wait) is either reported
    Absent, so the executor simply runs it again, or, when `active`, run as its own observation.
    """
    try:
        if ps.probe is not None:
            return call_with_timeout(lambda: ps.probe(ctx), ps.step.timeout, f"probe {ps.step.name}")  # type: ignore[misc]
        if ps.rerun_safe:
            return (
                call_with_timeout(lambda: ps.run(ctx), ps.step.timeout, ps.step.name)
                if active
                else Absent("the step is safe to repeat")
            )
        return Unclear(f"{ps.step.name} has no probe, so whether it took effect cannot be observed")
    except Exception as exc:
        return Unclear(f"observing {ps.step.name} failed: {exc}")
