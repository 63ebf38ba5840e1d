"""Operator-facing operations, shared by the CLI and Slack: request, approve, deny and the recovery actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from workflows.deps import Runtime
from workflows.errors import (
    ConcurrentModification,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    StalePlan,
)
from workflows.guidance import Action, Guidance, available_actions, guidance
from workflows.model import (
    Approval,
    AuditEvent,
    Decision,
    EventDraft,
    EventKind,
    Intent,
    IntentId,
    IntentStatus,
    Mode,
    NewIntent,
    StepRecord,
    StepStatus,
)
from workflows.plan import canonical_json, sha256_hex
from workflows.planning import compute_plan, parse_params
from workflows.policy import check_approver, check_request, effective_policy, holds_approver_role
from workflows.ports import StoreTx

log = structlog.get_logger("opsbot.service")


@dataclass(frozen=True, slots=True)
class RequestResult:
    intent: Intent
    created: bool


@dataclass(frozen=True, slots=True)
class IntentView:
    """Everything an operator needs about one intent, as frozen data for the CLI and Slack renderers."""

    intent: Intent
    steps: tuple[StepRecord, ...]
    approvals: tuple[Approval, ...]
    events: tuple[AuditEvent, ...]
    guidance: Guidance
    approvals_needed: int


class OpsService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    # intake --------------------------------------------------------------------------------------
    def request(
        self, workflow: str, raw: dict[str, Any], environment: str, actor: str, idempotency_key: str | None = None
    ) -> RequestResult:
        spec = self.rt.registry.get(workflow)
        self.rt.config.environment(environment)
        self._guarded(
            lambda: check_request(self.rt.config, spec, actor, environment),
            actor,
            None,
            EventKind.REQUEST_REFUSED,
            {"workflow": workflow, "environment": environment},
        )
        params = parse_params(spec, raw)
        canonical = params.model_dump(mode="json")
        key = idempotency_key or "auto:" + sha256_hex(canonical_json([workflow, environment, canonical]))[:32]
        with self.rt.store.transaction() as tx:
            existing = tx.get_intent_by_key(key)
        # A derived key dedupes reruns of a request still in flight; once that intent is over, asking again
        # is a new operation. An explicit key (CI) is honoured forever.
        if existing is not None and (idempotency_key is not None or not existing.status.terminal):
            return self._duplicate(existing, workflow, canonical, environment, actor)
        plan = compute_plan(self.rt, spec, params, environment)
        now = self.rt.clock.now()
        new = NewIntent(
            IntentId(self.rt.ids.new_id()),
            workflow,
            environment,
            canonical,
            actor,
            key,
            plan.model_dump(mode="json"),
            plan.hash,
            now,
        )
        with self.rt.store.transaction() as tx:
            if existing is not None:
                tx.retire_idempotency_key(existing)
            intent = tx.insert_intent(new)
            if intent is not None:
                tx.append_event(
                    EventDraft(
                        EventKind.REQUESTED,
                        actor,
                        {"workflow": workflow, "params": canonical, "environment": environment, "plan_hash": plan.hash},
                        new.id,
                    ),
                    now,
                )
        if intent is None:  # lost a race with an identical request
            with self.rt.store.transaction() as tx:
                raced = tx.get_intent_by_key(key)
            assert raced is not None
            return self._duplicate(raced, workflow, canonical, environment, actor)
        log.info("intent_requested", intent_id=intent.id, workflow=workflow, plan_hash=plan.hash[:12])
        return RequestResult(intent, created=True)

    def _duplicate(
        self, existing: Intent, workflow: str, params: dict[str, Any], env: str, actor: str
    ) -> RequestResult:
        if (existing.workflow, existing.params, existing.environment) != (workflow, params, env):
            raise InvalidInput(f"idempotency key already used by intent {existing.id} for a different request")
        with self.rt.store.transaction() as tx:
            tx.append_event(
                EventDraft(EventKind.DUPLICATE_REQUEST, actor, {"status": existing.status.value}, existing.id),
                self.rt.clock.now(),
            )
        return RequestResult(existing, created=False)

    # approval ------------------------------------------------------------------------------------
    def approve(self, intent_id: str, actor: str, plan_hash: str | None = None) -> Intent:
        intent = self.get(intent_id)
        spec = self.rt.registry.get(intent.workflow)
        if intent.status is IntentStatus.APPROVED or intent.status is IntentStatus.RUNNING:
            raise InvalidTransition(f"intent {intent.id} is already approved ({intent.status.value})")
        if intent.status not in (IntentStatus.PENDING_APPROVAL, IntentStatus.NEEDS_REAPPROVAL):
            raise InvalidTransition(f"intent {intent.id} is {intent.status.value}; there is nothing to approve")
        if plan_hash is not None and not intent.plan_hash.startswith(plan_hash):
            self._audit_refusal(intent.id, actor, EventKind.APPROVAL_REFUSED, "stale plan")
            raise StalePlan(f"the plan changed since you saw it (now {intent.plan_hash[:12]}); review it again")
        self._guarded(
            lambda: check_approver(self.rt.config, spec, actor, intent.requester),
            actor,
            intent.id,
            EventKind.APPROVAL_REFUSED,
            {"plan_hash": intent.plan_hash},
        )
        needed = effective_policy(self.rt.config, spec).approvals
        for _ in range(5):
            now = self.rt.clock.now()
            try:
                with self.rt.store.transaction() as tx:
                    current = tx.get_intent(intent.id)
                    assert current is not None
                    if current.plan_hash != intent.plan_hash:
                        raise StalePlan("the plan changed while you were approving it; review it again")
                    if current.status not in (IntentStatus.PENDING_APPROVAL, IntentStatus.NEEDS_REAPPROVAL):
                        return current
                    tx.add_approval(
                        Approval(
                            intent.id,
                            actor,
                            current.plan_hash,
                            Decision.APPROVE,
                            now,
                            now + timedelta(seconds=self.rt.approval_ttl),
                        )
                    )
                    tx.append_event(
                        EventDraft(EventKind.APPROVED, actor, {"plan_hash": current.plan_hash}, intent.id), now
                    )
                    valid = {a.actor for a in tx.approvals(intent.id) if a.valid_for(current.plan_hash, now)}
                    if len(valid) < needed:
                        return current
                    return tx.update_intent(
                        current,
                        status=IntentStatus.APPROVED,
                        status_reason=f"approved by {', '.join(sorted(valid))}",
                        updated_at=now,
                        next_check_at=None,
                    )
            except ConcurrentModification:
                continue
        raise InvalidTransition(f"intent {intent.id} is changing too fast to approve; try again")

    def deny(self, intent_id: str, actor: str, reason: str = "") -> Intent:
        intent = self.get(intent_id)
        spec = self.rt.registry.get(intent.workflow)
        if intent.status not in (IntentStatus.PENDING_APPROVAL, IntentStatus.NEEDS_REAPPROVAL):
            raise InvalidTransition(f"intent {intent.id} is {intent.status.value}; it can no longer be denied")
        self._guarded(
            lambda: check_approver(self.rt.config, spec, actor, intent.requester),
            actor,
            intent.id,
            EventKind.DENY_REFUSED,
            {},
        )
        now = self.rt.clock.now()
        return self._transition(
            intent,
            IntentStatus.DENIED,
            actor,
            EventKind.DENIED,
            reason or "denied without a reason",
            approval=Approval(intent.id, actor, intent.plan_hash, Decision.DENY, now, now, reason or None),
        )

    # recovery ------------------------------------------------------------------------------------
    def cancel(self, intent_id: str, actor: str, reason: str) -> Intent:
        intent = self._allowed(intent_id, Action.CANCEL)
        if actor != intent.requester:
            self._require_approver(intent, actor, "cancel")
        return self._transition(intent, IntentStatus.CANCELLED, actor, EventKind.CANCELLED, reason)

    def retry(self, intent_id: str, actor: str, reason: str) -> Intent:
        intent = self._allowed(intent_id, Action.RETRY)
        if intent.status is IntentStatus.NEEDS_REAPPROVAL:
            spec = self.rt.registry.get(intent.workflow)
            plan = compute_plan(self.rt, spec, spec.params.model_validate(intent.params), intent.environment)
            return self._transition(
                intent,
                IntentStatus.PENDING_APPROVAL,
                actor,
                EventKind.REPLANNED,
                reason,
                plan=plan.model_dump(mode="json"),
                plan_hash=plan.hash,
            )
        return self._transition(intent, IntentStatus.APPROVED, actor, EventKind.RETRY, reason, started_at=None)

    def resume(self, intent_id: str, actor: str, reason: str) -> Intent:
        intent = self._allowed(intent_id, Action.RESUME)
        return self._transition(
            intent, IntentStatus.APPROVED, actor, EventKind.RESUMED, reason, reopen_window=True, started_at=None
        )

    def mark_done(self, intent_id: str, actor: str, reason: str) -> Intent:
        if not reason.strip():
            raise InvalidInput("mark-done needs a reason: say what was verified by hand")
        intent = self._allowed(intent_id, Action.MARK_DONE)
        self._require_approver(intent, actor, "mark done")
        return self._transition(intent, IntentStatus.MARKED_DONE, actor, EventKind.MARKED_DONE, reason)

    def compensate(self, intent_id: str, actor: str, reason: str) -> Intent:
        intent = self._allowed(intent_id, Action.COMPENSATE)
        self._require_approver(intent, actor, "compensate")
        return self._transition(
            intent,
            IntentStatus.APPROVED,
            actor,
            EventKind.COMPENSATION_REQUESTED,
            reason,
            mode=Mode.COMPENSATE,
            started_at=None,
        )

    # reading -------------------------------------------------------------------------------------
    def show(self, intent_id: str) -> IntentView:
        intent = self.get(intent_id)
        spec = self.rt.registry.get(intent.workflow)
        with self.rt.store.transaction() as tx:
            steps, approvals, events = tx.steps(intent.id), tx.approvals(intent.id), tx.events(intent.id)
        return IntentView(
            intent,
            tuple(steps),
            tuple(approvals),
            tuple(events),
            guidance(intent, spec, steps),
            effective_policy(self.rt.config, spec).approvals,
        )

    def list(self, status: IntentStatus | None = None, limit: int = 50) -> list[Intent]:
        with self.rt.store.transaction() as tx:
            return tx.list_intents([status] if status else None, limit)

    # internals -----------------------------------------------------------------------------------
    def get(self, intent_id: str) -> Intent:
        with self.rt.store.transaction() as tx:
            intent = tx.get_intent(IntentId(intent_id))
        if intent is None:
            raise NotFound(f"no intent with id {intent_id!r}")
        return intent

    def _allowed(self, intent_id: str, action: Action) -> Intent:
        intent = self.get(intent_id)
        spec = self.rt.registry.get(intent.workflow)
        with self.rt.store.transaction() as tx:
            steps = tx.steps(intent.id)
        allowed = available_actions(intent, spec, steps)
        if action not in allowed:
            options = ", ".join(a.value for a in allowed) or "none (wait for it to finish)"
            raise InvalidTransition(
                f"{action.value} is not available while intent {intent.id} is {intent.status.value}; "
                f"available now: {options}"
            )
        return intent

    def _require_approver(self, intent: Intent, actor: str, what: str) -> None:
        spec = self.rt.registry.get(intent.workflow)
        if not holds_approver_role(self.rt.config, spec, actor):
            self._audit_refusal(intent.id, actor, EventKind.ACTION_REFUSED, f"{what} needs an approver role")
            raise PermissionDenied(f"{what} needs an approver role for {spec.name}")

    def _guarded(
        self, check: Any, actor: str, intent_id: IntentId | None, kind: EventKind, data: dict[str, Any]
    ) -> None:
        """Run a policy check; a refusal is audited before it reaches the caller."""
        try:
            check()
        except PermissionDenied as exc:
            self._audit_refusal(intent_id, actor, kind, str(exc), data)
            raise

    def _audit_refusal(
        self, intent_id: IntentId | None, actor: str, kind: EventKind, reason: str, data: dict[str, Any] | None = None
    ) -> None:
        with self.rt.store.transaction() as tx:
            tx.append_event(EventDraft(kind, actor, {"reason": reason, **(data or {})}, intent_id), self.rt.clock.now())

    def _transition(
        self,
        intent: Intent,
        status: IntentStatus,
        actor: str,
        kind: EventKind,
        reason: str,
        *,
        approval: Approval | None = None,
        reopen_window: bool = False,
        **changes: Any,
    ) -> Intent:
        now = self.rt.clock.now()
        try:
            with self.rt.store.transaction() as tx:
                if approval is not None:
                    tx.add_approval(approval)
                if reopen_window:
                    self._reopen_windows(tx, intent, now)
                moved = tx.update_intent(
                    intent,
                    status=status,
                    status_reason=f"{kind} by {actor}: {reason}",
                    next_check_at=None,
                    updated_at=now,
                    **changes,
                )
                tx.append_event(
                    EventDraft(
                        kind, actor, {"reason": reason, "from": intent.status.value, "to": status.value}, intent.id
                    ),
                    now,
                )
        except ConcurrentModification:
            raise InvalidTransition(f"intent {intent.id} changed while you acted; look at it again") from None
        log.info("intent_transition", intent_id=intent.id, kind=kind, to=status.value)
        return moved

    @staticmethod
    def _reopen_windows(tx: StoreTx, intent: Intent, now: Any) -> None:
        """An operator's resume gives converging steps a fresh convergence window."""
        for rec in tx.steps(intent.id):
            if rec.status is StepStatus.PENDING:
                tx.update_step(intent.id, rec.seq, output={**rec.output, "window_from": now.isoformat()})
