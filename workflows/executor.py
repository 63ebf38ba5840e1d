"""The executor: claims approved intents under a lease and drives their steps with durable checkpoints.

Hot path per step: one transaction that fences on the lease and records "started" (with its idempotency
token) before the side effect, and one that records the outcome after it. A recorded outcome is replayed,
never re-run; a "started" with no outcome is resolved by observation before anything is retried.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, NoReturn

import stamina
import structlog

from workflows.context import StepContext
from workflows.deps import Runtime
from workflows.errors import (
    CheckpointMismatch,
    ConcurrentModification,
    LeaseLost,
    OutcomeUnknown,
    PermanentError,
    PreconditionFailed,
    TransientError,
    UnsafeError,
)
from workflows.model import EventDraft, EventKind, Intent, IntentStatus, Lease, Mode, StepRecord, StepStatus
from workflows.outcomes import Absent, Done, Pending, StepOutcome, Unclear
from workflows.plan import Plan
from workflows.planning import compute_plan
from workflows.policy import effective_policy
from workflows.ports import StoreTx
from workflows.runtime import fault_point
from workflows.steps import PlannedStep, StepRunner, observe, planned_steps, window_start

log = structlog.get_logger("opsbot.executor")


class _Stop(Exception):
    """Raised inside a run to park the intent in `status`; carries what the transition writes."""

    def __init__(self, status: IntentStatus, reason: str, kind: EventKind, **extra: Any) -> None:
        super().__init__(reason)
        self.status, self.reason, self.kind, self.extra = status, reason, kind, extra


class Executor:
    """Runs approved intents in-process on a small thread pool."""

    def __init__(self, rt: Runtime, owner: str, threads: int = 4) -> None:
        self.rt, self.owner, self.threads = rt, owner, threads

    def claim(self, limit: int) -> list[Intent]:
        now = self.rt.clock.now()
        with self.rt.store.transaction() as tx:
            claimed = tx.claim_runnable(self.owner, self.rt.ids.new_id(), now, self._until(now), limit)
            for intent in claimed:
                tx.append_event(
                    EventDraft(EventKind.CLAIMED, self.owner, {"attempt": intent.attempts + 1}, intent.id), now
                )
        return claimed

    def run_once(self) -> list[Intent]:
        """Claim what is runnable now and drive each to its next stop."""
        claimed = self.claim(self.threads)
        if len(claimed) <= 1:
            return [self.drive(i) for i in claimed]
        with ThreadPoolExecutor(self.threads, thread_name_prefix="executor") as pool:
            return list(pool.map(self.drive, claimed))

    def run_until_idle(self, max_rounds: int = 100) -> list[Intent]:
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
            with self.rt.store.pinned():
                return _Run(self, intent).go()
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
                parked = tx.update_intent(
                    current,
                    status=IntentStatus.BLOCKED,
                    status_reason=reason,
                    last_error=reason,
                    lease_owner=None,
                    lease_token=None,
                    lease_expires_at=None,
                    next_check_at=None,
                    updated_at=now,
                )
                tx.append_event(EventDraft(EventKind.INTERNAL_ERROR, self.owner, {"reason": reason}, intent.id), now)
                return parked
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
        self.spec = self.rt.registry.get(intent.workflow)
        self.wf = self.spec.factory()
        self.params = self.spec.params.model_validate(intent.params)
        self.env = self.rt.config.environment(intent.environment)
        self.outputs: dict[str, dict[str, Any]] = {}
        self.ids: dict[int, dict[str, Any]] = {}  # external ids per step, as durably recorded
        self.renewed_at = self.now()
        self.runner = StepRunner()

    def now(self) -> datetime:
        return self.rt.clock.now()

    def go(self) -> Intent:
        try:
            return self._go()
        finally:
            self.runner.close()

    def _go(self) -> Intent:
        with self.rt.store.transaction() as tx:
            records = {r.seq: r for r in tx.steps(self.intent.id)}
        try:
            if self.intent.mode is Mode.FORWARD and not records:
                self._gate()
            replayed = []
            plan = planned_steps(self.spec, self.wf, self.intent.mode, records)
            for ps in plan:
                self._check_budget()
                rec = records.get(ps.seq)
                if rec is not None and rec.name != ps.step.name:
                    raise CheckpointMismatch(
                        f"step {ps.seq} was recorded as {rec.name!r} but the code now says {ps.step.name!r}"
                    )
                if rec is not None:
                    self.ids[ps.seq] = dict(rec.external_ids)
                if rec is not None and rec.status is StepStatus.SUCCEEDED:
                    self.outputs[ps.step.name] = rec.output
                    replayed.append(ps.step.name)
                    continue
                self.outputs[ps.step.name] = self._step(ps, rec)
            final = IntentStatus.SUCCEEDED if self.intent.mode is Mode.FORWARD else IntentStatus.COMPENSATED
            changed = {ps.step.name: self.ids[ps.seq] for ps in plan if self.ids.get(ps.seq)}
            return self._finish(
                final,
                "all steps done and postconditions verified",
                EventKind(final.value),
                replayed=replayed,
                external_ids=changed,
            )
        except _Stop as stop:
            return self._finish(stop.status, stop.reason, stop.kind, **stop.extra)
        except CheckpointMismatch as exc:
            return self._finish(IntentStatus.UNSAFE, str(exc), EventKind.CHECKPOINT_MISMATCH)

    # gates ---------------------------------------------------------------------------------------
    def _check_budget(self) -> None:
        started = self.intent.started_at or self.now()
        if (self.now() - started).total_seconds() > self.spec.timeout:
            raise _Stop(
                IntentStatus.BLOCKED,
                f"exceeded the workflow's timeout budget of {self.spec.timeout:g}s",
                EventKind.TIMEOUT,
            )

    def _gate(self) -> None:
        """Before the first side effect: a valid approval for this exact plan, and an unchanged world."""
        now = self.now()
        with self.rt.store.transaction() as tx:
            approvals = tx.approvals(self.intent.id)
        valid = {
            a.actor for a in approvals if a.valid_for(self.intent.plan_hash, now) and a.actor != self.intent.requester
        }
        needed = effective_policy(self.rt.config, self.spec).approvals
        if len(valid) < needed:
            raise _Stop(
                IntentStatus.NEEDS_REAPPROVAL,
                "the approval has expired or does not match this plan; approve again",
                EventKind.APPROVAL_EXPIRED,
            )
        try:
            fresh = compute_plan(self.rt, self.spec, self.params, self.intent.environment)
        except PreconditionFailed as exc:
            raise _Stop(
                IntentStatus.NEEDS_REAPPROVAL, f"the world changed since the plan: {exc}", EventKind.STALE_PLAN
            ) from None
        if fresh.fingerprint != self.intent.plan.get("fingerprint"):
            raise _Stop(
                IntentStatus.NEEDS_REAPPROVAL,
                "the observed state changed since the plan was approved; review the new plan and approve again",
                EventKind.STALE_PLAN,
                new_plan=fresh.model_dump(mode="json"),
            )

    # steps ---------------------------------------------------------------------------------------
    def _ctx(self, ps: PlannedStep, token: str) -> StepContext:
        def checkpoint(ids: dict[str, Any]) -> None:
            merged = {**self.ids.get(ps.seq, {}), **ids}
            self.rt.store.checkpoint_outcome(self.lease, ps.seq, external_ids=merged)
            self.ids[ps.seq] = merged

        return StepContext(
            self.intent, self.params, self.env, self.rt.adapters, token, self.outputs, self.now, checkpoint
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

    def _step(self, ps: PlannedStep, rec: StepRecord | None) -> dict[str, Any]:
        attempts = 1
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
            if isinstance(observed, Done):
                return self._record_done(ps, observed, resolved=True)
            attempts = rec.attempts + 1
            self._restart(ps, attempts, observed.reason)
        ctx = self._ctx(ps, rec.idempotency_token)
        return self._execute(ps, ctx, attempts)

    def _execute(self, ps: PlannedStep, ctx: StepContext, attempts: int) -> dict[str, Any]:
        name = ps.step.name
        self.rt.faults.reached(fault_point(name, "before_effect"))
        try:
            outcome = self._call_with_retries(ps, ctx)
        except TransientError as exc:
            self._record_failed(ps, str(exc), attempts)
            raise _Stop(
                IntentStatus.RETRYABLE,
                f"{name} kept failing transiently: {exc}",
                EventKind.STEP_RETRYABLE,
                delay=exc.delay or 30.0,
            ) from None
        except UnsafeError as exc:
            self._record_failed(ps, str(exc), attempts)
            raise _Stop(IntentStatus.UNSAFE, f"{name}: {exc}", EventKind.STEP_UNSAFE, guidance=exc.guidance) from None
        except PermanentError as exc:
            self._record_failed(ps, str(exc), attempts)
            raise _Stop(
                IntentStatus.FAILED, f"{name} failed: {exc}", EventKind.STEP_FAILED, guidance=exc.guidance
            ) from None
        except LeaseLost:
            raise
        except Exception as exc:  # outcome unknown, including bugs and timeouts: never blindly retried
            reason = str(exc) if isinstance(exc, OutcomeUnknown) else f"{type(exc).__name__}: {exc}"
            return self._unknown_then_observe(ps, ctx, reason, attempts)
        self.rt.faults.reached(fault_point(name, "after_effect"))
        if isinstance(outcome, Pending):
            self._converging(ps, outcome)
        return self._record_done(ps, outcome, resolved=False)

    def _call_with_retries(self, ps: PlannedStep, ctx: StepContext) -> StepOutcome:
        """First attempt straight away; on a transient error the retry policy takes over (stamina)."""

        def call() -> StepOutcome:
            return self.runner.call(
                lambda: ps.run(ctx),
                ps.step.timeout,
                ps.step.name,
                heartbeat=self._heartbeat,
                every=self.rt.lease_seconds / 3,
            )

        policy = self.spec.retry
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

    def _unknown_then_observe(self, ps: PlannedStep, ctx: StepContext, reason: str, attempts: int) -> dict[str, Any]:
        now = self.now()
        with self.rt.store.transaction() as tx:
            self._fence(tx)
            tx.update_step(self.intent.id, ps.seq, status=StepStatus.UNKNOWN, error=reason, attempts=attempts)
            tx.append_event(
                EventDraft(
                    EventKind.STEP_UNKNOWN, self.lease.owner, {"step": ps.step.name, "reason": reason}, self.intent.id
                ),
                now,
            )
        log.warning("step_outcome_unknown", step=ps.step.name, reason=reason)
        with self.rt.store.transaction() as tx:
            rec = {r.seq: r for r in tx.steps(self.intent.id)}[ps.seq]
        observed = self._observe(ps, rec)
        if isinstance(observed, Done):
            return self._record_done(ps, observed, resolved=True)
        if attempts >= self.spec.retry.attempts:
            raise _Stop(
                IntentStatus.UNKNOWN,
                f"{ps.step.name}: outcome unknown after {attempts} attempts ({reason})",
                EventKind.STEP_UNKNOWN,
            )
        # The probe proved there is no effect (or the step is safe to repeat): run it again.
        self._restart(ps, attempts + 1, observed.reason)
        return self._execute(ps, ctx, attempts + 1)

    def _observe(self, ps: PlannedStep, rec: StepRecord) -> Absent | Done:
        """Resolve an in-flight step by looking at the world; park the intent if the world cannot tell."""
        observation = observe(ps, self._ctx(ps, rec.idempotency_token))
        if isinstance(observation, Pending):
            self._converging(ps, observation, rec)
        if isinstance(observation, Unclear):
            raise _Stop(
                IntentStatus.UNKNOWN, f"{ps.step.name}: {observation.reason}", EventKind.STEP_UNKNOWN, delay=30.0
            )
        assert isinstance(observation, Absent | Done)
        return observation

    def _converging(self, ps: PlannedStep, pending: Pending, rec: StepRecord | None = None) -> NoReturn:
        window = ps.step.convergence_window or self.spec.timeout
        if rec is None:
            with self.rt.store.transaction() as tx:
                rec = {r.seq: r for r in tx.steps(self.intent.id)}[ps.seq]
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
            raise _Stop(
                IntentStatus.BLOCKED,
                f"{ps.step.name} did not converge within {window:g}s: {pending.reason}",
                EventKind.CONVERGENCE_WINDOW_EXCEEDED,
            )
        raise _Stop(
            IntentStatus.CONVERGING,
            f"{ps.step.name}: {pending.reason}",
            EventKind.CONVERGING,
            delay=pending.retry_after,
        )

    # records -------------------------------------------------------------------------------------
    def _record_started(self, ps: PlannedStep) -> StepRecord:
        """The write before the side effect: one fenced INSERT, committed."""
        self._keep_lease()
        rec = StepRecord(self.intent.id, ps.seq, ps.step.name, StepStatus.STARTED, self._token(ps), 1, self.now())
        self.rt.store.checkpoint_started(self.lease, rec)
        self.ids[ps.seq] = {}
        return rec

    def _restart(self, ps: PlannedStep, attempts: int, why: str) -> None:
        with self.rt.store.transaction() as tx:
            self._fence(tx)
            tx.update_step(self.intent.id, ps.seq, status=StepStatus.STARTED, attempts=attempts)
            tx.append_event(
                EventDraft(
                    EventKind.STEP_RERUN,
                    self.lease.owner,
                    {"step": ps.step.name, "attempt": attempts, "why": why},
                    self.intent.id,
                ),
                self.now(),
            )

    def _record_done(self, ps: PlannedStep, done: Done, resolved: bool) -> dict[str, Any]:
        """The write after the side effect: one fenced UPDATE, committed; resolutions are also audited."""
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
                tx.append_event(
                    EventDraft(
                        EventKind.STEP_RESOLVED_BY_OBSERVATION,
                        self.lease.owner,
                        {"step": ps.step.name, "how": done.how, "external_ids": ids},
                        self.intent.id,
                    ),
                    now,
                )
        else:
            self.rt.store.checkpoint_outcome(
                self.lease, ps.seq, status=StepStatus.SUCCEEDED, output=done.output, external_ids=ids, finished_at=now
            )
        self.ids[ps.seq] = ids
        self.rt.faults.reached(fault_point(ps.step.name, "after_checkpoint"))
        return done.output

    def _record_failed(self, ps: PlannedStep, error: str, attempts: int) -> None:
        with self.rt.store.transaction() as tx:
            self._fence(tx)
            tx.update_step(
                self.intent.id, ps.seq, status=StepStatus.FAILED, error=error, attempts=attempts, finished_at=self.now()
            )

    def _finish(self, status: IntentStatus, reason: str, kind: EventKind, **extra: Any) -> Intent:
        now = self.now()
        delay = extra.pop("delay", None)
        new_plan = extra.pop("new_plan", None)
        changes: dict[str, Any] = {
            "status": status,
            "status_reason": reason,
            "lease_owner": None,
            "lease_token": None,
            "lease_expires_at": None,
            "next_check_at": now + timedelta(seconds=delay) if delay is not None else None,
            "updated_at": now,
            "attempts": self.intent.attempts + 1,
        }
        if status in (
            IntentStatus.FAILED,
            IntentStatus.UNSAFE,
            IntentStatus.UNKNOWN,
            IntentStatus.RETRYABLE,
            IntentStatus.BLOCKED,
        ):
            changes["last_error"] = reason
        if new_plan is not None:
            plan = Plan.model_validate(new_plan)
            changes.update(plan=new_plan, plan_hash=plan.hash)
            extra["new_plan_hash"] = plan.hash
        with self.rt.store.transaction() as tx:
            self._fence(tx)
            try:
                intent = tx.update_intent(self.intent, **changes)
            except ConcurrentModification:
                raise LeaseLost(f"intent {self.intent.id} changed under this executor") from None
            tx.append_event(
                EventDraft(kind, self.lease.owner, {"status": status.value, "reason": reason, **extra}, self.intent.id),
                now,
            )
        log.info("intent_stopped", status=status.value, reason=reason)
        return intent
