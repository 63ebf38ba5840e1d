"""Steps as the executor and the reconciler see them: the plan of steps, bounded calls, observation."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from workflows.authoring import COMPENSATION_PREFIX, VERIFY_STEP, Rollback, StepSpec, Workflow, WorkflowDefinition
from workflows.context import StepContext
from workflows.errors import OutcomeUnknown, PermanentError
from workflows.model import Mode, StepRecord, StepStatus
from workflows.outcomes import Absent, Done, Observation, Pending, StepOutcome, Unclear
from workflows.telemetry import span

COMPENSATION_SEQ_BASE = 1000
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """A step as one run executes it: its checkpoint sequence number and its calls bound to the workflow."""

    seq: int
    step: StepSpec  # for a repeated step, named `<step>[<item>]`
    run: Callable[[StepContext[Any]], StepOutcome]
    probe: Callable[[StepContext[Any]], Observation] | None
    item: str | None = None

    @property
    def rerun_safe(self) -> bool:
        return self.step.rerun_safe


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
        future = self._pool.submit(contextvars.copy_context().run, fn)  # the step's spans and log context go along
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


def _verify_spec() -> StepSpec:
    def unbound(_wf: Any, _ctx: StepContext[Any]) -> StepOutcome:
        raise AssertionError("the verification step is bound per run")

    return StepSpec(
        VERIFY_STEP,
        unbound,
        Rollback.NONE,
        timeout=120.0,
        idempotent="it only reads the postconditions",
        description="check postconditions",
    )


VERIFY = _verify_spec()


def expanded(spec: WorkflowDefinition, items: Mapping[str, Sequence[str]]) -> list[tuple[StepSpec, str | None]]:
    """The forward steps in order, a step declared `each=<key>` once per item of the plan's `<key>`."""
    out: list[tuple[StepSpec, str | None]] = []
    for step in spec.steps:
        if step.each is None:
            out.append((step, None))
        else:
            out += [(replace(step, name=f"{step.name}[{item}]"), str(item)) for item in items.get(step.each, ())]
    return out


def planned_steps(
    spec: WorkflowDefinition,
    wf: Workflow[Any],
    mode: Mode,
    records: dict[int, StepRecord],
    items: Mapping[str, Sequence[str]] | None = None,
) -> list[PlannedStep]:
    """The forward steps plus verification, or the compensations of what succeeded, newest first."""
    if mode is Mode.FORWARD:
        out = [
            PlannedStep(i, s, _bind(wf, s.run), _bind(wf, s.probe) if s.probe else None, item)
            for i, (s, item) in enumerate(expanded(spec, items or {}), 1)
        ]
        out.append(PlannedStep(len(out) + 1, VERIFY, lambda ctx: verify(spec, wf, ctx), None))
        return out
    return [
        PlannedStep(COMPENSATION_SEQ_BASE + rec.seq, comp, _bind(wf, comp.run), None, item)
        for rec, comp, item in compensations(spec, records)
    ]


def split_name(recorded: str) -> tuple[str, str | None]:
    """`resize_reader[r1]` -> (`resize_reader`, `r1`); a plain name has no item."""
    if recorded.endswith("]") and "[" in recorded:
        base, _, rest = recorded.partition("[")
        return base, rest[:-1]
    return recorded, None


def compensations(
    spec: WorkflowDefinition, records: dict[int, StepRecord]
) -> list[tuple[StepRecord, StepSpec, str | None]]:
    """For each forward step that succeeded (newest first) and whose step still declares a compensation, by name."""
    out = []
    for seq in sorted((s for s in records if s < COMPENSATION_SEQ_BASE), reverse=True):
        rec = records[seq]
        base, item = split_name(rec.name)
        step = spec.step(base)
        if rec.status is StepStatus.SUCCEEDED and step is not None and step.compensation is not None:
            comp = StepSpec(
                f"{COMPENSATION_PREFIX}{rec.name}",
                step.compensation,
                Rollback.NONE,
                timeout=step.timeout,
                convergence_window=step.convergence_window,
                idempotent="a compensation looks before it acts",
                description=f"undo {rec.name}",
            )
            out.append((rec, comp, item))
    return out


def _bind(wf: Workflow[Any], fn: Callable[[Any, StepContext[Any]], R]) -> Callable[[StepContext[Any]], R]:
    return lambda ctx: fn(wf, ctx)


def verify(spec: WorkflowDefinition, wf: Workflow[Any], ctx: StepContext[Any]) -> StepOutcome:
    """Success needs evidence: every postcondition checked and true, or the intent is still converging."""
    evidence = {p.name: p.check(wf, ctx) for p in spec.postconditions}
    failing = [name for name, ev in evidence.items() if not ev.ok]
    detail = {name: {"ok": ev.ok, **ev.detail} for name, ev in evidence.items()}
    if failing:
        return Pending(f"postconditions not yet met: {', '.join(failing)}", retry_after=10.0, observed=detail)
    return Done(output={"evidence": detail})


def window_start(rec: StepRecord) -> datetime:
    """When a step's convergence window opened: its first start, or the last operator resume."""
    since = rec.output.get("window_from")
    return datetime.fromisoformat(since) if since else rec.started_at


def observe(ps: PlannedStep, ctx: StepContext[Any], active: bool = False) -> Observation:
    """Ask the world whether a step's effect exists.

    Its probe answers when it has one. A step that is safe to repeat (a convergence wait) is either reported
    Absent, so the executor simply runs it again, or, when `active`, run as its own observation.
    """
    with span(
        f"opsbot.probe {ps.step.name}", attributes={"opsbot.step": ps.step.name, "opsbot.active": active}
    ) as current:
        observation = _observe(ps, ctx, active)
        current.set_attribute("opsbot.observed", type(observation).__name__.lower())
        return observation


def _observe(ps: PlannedStep, ctx: StepContext[Any], active: bool) -> Observation:
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
    except PermanentError:
        if active and ps.probe is None:
            raise  # the step itself, run as its own observation, says it failed for good: the executor records it
        return Unclear(f"observing {ps.step.name} failed for good")
    except Exception as exc:
        return Unclear(f"observing {ps.step.name} failed: {exc}")
