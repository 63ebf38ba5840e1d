"""The executor: claims approved intents with their resource locks, gates each run on a valid approval, and drives
the steps with durable checkpoints.

Hot path per step: one fenced statement that records "started" (with its idempotency token) before the side
effect, and one that records the outcome after it. A recorded outcome is replayed, never re-run; a "started"
with no outcome is resolved by observation before anything is retried. Control flow is values: a step either
completes (its output) or halts the run (`Halt`), which `_finish` turns into one typed transition.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import stamina
import structlog

from workflows.authoring import WorkflowDefinition
from workflows.authorization import check_approvals
from workflows.context import StepContext
from workflows.deps import Runtime
from workflows.errors import (
    ConcurrentModification,
    LeaseLost,
    OutcomeUnknown,
    PermanentError,
    PreconditionFailed,
    TransientError,
    UnsafeError,
)
from workflows.model import (
    Approval,
    EventDraft,
    EventKind,
    Intent,
    IntentId,
    IntentStatus,
    Lease,
    Mode,
    Move,
    NewPlan,
    StepDone,
    StepRecord,
    StepStatus,
)
from workflows.outcomes import Absent, Done, Pending, StepOutcome, Unclear
from workflows.planning import compute_plan, definition_change, plan_items, plan_locks, ticket_of
from workflows.ports import StoreTx
from workflows.scheduling import Schedule, binding_windows, next_start, scheduled_reason, windows_text
from workflows.steps import PlannedStep, StepRunner, observe, planned_steps, window_start
from workflows.telemetry import (
    APPROVAL_TO_EFFECT,
    LOCK_WAITS,
    STEP_SECONDS,
    UNKNOWN_OUTCOMES,
    UNKNOWN_RESOLVED,
    span,
)
from workflows.transitions import transition, waiting_reason
from workflows.windows import in_words, local_text, next_opening, opening_at

log = structlog.get_logger("opsbot.executor")

S = IntentStatus


def fault_point(step: str, phase: str) -> str:
    """The name of a crash point: `<step>:before_effect`, `<step>:after_effect`, `<step>:after_checkpoint`."""
    return f"{step}:{phase}"


PHASES = ("before_effect", "after_effect", "after_checkpoint")


@dataclass(frozen=True, slots=True)
class Halt:
    """Why a run stops here, as the transition it becomes."""

    status: IntentStatus
    reason: str
    kind: EventKind
    delay: float | None = None
    data: tuple[tuple[str, Any], ...] = ()
    new_plan: NewPlan | None = None
    release_locks: bool = False
    fresh_budget: bool = False  # paused until a later window: its timeout budget starts again there


StepResult = dict[str, Any] | Halt  # a completed step's output, or a halt


class Executor:
    """Runs approved intents in-process on a small thread pool."""

    def __init__(self, rt: Runtime, owner: str, threads: int = 4) -> None:
        self.rt, self.owner, self.threads = rt, owner, threads
        # What a run reads first (its checkpoints and approvals), read in the claim's own transaction.
        self._claimed: dict[IntentId, tuple[list[StepRecord], list[Approval]]] = {}

    def claim(self, limit: int) -> list[Intent]:
        """Start what is approved and due: all of each intent's locks at once, or it waits for them, visibly."""
        now = self.rt.clock.now()
        started, waiting = [], []
        with self.rt.store.transaction() as tx:
            for intent in tx.runnable(now, limit):
                if self._reschedule(tx, intent, now):
                    continue
                locks = plan_locks(intent)
                holder = tx.acquire_locks(intent.id, locks, now)
                if holder is not None:
                    tx.wait_for(intent.id, locks, now)
                    move = Move(S.WAITING, waiting_reason(holder))
                    transition(
                        tx, intent, move, EventKind.WAITING_FOR_LOCK, self.owner, now, {"holder": holder.intent_id}
                    )
                    waiting.append(intent.workflow)
                    continue
                lease = Lease(intent.id, self.owner, self.rt.ids.new_id(), self._until(now))
                started.append(tx.start_run(intent, lease, now))
                data = {"attempt": intent.attempts + 1, "locks": list(locks)}
                tx.append_event(EventDraft(EventKind.CLAIMED, self.owner, data, intent.id), now)
                self._claimed[intent.id] = (tx.steps(intent.id), tx.approvals(intent.id))
        for workflow in waiting:
            LOCK_WAITS.labels(workflow).inc()
        return started

    def _reschedule(self, tx: StoreTx, intent: Intent, now: datetime) -> bool:
        """An intent that has not started and may not start now (outside its maintenance window: approved as a
        window closed, or sent back by an operator) waits for its window, visibly, holding nothing. One that
        started continues: the run stops before any step that would not fit in the window."""
        later = next_start(self.rt.config, intent, now)
        if later is None or tx.steps(intent.id):
            return False
        said = {"starts": later.describe(now), "starts_at": later.starts_at.isoformat()}
        move = Move(S.SCHEDULED, scheduled_reason(later), next_check_at=later.starts_at)
        transition(tx, intent, move, EventKind.SCHEDULED, self.owner, now, said, release_locks=True)
        return True

    def claimed_reads(self, intent: Intent) -> tuple[list[StepRecord], list[Approval]]:
        """The run's first reads: from the claim's transaction when this executor just claimed it (the lease
        makes them current: nobody else writes its checkpoints), else read now."""
        read = self._claimed.pop(intent.id, None)
        if read is not None:
            return read
        with self.rt.store.transaction() as tx:
            return tx.steps(intent.id), tx.approvals(intent.id)

    def run_once(self) -> list[Intent]:
        """Claim what is runnable now and drive each to its next stop."""
        claimed = self.claim(self.threads)
        if len(claimed) <= 1:
            return [self.drive(i) for i in claimed]
        with ThreadPoolExecutor(self.threads, thread_name_prefix="executor") as pool:
            return list(pool.map(self.drive, claimed))

    def run_until_idle(self, max_rounds: int = 100) -> list[Intent]:
        """Run rounds until nothing is runnable (an intent woken by a released lock runs in the next round)."""
        done: list[Intent] = []
        for _ in range(max_rounds):
            batch = self.run_once()
            if not batch:
                break
            done.extend(batch)
        return done

    def drive(self, intent: Intent) -> Intent:
        structlog.contextvars.bind_contextvars(
            intent_id=intent.id, workflow=intent.workflow, plan_hash=intent.plan_hash[:12]
        )
        try:
            with (
                span(
                    "opsbot.run",
                    intent.traceparent,
                    {"opsbot.intent_id": intent.id, "opsbot.workflow": intent.workflow},
                ) as run,
                self.rt.store.pinned(),
            ):
                stopped = _Run(self, intent).go()
                run.set_attribute("opsbot.status", stopped.status.value)
                return stopped
        except LeaseLost as exc:
            log.warning("lease_lost", reason=str(exc))
            with self.rt.store.transaction() as tx:
                return tx.get_intent(intent.id) or intent
        except Exception as exc:  # a bug or a config change under a running intent: park it, never loop
            return self._park_after_internal_error(intent, exc)
        finally:
            structlog.contextvars.unbind_contextvars("intent_id", "workflow", "plan_hash")

    def _park_after_internal_error(self, intent: Intent, exc: Exception) -> Intent:
        correlation = self.rt.ids.new_id()
        log.exception("executor_internal_error", correlation_id=correlation)
        reason = f"internal error (correlation id {correlation}): {type(exc).__name__}: {exc}"
        now = self.rt.clock.now()
        try:
            with self.rt.store.transaction() as tx:
                current = tx.get_intent(intent.id)
                if current is None or current.lease_token != intent.lease_token:
                    return current or intent
                return transition(tx, current, Move(S.BLOCKED, reason), EventKind.INTERNAL_ERROR, self.owner, now)
        except Exception:
            log.exception("executor_could_not_park", correlation_id=correlation)
            return intent

    def _until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.rt.lease_seconds)


class _Run:
    """One claimed intent being driven; every write is fenced by `self.lease`."""

    def __init__(self, ex: Executor, intent: Intent) -> None:
        self.ex, self.rt, self.intent = ex, ex.rt, intent
        assert intent.lease_token and intent.lease_expires_at and intent.lease_owner
        self.lease = Lease(intent.id, intent.lease_owner, intent.lease_token, intent.lease_expires_at)
        self.spec: WorkflowDefinition = self.rt.registry.get(intent.workflow)
        self.wf = self.spec.factory()
        self.params = self.spec.params.model_validate(intent.params)
        self.env = self.rt.config.environment(intent.environment)
        self.outputs: dict[str, dict[str, Any]] = {}
        self.ids: dict[int, dict[str, Any]] = {}  # external ids per step, as durably recorded
        self.renewed_at = self.now()
        self.runner = StepRunner()
        self.unflushed: tuple[PlannedStep, StepDone] | None = None  # a success the next write commits
        self.approved_at: datetime | None = None  # set by the gate of a first run: the approval it runs under
        self.windows = binding_windows(self.rt.config, intent)  # each step must end inside one of these
        self.touched = False  # set by `_steps`: whether any step of this intent ran before this run

    def now(self) -> datetime:
        return self.rt.clock.now()

    def go(self) -> Intent:
        try:
            return self._finish(self._steps())
        finally:
            self.runner.close()

    def _steps(self) -> Halt:
        steps, approvals = self.ex.claimed_reads(self.intent)
        records = {r.seq: r for r in steps}
        self.touched = bool(records)  # a step ran before this run (a compensation's forward steps too)
        gate = self._gate(records, approvals)
        if gate is not None:
            return gate
        replayed = []
        plan = planned_steps(self.spec, self.wf, self.intent.mode, records, plan_items(self.intent))
        for ps in plan:
            over = self._over_budget()
            if over is not None:
                return over
            rec = records.get(ps.seq)
            if rec is not None and rec.name != ps.step.name:
                return Halt(
                    S.UNSAFE,
                    f"step {ps.seq} was recorded as {rec.name!r} but the workflow now says {ps.step.name!r}; "
                    "it will not run a step list that no longer matches its checkpoints",
                    EventKind.CHECKPOINT_MISMATCH,
                )
            if rec is not None:
                self.ids[ps.seq] = dict(rec.external_ids)
            if rec is not None and rec.status is StepStatus.SUCCEEDED:
                self.outputs[ps.step.name] = rec.output
                replayed.append(ps.step.name)
                continue
            closing = self._window_closing(ps, rec)
            if closing is not None:
                return closing
            result = self._timed_step(ps, rec)
            if isinstance(result, Halt):
                return result
            self.outputs[ps.step.name] = result
        final = S.SUCCEEDED if self.intent.mode is Mode.FORWARD else S.COMPENSATED
        changed = {ps.step.name: self.ids[ps.seq] for ps in plan if self.ids.get(ps.seq)}
        why = "all steps done and postconditions verified" if final is S.SUCCEEDED else "every compensation done"
        return Halt(final, why, EventKind(final.value), data=(("replayed", replayed), ("external_ids", changed)))

    # gates ---------------------------------------------------------------------------------------
    def _over_budget(self) -> Halt | None:
        started = self.intent.started_at or self.now()
        if (self.now() - started).total_seconds() > self.spec.timeout:
            return Halt(
                S.BLOCKED, f"exceeded the workflow's timeout budget of {self.spec.timeout:g}s", EventKind.TIMEOUT
            )
        return None

    def _window_closing(self, ps: PlannedStep, rec: StepRecord | None) -> Halt | None:
        """A step starts only if its timeout ends inside the maintenance window the run is in. Otherwise the run
        stops before it, never mid-step, and waits in `scheduled` for the next window long enough for it (a step
        in flight, started, unknown or converging, is not a new start: it is looked at and finished)."""
        if not self.windows or (rec is not None and rec.status is not StepStatus.FAILED):
            return None
        now, need = self.now(), ps.step.timeout
        inside = opening_at(self.windows, now)
        if inside is not None and now + timedelta(seconds=need) <= inside.end:
            return None
        step = f"step {ps.step.name} (timeout {in_words(need)})"
        started = self.touched or bool(self.ids)  # a step ran: the locks stay with the half-done change
        following = next_opening(self.windows, now, lasting=need)
        if following is None:  # waits for an approver: Run now, or cancel
            why = (
                f"{step} is longer than any maintenance window of {self.intent.environment} "
                f"({windows_text(self.windows)}), so it cannot start inside one: an approver may Run now, outside "
                "the windows, or cancel"
            )
            return Halt(S.SCHEDULED, why, EventKind.WINDOW_CLOSING, release_locks=not started, fresh_budget=True)
        if inside is None:
            why = f"the maintenance window closed before {step} could start"
        else:
            why = f"{step} would run past the window's end at {local_text(inside.end, inside.zone)}"
        later = Schedule(following.start, following)
        return Halt(
            S.SCHEDULED,
            f"{why}; it will continue in the next window: {later.text()}",
            EventKind.WINDOW_CLOSING,
            delay=(following.start - now).total_seconds(),
            data=(("starts", later.describe(now)), ("starts_at", following.start.isoformat())),
            release_locks=not started,
            fresh_budget=True,
        )

    def _gate(self, records: dict[int, StepRecord], approvals: list[Any]) -> Halt | None:
        """Before this run touches anything: the workflow is the one planned, and the approval holds now."""
        first = not records or (self.intent.mode is Mode.COMPENSATE and all(s < 1000 for s in records))
        changed = definition_change(self.spec, self.intent.plan)
        if changed is not None and self.intent.mode is Mode.FORWARD:
            if not records:
                return self._replan(
                    f"the workflow changed since it was planned ({changed}); review the new plan and approve again",
                    EventKind.DEFINITION_CHANGED,
                )
            done = [r.name for s, r in sorted(records.items()) if r.status is StepStatus.SUCCEEDED]
            return Halt(
                S.UNSAFE,
                f"the workflow changed under this intent after it started ({changed}); completed: "
                f"{', '.join(done) or 'nothing'}. Safe now: compensate the completed steps, or mark done after "
                "checking by hand; retrying would run a step list that no longer matches its checkpoints",
                EventKind.DEFINITION_CHANGED,
            )
        fresh_approval = first or self.intent.reauthorize
        check = check_approvals(
            self.rt.config, self.spec, self.intent, approvals, self.now(), fresh=fresh_approval, groups=self.rt.groups
        )
        if first and self.intent.mode is Mode.FORWARD:
            approved = [a.created_at for a in approvals if a.valid_for(self.intent.plan_hash, self.now())]
            self.approved_at = max(approved, default=None)
        if not check.ok:
            if fresh_approval:
                why = f"the approval does not hold: {check.reason}; approve again"
                return Halt(S.NEEDS_REAPPROVAL, why, EventKind.APPROVAL_EXPIRED, release_locks=not records)
            why = f"an approval it ran under no longer holds: {check.reason}; approve again to continue"
            return Halt(S.NEEDS_REAPPROVAL, why, EventKind.APPROVER_REVOKED)
        if self.intent.mode is Mode.FORWARD and not records:
            stale = self._replan(
                "the observed state changed since the plan was approved; review the new plan and approve again",
                EventKind.STALE_PLAN,
            )
            if stale.new_plan is None or stale.new_plan.plan.get("fingerprint") != self.intent.plan.get("fingerprint"):
                return stale
        if self.intent.reauthorize:
            with self.rt.store.transaction() as tx:
                tx.clear_reauthorize(self.lease)
        return None

    def _replan(self, why: str, kind: EventKind) -> Halt:
        """Back to approval with a plan of the world as it is now; nothing ran, so the locks go too."""
        try:
            fresh = compute_plan(
                self.rt,
                self.spec,
                self.params,
                self.intent.environment,
                self.intent.requester,
                self.intent.id,
                ticket=ticket_of(self.intent.plan),
            )
        except PreconditionFailed as exc:
            return Halt(S.NEEDS_REAPPROVAL, f"the world changed since the plan: {exc}", kind, release_locks=True)
        return Halt(
            S.NEEDS_REAPPROVAL,
            why,
            kind,
            new_plan=NewPlan(fresh.model_dump(mode="json"), fresh.hash),
            release_locks=True,
        )

    # steps ---------------------------------------------------------------------------------------
    def _ctx(self, ps: PlannedStep, token: str) -> StepContext[Any]:
        def checkpoint(ids: dict[str, Any]) -> None:
            merged = {**self.ids.get(ps.seq, {}), **ids}
            self.rt.store.checkpoint_outcome(self.lease, ps.seq, external_ids=merged)
            self.ids[ps.seq] = merged

        return StepContext(
            self.intent, self.params, self.env, self.rt.adapters, token, self.outputs, self.now, checkpoint, ps.item
        )

    def _fence(self, tx: StoreTx) -> None:
        tx.renew_lease(self.lease, self.now() + timedelta(seconds=self.rt.lease_seconds))
        self.renewed_at = self.now()

    def _heartbeat(self) -> None:
        self.rt.store.renew_lease(self.lease, self.now() + timedelta(seconds=self.rt.lease_seconds))
        self.renewed_at = self.now()

    def _keep_lease(self) -> None:
        """Renew only when a third of the lease has passed: a run of quick steps costs no extra writes."""
        if (self.now() - self.renewed_at).total_seconds() >= self.rt.lease_seconds / 3:
            self._heartbeat()

    def _token(self, ps: PlannedStep) -> str:
        return f"{self.intent.id}-{ps.seq}-{ps.step.name}"[:200]

    def _timed_step(self, ps: PlannedStep, rec: StepRecord | None) -> StepResult:
        """A step attempt in its own span (`opsbot.step <name>`, or `opsbot.compensate <name>`), timed by outcome."""
        kind = "compensate" if self.intent.mode is Mode.COMPENSATE else "step"
        attrs = {"opsbot.step": ps.step.name, "opsbot.seq": ps.seq, "opsbot.item": ps.item}
        began, outcome = time.perf_counter(), "error"
        try:
            with span(f"opsbot.{kind} {ps.step.name}", attributes=attrs) as current:
                result = self._step(ps, rec)
                outcome = result.status.value if isinstance(result, Halt) else "succeeded"
                current.set_attribute("opsbot.outcome", outcome)
                return result
        except LeaseLost:
            outcome = "lease_lost"
            raise
        finally:
            STEP_SECONDS.labels(self.intent.workflow, ps.step.name, outcome).observe(time.perf_counter() - began)

    def _resolved(self, ps: PlannedStep, how: str) -> None:
        UNKNOWN_RESOLVED.labels(self.intent.workflow, ps.step.name, how).inc()

    def _step(self, ps: PlannedStep, rec: StepRecord | None) -> StepResult:
        attempts = 1
        if rec is not None:
            self._flush()
        if rec is None:
            rec = self._record_started(ps)
        elif rec.status is StepStatus.FAILED:
            attempts = rec.attempts + 1
            self._restart(ps, attempts, "retrying a failed step")
        elif rec.status is StepStatus.PENDING and ps.rerun_safe:
            attempts = rec.attempts  # converging: poll again, nothing new to record before the call
        else:
            # Started, pending or unknown: the effect may exist. Observe before doing anything.
            observed = self._observe(ps, rec)
            in_doubt = rec.status is not StepStatus.PENDING  # a crash or a lost answer, not a convergence wait
            if isinstance(observed, Halt):
                if in_doubt and observed.status is S.UNKNOWN:
                    self._resolved(ps, "unresolved")
                return observed
            if in_doubt:
                self._resolved(ps, "observed_done" if isinstance(observed, Done) else "observed_absent")
            if isinstance(observed, Done):
                return self._record_done(ps, observed, resolved=True)
            attempts = rec.attempts + 1
            self._restart(ps, attempts, observed.reason)
        return self._execute(ps, self._ctx(ps, rec.idempotency_token), attempts)

    def _execute(self, ps: PlannedStep, ctx: StepContext[Any], attempts: int) -> StepResult:
        name = ps.step.name
        self.rt.faults.reached(fault_point(name, "before_effect"))
        try:
            outcome = self._call_with_retries(ps, ctx)
        except TransientError as exc:
            self._record_failed(ps, str(exc), attempts)
            reason = f"{name} kept failing transiently: {exc}"
            return Halt(S.RETRYABLE, reason, EventKind.STEP_RETRYABLE, delay=exc.delay or 30.0)
        except UnsafeError as exc:
            self._record_failed(ps, str(exc), attempts)
            return Halt(S.UNSAFE, f"{name}: {exc}", EventKind.STEP_UNSAFE, data=(("guidance", exc.guidance),))
        except PermanentError as exc:
            self._record_failed(ps, str(exc), attempts)
            return Halt(S.FAILED, f"{name} failed: {exc}", EventKind.STEP_FAILED, data=(("guidance", exc.guidance),))
        except LeaseLost:
            raise
        except Exception as exc:  # outcome unknown, including bugs and timeouts: never blindly retried
            reason = str(exc) if isinstance(exc, OutcomeUnknown) else f"{type(exc).__name__}: {exc}"
            return self._unknown_then_observe(ps, ctx, reason, attempts)
        self.rt.faults.reached(fault_point(name, "after_effect"))
        if isinstance(outcome, Pending):
            return self._converging(ps, outcome)
        return self._record_done(ps, outcome, resolved=False)

    def _call_with_retries(self, ps: PlannedStep, ctx: StepContext[Any]) -> StepOutcome:
        """First attempt straight away; on a transient error the retry policy takes over (stamina)."""

        def call() -> StepOutcome:
            return self.runner.call(
                lambda: ps.run(ctx),
                ps.step.timeout,
                ps.step.name,
                heartbeat=self._heartbeat,
                every=self.rt.lease_seconds / 3,
            )

        policy = ps.step.retry or self.spec.retry
        try:
            return call()
        except TransientError as exc:
            if policy.attempts <= 1:
                raise
            log.info("step_transient_error", step=ps.step.name, error=str(exc))
        for attempt in stamina.retry_context(
            on=TransientError,
            attempts=policy.attempts - 1,
            wait_initial=policy.initial_delay,
            wait_max=policy.max_delay,
            wait_jitter=policy.initial_delay / 2,
            timeout=ps.step.timeout,
        ):
            with attempt:
                log.info("step_retry", step=ps.step.name, attempt=attempt.num + 1)
                self._heartbeat()
                return call()
        raise AssertionError("unreachable")  # pragma: no cover

    def _unknown_then_observe(self, ps: PlannedStep, ctx: StepContext[Any], reason: str, attempts: int) -> StepResult:
        now = self.now()
        with self.rt.store.transaction() as tx:
            self._fence(tx)
            tx.update_step(self.intent.id, ps.seq, status=StepStatus.UNKNOWN, error=reason, attempts=attempts)
            data = {"step": ps.step.name, "reason": reason}
            tx.append_event(EventDraft(EventKind.STEP_UNKNOWN, self.lease.owner, data, self.intent.id), now)
        log.warning("step_outcome_unknown", step=ps.step.name, reason=reason)
        UNKNOWN_OUTCOMES.labels(self.intent.workflow, ps.step.name).inc()
        observed = self._observe(ps, self._record(ps.seq))
        if isinstance(observed, Halt):
            if observed.status is S.UNKNOWN:
                self._resolved(ps, "unresolved")
            return observed
        if isinstance(observed, Done):
            self._resolved(ps, "observed_done")
            return self._record_done(ps, observed, resolved=True)
        policy = ps.step.retry or self.spec.retry
        if attempts >= policy.attempts:
            self._resolved(ps, "unresolved")
            why = f"{ps.step.name}: outcome unknown after {attempts} attempts ({reason})"
            return Halt(S.UNKNOWN, why, EventKind.STEP_UNKNOWN)
        self._resolved(ps, "observed_absent")
        # The probe proved there is no effect (or the step is safe to repeat): run it again.
        self._restart(ps, attempts + 1, observed.reason)
        return self._execute(ps, ctx, attempts + 1)

    def _observe(self, ps: PlannedStep, rec: StepRecord) -> Absent | Done | Halt:
        """Resolve an in-flight step by looking at the world; halt if the world cannot tell or is converging."""
        observation = observe(ps, self._ctx(ps, rec.idempotency_token))
        if isinstance(observation, Pending):
            return self._converging(ps, observation, rec)
        if isinstance(observation, Unclear):
            return Halt(S.UNKNOWN, f"{ps.step.name}: {observation.reason}", EventKind.STEP_UNKNOWN, delay=30.0)
        return observation

    def _converging(self, ps: PlannedStep, pending: Pending, rec: StepRecord | None = None) -> Halt:
        window = ps.step.convergence_window or self.spec.timeout
        rec = rec or self._record(ps.seq)
        start = window_start(rec)
        elapsed = (self.now() - start).total_seconds()
        with self.rt.store.transaction() as tx:
            self._fence(tx)
            tx.update_step(
                self.intent.id,
                ps.seq,
                status=StepStatus.PENDING,
                output={**rec.output, "observed": pending.observed, "window_from": start.isoformat()},
            )
        if elapsed > window:
            why = f"{ps.step.name} did not converge within {window:g}s: {pending.reason}"
            return Halt(S.BLOCKED, why, EventKind.CONVERGENCE_WINDOW_EXCEEDED)
        why = f"{ps.step.name}: {pending.reason}"
        return Halt(S.CONVERGING, why, EventKind.CONVERGING, delay=pending.retry_after)

    # records -------------------------------------------------------------------------------------
    def _record(self, seq: int) -> StepRecord:
        with self.rt.store.transaction() as tx:
            return {r.seq: r for r in tx.steps(self.intent.id)}[seq]

    def _record_started(self, ps: PlannedStep) -> StepRecord:
        """The write before the side effect: one fenced INSERT, committed."""
        self._keep_lease()
        rec = StepRecord(self.intent.id, ps.seq, ps.step.name, StepStatus.STARTED, self._token(ps), 1, self.now())
        flushed, self.unflushed = self.unflushed, None
        self.rt.store.checkpoint_started(self.lease, rec, flushed[1] if flushed else None)
        self.ids[ps.seq] = {}
        if self.approved_at is not None:  # the first step of a first run: its side effect is next
            APPROVAL_TO_EFFECT.labels(self.intent.workflow).observe((rec.started_at - self.approved_at).total_seconds())
            self.approved_at = None
        if flushed is not None:
            self.rt.faults.reached(fault_point(flushed[0].step.name, "after_checkpoint"))
        return rec

    def _flush(self) -> None:
        """Commit a held success on its own: the next write is not a step start or the verdict."""
        flushed, self.unflushed = self.unflushed, None
        if flushed is not None:
            ps, done = flushed
            self.rt.store.checkpoint_outcome(
                self.lease,
                done.seq,
                status=StepStatus.SUCCEEDED,
                output=done.output,
                external_ids=done.external_ids,
                finished_at=done.finished_at,
            )
            self.rt.faults.reached(fault_point(ps.step.name, "after_checkpoint"))

    def _restart(self, ps: PlannedStep, attempts: int, why: str) -> None:
        with self.rt.store.transaction() as tx:
            self._fence(tx)
            tx.update_step(self.intent.id, ps.seq, status=StepStatus.STARTED, attempts=attempts)
            data = {"step": ps.step.name, "attempt": attempts, "why": why}
            tx.append_event(EventDraft(EventKind.STEP_RERUN, self.lease.owner, data, self.intent.id), self.now())

    def _record_done(self, ps: PlannedStep, done: Done, resolved: bool) -> dict[str, Any]:
        """The write after the side effect. A resolution is committed and audited at once; a plain success is
        held and committed with the next write (the next step's start, or the verdict), so consecutive steps
        cost one commit each, not two. Until then the step reads as started, which its probe resolves."""
        now = self.now()
        ids = {**self.ids.get(ps.seq, {}), **done.external_ids}
        if resolved:
            with self.rt.store.transaction() as tx:
                self._fence(tx)
                tx.update_step(
                    self.intent.id,
                    ps.seq,
                    status=StepStatus.SUCCEEDED,
                    output=done.output,
                    external_ids=ids,
                    finished_at=now,
                )
                data = {"step": ps.step.name, "how": done.how, "external_ids": ids}
                event = EventDraft(EventKind.STEP_RESOLVED_BY_OBSERVATION, self.lease.owner, data, self.intent.id)
                tx.append_event(event, now)
            self.rt.faults.reached(fault_point(ps.step.name, "after_checkpoint"))
        else:
            self.unflushed = (ps, StepDone(ps.seq, done.output, ids, now))
        self.ids[ps.seq] = ids
        return done.output

    def _record_failed(self, ps: PlannedStep, error: str, attempts: int) -> None:
        with self.rt.store.transaction() as tx:
            self._fence(tx)
            tx.update_step(
                self.intent.id, ps.seq, status=StepStatus.FAILED, error=error, attempts=attempts, finished_at=self.now()
            )

    def _finish(self, halt: Halt) -> Intent:
        now = self.now()
        move = Move(
            halt.status,
            halt.reason,
            next_check_at=now + timedelta(seconds=halt.delay) if halt.delay is not None else None,
            new_plan=halt.new_plan,
            count_attempt=True,
            fresh_budget=halt.fresh_budget,
        )
        data = {k: v for k, v in halt.data if v not in (None, "", [], {})}
        if halt.new_plan is not None:
            data["new_plan_hash"] = halt.new_plan.hash
        flushed, self.unflushed = self.unflushed, None
        with self.rt.store.transaction() as tx:  # fenced by the move's compare-and-set: a takeover bumps the version
            if flushed is not None:  # the last success and the verdict: one commit
                _, done = flushed
                tx.update_step(
                    self.intent.id,
                    done.seq,
                    status=StepStatus.SUCCEEDED,
                    output=done.output,
                    external_ids=done.external_ids,
                    finished_at=done.finished_at,
                )
            try:
                intent = transition(
                    tx, self.intent, move, halt.kind, self.lease.owner, now, data, release_locks=halt.release_locks
                )
            except ConcurrentModification:
                raise LeaseLost(f"intent {self.intent.id} changed under this executor") from None
        log.info("intent_stopped", status=halt.status.value, reason=halt.reason)
        if flushed is not None:
            self.rt.faults.reached(fault_point(flushed[0].step.name, "after_checkpoint"))
        return intent
