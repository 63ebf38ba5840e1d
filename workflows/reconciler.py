"""The reconciler: compares durable intent with observed state and classifies each due operation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from workflows.authorization import check_approvals
from workflows.context import StepContext
from workflows.deps import Runtime
from workflows.errors import ConcurrentModification, PermanentError
from workflows.model import (
    EventDraft,
    EventKind,
    Intent,
    IntentStatus,
    Mode,
    Move,
    StepRecord,
    StepStatus,
    Verdict,
)
from workflows.outcomes import Absent, Done, Unclear
from workflows.planning import definition_change, plan_items
from workflows.scheduling import expired_hint, next_start, scheduled_reason, start_text
from workflows.steps import COMPENSATION_SEQ_BASE, observe, planned_steps, window_start
from workflows.telemetry import TAKEOVERS, UNKNOWN_OUTCOMES, span
from workflows.transitions import transition
from workflows.windows import in_words

log = structlog.get_logger("opsbot.reconciler")

MAX_CHECK_INTERVAL = 300.0
S = IntentStatus

_VERDICTS = {
    S.SUCCEEDED: Verdict.SUCCEEDED,
    S.COMPENSATED: Verdict.SUCCEEDED,
    S.MARKED_DONE: Verdict.SUCCEEDED,
    S.CONVERGING: Verdict.CONVERGING,
    S.APPROVED: Verdict.RETRYABLE,
    S.WAITING: Verdict.RETRYABLE,
    S.SCHEDULED: Verdict.RETRYABLE,
    S.RUNNING: Verdict.RETRYABLE,
    S.RETRYABLE: Verdict.RETRYABLE,
    S.BLOCKED: Verdict.BLOCKED,
    S.NEEDS_REAPPROVAL: Verdict.BLOCKED,
    S.FAILED: Verdict.BLOCKED,
    S.UNSAFE: Verdict.UNSAFE,
    S.UNKNOWN: Verdict.UNKNOWN,
}


def verdict_of(status: IntentStatus) -> Verdict | None:
    return _VERDICTS.get(status)


@dataclass(frozen=True, slots=True)
class Classification:
    intent_id: str
    workflow: str
    verdict: Verdict
    status: IntentStatus
    reason: str


class Reconciler:
    """Runs on a schedule; each pass costs work in proportion to the intents that are due."""

    def __init__(self, rt: Runtime, actor: str = "reconciler") -> None:
        self.rt, self.actor = rt, actor

    def reconcile_due(self, now: datetime | None = None, limit: int = 200) -> list[Classification]:
        now = now or self.rt.clock.now()
        with self.rt.store.transaction() as tx:
            due = tx.due_for_reconcile(now, limit)
        results = []
        for intent in due:
            try:
                with span("opsbot.check", intent.traceparent, {"opsbot.intent_id": intent.id}) as current:
                    classified = self._classify(intent, now)
                    current.set_attribute("opsbot.verdict", classified.verdict.value)
                results.append(classified)
            except ConcurrentModification:
                continue  # another process moved it first; it is theirs this round
        return results

    def expire_requests(self, now: datetime | None = None, limit: int = 200) -> list[Intent]:
        """Requests nobody approved or denied within their policy's time, before anything ran, end EXPIRED; each
        (workflow, environment) is asked only for those past its own time."""
        now = now or self.rt.clock.now()
        with self.rt.store.transaction() as tx:
            due = tx.undecided_requests(request_deadlines(self.rt, now), limit)
        expired = []
        for intent in due:
            ttl = self.rt.config.request_ttl(intent.workflow, intent.environment)
            why = (
                f"nobody approved or denied it within {in_words(ttl.total_seconds())}; nothing ran. "
                "Its requester can request it again"
            )
            try:
                with self.rt.store.transaction() as tx:
                    data = {"waited_hours": round(ttl.total_seconds() / 3600, 2)}
                    move = Move(S.EXPIRED, why)
                    expired.append(transition(tx, intent, move, EventKind.EXPIRED, self.actor, now, data))
            except ConcurrentModification:
                continue  # approved, denied or cancelled meanwhile: it was decided after all
        return expired

    def _classify(self, intent: Intent, now: datetime) -> Classification:
        status = intent.status
        if status is S.RUNNING:
            return self._executor_lost(intent, now)
        if status is S.RETRYABLE:
            spec = self.rt.registry.get(intent.workflow)
            if intent.attempts > spec.retry.requeues:
                reason = f"gave up after {intent.attempts} attempts: {intent.last_error}"
                return self._move(intent, now, S.BLOCKED, reason, EventKind.RETRIES_EXHAUSTED)
            return self._move(intent, now, S.APPROVED, "retrying after a transient failure", EventKind.REQUEUED)
        if status in (S.CONVERGING, S.UNKNOWN):
            return self._observe(intent, now)
        if status is S.SCHEDULED:
            return self._start_scheduled(intent, now)
        return self._move(intent, now, status, intent.status_reason or "", None)

    def _start_scheduled(self, intent: Intent, now: datetime) -> Classification:
        """Its start came: it runs if its window is open and, before a first run, its approval still holds."""
        later = next_start(self.rt.config, intent, now)
        if later is not None:  # the window passed while nothing ran (or the windows changed): the next one
            reason = f"its start passed before it could run; {scheduled_reason(later)}"
            delay = (later.starts_at - now).total_seconds()
            return self._move(intent, now, S.SCHEDULED, reason, EventKind.SCHEDULED, delay)
        opened = start_text(self.rt.config, intent, now)
        with self.rt.store.transaction() as tx:
            records, approvals = tx.steps(intent.id), tx.approvals(intent.id)
        first = not records or (intent.mode is Mode.COMPENSATE and all(r.seq < COMPENSATION_SEQ_BASE for r in records))
        if first or intent.reauthorize:  # the executor's gate wants an unexpired approval: say so plainly now
            spec = self.rt.registry.get(intent.workflow)
            check = check_approvals(self.rt.config, spec, intent, approvals, now, fresh=True, groups=self.rt.groups)
            if not check.ok:
                hint = expired_hint(self.rt.config, intent, self.rt.approval_ttl)
                reason = f"{opened}, but the approval no longer holds: {check.reason}{hint}; approve again to run it"
                return self._move(intent, now, S.NEEDS_REAPPROVAL, reason, EventKind.APPROVAL_EXPIRED)
        return self._move(intent, now, S.APPROVED, f"{opened}; starting", EventKind.WINDOW_OPENED)

    def _executor_lost(self, intent: Intent, now: datetime) -> Classification:
        reason = f"executor {intent.lease_owner} stopped renewing its lease; resuming from checkpoints"
        with self.rt.store.transaction() as tx:
            # First, so a heartbeat that landed after we read the intent wins and nothing below happens.
            in_flight = [r for r in tx.steps(intent.id) if r.status is StepStatus.STARTED]
            lost = {"lease_owner": intent.lease_owner, "unknown_steps": [r.name for r in in_flight]}
            transition(
                tx, intent, Move(S.APPROVED, reason), EventKind.EXECUTOR_LOST, self.actor, now, lost, taking_over=True
            )
            for rec in in_flight:
                tx.update_step(
                    intent.id, rec.seq, status=StepStatus.UNKNOWN, error="the executor died during this step"
                )
                data = {"step": rec.name, "reason": "executor lease expired mid-step"}
                tx.append_event(EventDraft(EventKind.STEP_UNKNOWN, self.actor, data, intent.id), now)
        TAKEOVERS.labels(intent.workflow).inc()
        for rec in in_flight:
            UNKNOWN_OUTCOMES.labels(intent.workflow, rec.name).inc()
        return Classification(intent.id, intent.workflow, Verdict.RETRYABLE, S.APPROVED, reason)

    def _observe(self, intent: Intent, now: datetime) -> Classification:
        spec = self.rt.registry.get(intent.workflow)
        changed = definition_change(spec, intent.plan)
        if changed is not None and intent.mode.value == "forward":
            reason = (
                f"the workflow changed under this intent after it started ({changed}); compensate the completed "
                "steps or mark done after checking by hand"
            )
            return self._move(intent, now, S.UNSAFE, reason, EventKind.DEFINITION_CHANGED)
        wf = spec.factory()
        with self.rt.store.transaction() as tx:
            records = {r.seq: r for r in tx.steps(intent.id)}
        open_steps = [
            (ps, records[ps.seq])
            for ps in planned_steps(spec, wf, intent.mode, records, plan_items(intent))
            if ps.seq in records and records[ps.seq].status is not StepStatus.SUCCEEDED
        ]
        if not open_steps:
            return self._move(intent, now, S.APPROVED, "nothing in flight; resuming", EventKind.REQUEUED)
        ps, rec = open_steps[0]
        ctx = self._ctx(intent, spec.params.model_validate(intent.params), rec, ps.item)
        try:
            observation = observe(ps, active=True, ctx=ctx)
        except PermanentError as exc:
            reason = f"{ps.step.name}: {exc}; running it once more to record the failure"
            return self._move(intent, now, S.APPROVED, reason, EventKind.OBSERVED)
        if isinstance(observation, Done | Absent):
            why = "converged" if isinstance(observation, Done) else observation.reason
            return self._move(intent, now, S.APPROVED, f"{ps.step.name}: {why}; resuming", EventKind.OBSERVED)
        if isinstance(observation, Unclear):
            delay = self._backoff(rec, now, 30.0)
            reason = f"{ps.step.name}: {observation.reason}"
            return self._move(intent, now, S.UNKNOWN, reason, EventKind.STILL_UNKNOWN, delay)
        window = ps.step.convergence_window or spec.timeout
        if (now - window_start(rec)).total_seconds() > window:
            reason = f"{ps.step.name} did not converge within {window:g}s: {observation.reason}"
            return self._move(intent, now, S.BLOCKED, reason, EventKind.CONVERGENCE_WINDOW_EXCEEDED)
        delay = self._backoff(rec, now, observation.retry_after)
        return self._move(intent, now, S.CONVERGING, f"{ps.step.name}: {observation.reason}", None, delay)

    def _ctx(self, intent: Intent, params: Any, rec: StepRecord, item: str | None) -> StepContext[Any]:
        def no_checkpoint(_ids: dict[str, Any]) -> None:
            raise RuntimeError("the reconciler observes; it does not checkpoint")

        env = self.rt.config.environment(intent.environment)
        return StepContext(
            intent, params, env, self.rt.adapters, rec.idempotency_token, {}, self.rt.clock.now, no_checkpoint, item
        )

    @staticmethod
    def _backoff(rec: StepRecord, now: datetime, base: float) -> float:
        """Check less often the longer something has been in flight: a quarter of the elapsed time."""
        elapsed = (now - window_start(rec)).total_seconds()
        return min(max(base, elapsed / 4), MAX_CHECK_INTERVAL)

    def _move(
        self,
        intent: Intent,
        now: datetime,
        status: IntentStatus,
        reason: str,
        kind: EventKind | None,
        delay: float | None = None,
    ) -> Classification:
        next_check = now + timedelta(seconds=delay) if delay is not None else None
        with self.rt.store.transaction() as tx:
            if status is intent.status and reason == intent.status_reason:
                # Nothing changed but when to look again: not a transition, so the version (and every button
                # carrying it) stays valid.
                tx.reschedule(intent, next_check)
                if kind in (EventKind.OBSERVED, EventKind.REQUEUED):
                    data = {"status": status.value, "reason": reason}
                    tx.append_event(EventDraft(kind, self.actor, data, intent.id), now)
            else:
                kind = kind if status is not intent.status or kind in (EventKind.OBSERVED, EventKind.REQUEUED) else None
                transition(tx, intent, Move(status, reason, next_check_at=next_check), kind, self.actor, now)
        verdict = verdict_of(status) or Verdict.BLOCKED
        log.info("reconciled", intent_id=intent.id, verdict=verdict.value, reason=reason)
        return Classification(intent.id, intent.workflow, verdict, status, reason)


def request_deadlines(rt: Runtime, now: datetime, ahead: timedelta = timedelta(0)) -> dict[tuple[str, str], datetime]:
    """For every workflow in every environment: a request waiting since before this expires by `now + ahead`."""
    return {
        (spec.name, env): now + ahead - rt.config.request_ttl(spec.name, env)
        for spec in rt.registry
        for env in rt.config.environments
    }
