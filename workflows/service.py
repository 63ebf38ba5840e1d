"""Operator-facing operations, shared by the CLI and Slack: request, approve, deny and the recovery actions.

Every action is checked here, against who is asking now (`workflows.authorization`) and what the intent's state
offers (`workflows.states`), whatever a button or a terminal showed them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from workflows.authoring import WorkflowDefinition
from workflows.authorization import check_approvals, may, requesters_of, require, rule
from workflows.deps import Runtime
from workflows.errors import (
    ConcurrentModification,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    StalePlan,
)
from workflows.guidance import Guidance, available_actions, guidance
from workflows.model import (
    Approval,
    AuditEvent,
    Decision,
    EventDraft,
    EventKind,
    Intent,
    IntentId,
    IntentStatus,
    LockHolder,
    Mode,
    Move,
    NewIntent,
    NewPlan,
    StepRecord,
    StepStatus,
)
from workflows.plan import canonical_json, sha256_hex
from workflows.planning import compensation_plan, compute_plan, parse_params, plan_items, plan_locks, ticket_of
from workflows.ports import StoreTx
from workflows.scheduling import (
    Schedule,
    approval_ttl,
    check_start,
    next_start,
    scheduled_reason,
    shown_schedule,
    take_start,
)
from workflows.states import Action
from workflows.steps import expanded
from workflows.telemetry import REQUEST_TO_APPROVAL, span, traceparent
from workflows.tickets import check_ticket, take_ticket
from workflows.transitions import transition

log = structlog.get_logger("opsbot.service")

S = IntentStatus
MIN_HASH_PREFIX = 12
_HEX = re.compile(r"^[0-9a-f]+$")


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
    holders: tuple[LockHolder, ...] = ()  # who holds the resources it waits for
    schedule: Schedule | None = None  # when it starts, if it waits (or would wait, once approved)
    as_of: datetime | None = None  # when this view was read: "in 5 h 12 min" is counted from here
    production: bool = True  # its environment is a production one (an unknown environment counts as one)
    approver_roles: tuple[str, ...] = ()  # the roles whose members may approve it
    decide_by: datetime | None = None  # awaiting approval: when the request expires if nobody decides
    steps_planned: tuple[tuple[str, str], ...] = ()  # the workflow's forward steps, (name, description), in order


class OpsService:
    """The operations; `origin` is recorded beside the actor on every event it writes (the CLI's OS user@host)."""

    def __init__(self, rt: Runtime, origin: str | None = None) -> None:
        self.rt, self.origin = rt, origin

    # intake --------------------------------------------------------------------------------------
    def request(
        self, workflow: str, raw: dict[str, Any], environment: str, actor: str, idempotency_key: str | None = None
    ) -> RequestResult:
        """A new intent with its plan, awaiting approval; its trace starts here (`opsbot.request`)."""
        with span("opsbot.request", attributes={"opsbot.workflow": workflow, "opsbot.environment": environment}) as s:
            result = self._request(workflow, raw, environment, actor, idempotency_key)
            s.set_attribute("opsbot.intent_id", result.intent.id)
            return result

    def _request(
        self, workflow: str, raw: dict[str, Any], environment: str, actor: str, idempotency_key: str | None
    ) -> RequestResult:
        spec = self.rt.registry.get(workflow)
        self.rt.config.environment(environment)
        self._require(
            spec, environment, Action.REQUEST, actor, (), None, {"workflow": workflow, "environment": environment}
        )
        raw, given = take_ticket(raw)
        ticket = check_ticket(self.rt.config, spec.name, environment, given)
        raw, at = take_start(raw)
        not_before = check_start(self.rt.config, spec.name, environment, at, self.rt.clock.now())
        params = parse_params(spec, raw)
        canonical = params.model_dump(mode="json")
        asked = [workflow, environment, canonical, *([ticket.id] if ticket else [])]
        if not_before is not None:
            asked.append(not_before.isoformat())
        key = idempotency_key or "auto:" + sha256_hex(canonical_json(asked))[:32]
        with self.rt.store.transaction() as tx:
            existing = tx.get_intent_by_key(key)
        # A derived key dedupes reruns of a request still in flight; once that intent is over, asking again
        # is a new operation. An explicit key (CI) is honoured forever.
        if existing is not None and (idempotency_key is not None or not existing.status.terminal):
            return self._duplicate(existing, workflow, canonical, environment, actor, not_before)
        plan = compute_plan(self.rt, spec, params, environment, actor, ticket=ticket)
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
            traceparent(),
            not_before,
        )
        with self.rt.store.transaction() as tx:
            if existing is not None:
                tx.retire_idempotency_key(existing)
            intent = tx.insert_intent(new)
            if intent is not None:
                data = {"workflow": workflow, "params": canonical, "environment": environment, "plan_hash": plan.hash}
                if ticket is not None:
                    data["ticket"] = ticket.id
                if not_before is not None:
                    data["at"] = not_before.isoformat()
                tx.append_event(self._event(EventKind.REQUESTED, actor, data, new.id), now)
        if intent is None:  # lost a race with an identical request
            with self.rt.store.transaction() as tx:
                raced = tx.get_intent_by_key(key)
            assert raced is not None
            return self._duplicate(raced, workflow, canonical, environment, actor, not_before)
        log.info("intent_requested", intent_id=intent.id, workflow=workflow, plan_hash=plan.hash[:12])
        return RequestResult(intent, created=True)

    def request_again(self, intent_id: str, actor: str, reason: str = "") -> Intent:
        """An expired request, asked for again by its requester in one step: the same workflow, parameters,
        environment and ticket, planned afresh as a new intent (anyone who may request can also type it)."""
        intent = self._offered(intent_id, Action.REQUEST, actor)
        if actor != intent.requester:
            raise PermissionDenied(
                f"only its requester (@{intent.requester}) can request `{intent.id}` again in one step; "
                f"anyone who may request {intent.workflow} can type the request"
            )
        raw = {**intent.params, **({"ticket": intent.plan["ticket"]} if intent.plan.get("ticket") else {})}
        again = self.request(intent.workflow, raw, intent.environment, actor).intent
        with self.rt.store.transaction() as tx:
            data = {"new_intent": again.id, "why": reason or "requested again"}
            tx.append_event(self._event(EventKind.REQUESTED_AGAIN, actor, data, intent.id), self.rt.clock.now())
        return again

    def _duplicate(
        self,
        existing: Intent,
        workflow: str,
        params: dict[str, Any],
        env: str,
        actor: str,
        not_before: datetime | None = None,
    ) -> RequestResult:
        asked = (workflow, params, env, not_before)
        if (existing.workflow, existing.params, existing.environment, existing.not_before) != asked:
            raise InvalidInput(f"idempotency key already used by intent {existing.id} for a different request")
        with self.rt.store.transaction() as tx:
            data = {"status": existing.status.value}
            tx.append_event(self._event(EventKind.DUPLICATE_REQUEST, actor, data, existing.id), self.rt.clock.now())
        return RequestResult(existing, created=False)

    # approval ------------------------------------------------------------------------------------
    def approve(self, intent_id: str, actor: str, plan_hash: str) -> Intent:
        """Approve exactly the plan the approver read: the full hash, or at least its first 12 hex digits."""
        intent = self.get(intent_id)
        with span("opsbot.approve", intent.traceparent, {"opsbot.intent_id": intent.id}):
            return self._approve(intent, actor, plan_hash)

    def _approve(self, intent: Intent, actor: str, plan_hash: str) -> Intent:
        spec = self.rt.registry.get(intent.workflow)
        if not intent.status.awaiting_approval:
            if intent.status in (S.APPROVED, S.SCHEDULED, S.WAITING, S.RUNNING):
                raise InvalidTransition(f"intent {intent.id} is already approved ({intent.status.value})")
            raise InvalidTransition(f"intent {intent.id} is {intent.status.value}; there is nothing to approve")
        self._check_hash(intent, actor, plan_hash)
        self._require(spec, intent.environment, Action.APPROVE, actor, requesters_of(intent), intent.id)
        for _ in range(5):
            now = self.rt.clock.now()
            try:
                with self.rt.store.transaction() as tx:
                    current = tx.get_intent(intent.id)
                    assert current is not None
                    if current.plan_hash != intent.plan_hash:
                        raise StalePlan("the plan changed while you were approving it; review it again")
                    if not current.status.awaiting_approval:
                        return current
                    later = next_start(self.rt.config, current, now)  # where it goes once approved
                    ttl = approval_ttl(self.rt.config, current, later, self.rt.approval_ttl)
                    expires = now + timedelta(seconds=ttl)
                    tx.add_approval(Approval(intent.id, actor, current.plan_hash, Decision.APPROVE, now, expires))
                    data = {"plan_hash": current.plan_hash}
                    tx.append_event(self._event(EventKind.APPROVED, actor, data, intent.id), now)
                    approvals = tx.approvals(intent.id)
                    check = check_approvals(
                        self.rt.config, spec, current, approvals, now, fresh=True, groups=self.rt.groups
                    )
                    if not check.ok:
                        return current
                    move, kind, said = _approved_move(current, check.approvers, approvals, later, now)
                    moved = transition(tx, current, move, kind, actor, now, said)
                REQUEST_TO_APPROVAL.labels(intent.workflow).observe((now - intent.created_at).total_seconds())
                return moved
            except ConcurrentModification:
                continue
        raise InvalidTransition(f"intent {intent.id} is changing too fast to approve; try again")

    def _check_hash(self, intent: Intent, actor: str, plan_hash: str) -> None:
        given = (plan_hash or "").strip().lower()
        if len(given) < MIN_HASH_PREFIX or not _HEX.match(given):
            self._audit_refusal(intent.id, actor, EventKind.APPROVAL_REFUSED, "no plan hash")
            raise InvalidInput(
                f"say which plan you approve: its hash, at least {MIN_HASH_PREFIX} hex digits "
                f"(the current plan is {intent.plan_hash[:MIN_HASH_PREFIX]})"
            )
        if not intent.plan_hash.startswith(given):
            self._audit_refusal(intent.id, actor, EventKind.APPROVAL_REFUSED, "stale plan")
            raise StalePlan(f"the plan changed since you saw it (now {intent.plan_hash[:12]}); review it again")

    def deny(self, intent_id: str, actor: str, reason: str = "", plan_hash: str | None = None) -> Intent:
        """Deny the intent's plan; with `plan_hash`, only if it is still the plan the denier saw."""
        intent = self.get(intent_id)
        spec = self.rt.registry.get(intent.workflow)
        if not intent.status.awaiting_approval:
            raise InvalidTransition(f"intent {intent.id} is {intent.status.value}; it can no longer be denied")
        self._require(
            spec, intent.environment, Action.DENY, actor, requesters_of(intent), intent.id, kind=EventKind.DENY_REFUSED
        )
        if plan_hash is not None and not intent.plan_hash.startswith(plan_hash.strip().lower() or "-"):
            self._audit_refusal(intent.id, actor, EventKind.DENY_REFUSED, "stale plan")
            raise StalePlan(
                f"the plan changed since you opened the form (now {intent.plan_hash[:12]}); nothing was denied: "
                "look at the new plan, then deny it if you still mean to"
            )
        now = self.rt.clock.now()
        approval = Approval(intent.id, actor, intent.plan_hash, Decision.DENY, now, now, reason or None)
        return self._act(
            intent, Move(S.DENIED, reason or "denied without a reason"), EventKind.DENIED, actor, approval=approval
        )

    # recovery ------------------------------------------------------------------------------------
    def cancel(self, intent_id: str, actor: str, reason: str) -> Intent:
        intent = self._offered(intent_id, Action.CANCEL, actor)
        if not self._agreed(intent, Action.CANCEL, actor, reason):
            return intent
        return self._act(intent, Move(S.CANCELLED, reason), EventKind.CANCELLED, actor)

    def retry(self, intent_id: str, actor: str, reason: str) -> Intent:
        intent = self._offered(intent_id, Action.RETRY, actor)
        if intent.status is S.NEEDS_REAPPROVAL:
            spec = self.rt.registry.get(intent.workflow)
            params = spec.params.model_validate(intent.params)
            plan = compute_plan(
                self.rt, spec, params, intent.environment, intent.requester, ticket=ticket_of(intent.plan)
            )
            move = Move(S.PENDING_APPROVAL, reason, new_plan=NewPlan(plan.model_dump(mode="json"), plan.hash))
            return self._act(intent, move, EventKind.REPLANNED, actor)
        return self._reexecute(intent, actor, reason, EventKind.RETRY)

    def resume(self, intent_id: str, actor: str, reason: str) -> Intent:
        intent = self._offered(intent_id, Action.RESUME, actor)
        return self._reexecute(intent, actor, reason, EventKind.RESUMED, reopen_windows=True)

    def mark_done(self, intent_id: str, actor: str, reason: str) -> Intent:
        if not reason.strip():
            raise InvalidInput("mark-done needs a reason: say what was verified by hand")
        intent = self._offered(intent_id, Action.MARK_DONE, actor)
        if not self._agreed(intent, Action.MARK_DONE, actor, reason):
            return intent
        return self._act(intent, Move(S.MARKED_DONE, reason), EventKind.MARKED_DONE, actor)

    def compensate(self, intent_id: str, actor: str, reason: str) -> Intent:
        """Propose undoing the completed steps: a compensation plan that others must approve before it runs."""
        intent = self._offered(intent_id, Action.COMPENSATE, actor)
        spec = self.rt.registry.get(intent.workflow)
        with self.rt.store.transaction() as tx:
            steps = tx.steps(intent.id)
        plan = compensation_plan(spec, intent, steps, actor)
        move = Move(
            S.PENDING_APPROVAL,
            reason,
            mode=Mode.COMPENSATE,
            new_plan=NewPlan(plan.model_dump(mode="json"), plan.hash),
            fresh_budget=True,
            reauthorize=False,
            windows_waived=False,  # a new plan: its run keeps to the maintenance windows unless waived again
        )
        return self._act(intent, move, EventKind.COMPENSATION_REQUESTED, actor)

    def run_now(self, intent_id: str, actor: str, reason: str) -> Intent:
        """Start a scheduled intent now, outside its maintenance window or before its start (approver role);
        its runs no longer wait for a window, and the run is still gated by an approval that holds now."""
        intent = self._offered(intent_id, Action.RUN_NOW, actor)
        if not self._agreed(intent, Action.RUN_NOW, actor, reason):
            return intent
        return self._reexecute(intent, actor, reason, EventKind.RUN_NOW, windows_waived=True)

    def _reexecute(
        self,
        intent: Intent,
        actor: str,
        reason: str,
        kind: EventKind,
        reopen_windows: bool = False,
        windows_waived: bool | None = None,
    ) -> Intent:
        """Back to execution, under an approval that holds *now*; otherwise ask for a new one, saying why."""
        spec = self.rt.registry.get(intent.workflow)
        now = self.rt.clock.now()
        with self.rt.store.transaction() as tx:
            approvals = tx.approvals(intent.id)
        check = check_approvals(self.rt.config, spec, intent, approvals, now, fresh=True, groups=self.rt.groups)
        if check.ok:
            move = Move(S.APPROVED, reason, fresh_budget=True, reauthorize=True, windows_waived=windows_waived)
            return self._act(intent, move, kind, actor, reopen_windows=reopen_windows)
        why = f"{reason} — needs a new approval first: {check.reason}"
        move = Move(S.NEEDS_REAPPROVAL, why, fresh_budget=True, reauthorize=True, windows_waived=windows_waived)
        return self._act(intent, move, kind, actor, reopen_windows=reopen_windows)

    # reading -------------------------------------------------------------------------------------
    def show(self, intent_id: str, viewer: str | None = None) -> IntentView:
        """One intent with everything about it; with `viewer`, only if they may see it."""
        intent = self.get(intent_id)
        spec = self.rt.registry.get(intent.workflow)
        if viewer is not None:
            requesters = (intent.requester,)
            require(self.rt.config, spec, intent.environment, Action.VIEW, viewer, requesters, groups=self.rt.groups)
        with self.rt.store.transaction() as tx:
            steps, approvals, events = tx.steps(intent.id), tx.approvals(intent.id), tx.events(intent.id)
            holders = tx.lock_holders(plan_locks(intent)) if intent.status is S.WAITING else []
        now = self.rt.clock.now()
        approve = rule(self.rt.config, spec, intent.environment, Action.APPROVE)
        decide_by = (
            intent.updated_at + self.rt.config.request_ttl(spec.name, intent.environment)
            if intent.status.awaiting_approval and not steps  # the expiry scan's own rule
            else None
        )
        return IntentView(
            intent,
            tuple(steps),
            tuple(approvals),
            tuple(events),
            guidance(intent, spec, steps),
            approve.people,
            tuple(h for h in holders if h.intent_id != intent.id),
            shown_schedule(self.rt.config, intent, now),
            now,
            env.production if (env := self.rt.config.environments.get(intent.environment)) is not None else True,
            tuple(sorted(approve.roles)),
            decide_by,
            tuple((s.name, s.description) for s, _ in expanded(spec, plan_items(intent))),
        )

    def list(self, status: IntentStatus | None = None, limit: int = 50) -> list[Intent]:
        with self.rt.store.transaction() as tx:
            return tx.list_intents([status] if status else None, limit)

    def may(self, intent: Intent, action: Action, actor: str) -> bool:
        """Whether `actor` may take `action` on `intent` now: for showing buttons to one person."""
        return may(self.rt.config, self.rt.registry.get(intent.workflow), intent, action, actor, groups=self.rt.groups)

    # internals -----------------------------------------------------------------------------------
    def get(self, intent_id: str) -> Intent:
        with self.rt.store.transaction() as tx:
            intent = tx.get_intent(IntentId(intent_id))
        if intent is None:
            raise NotFound(f"no intent with id {intent_id!r}")
        return intent

    def _offered(self, intent_id: str, action: Action, actor: str) -> Intent:
        """The intent, if its state offers `action` and `actor` may take it now."""
        intent = self.get(intent_id)
        spec = self.rt.registry.get(intent.workflow)
        with self.rt.store.transaction() as tx:
            steps = tx.steps(intent.id)
        offered = available_actions(intent, spec, steps)
        if action not in offered:
            options = ", ".join(a.value for a in offered) or "none (wait for it to finish)"
            raise InvalidTransition(
                f"{action.value} is not available while intent {intent.id} is {intent.status.value}; "
                f"available now: {options}"
            )
        self._require(spec, intent.environment, action, actor, requesters_of(intent), intent.id)
        return intent

    def _require(
        self,
        spec: WorkflowDefinition,
        environment: str,
        action: Action,
        actor: str,
        requesters: tuple[str, ...],
        intent_id: IntentId | None,
        data: dict[str, Any] | None = None,
        kind: EventKind | None = None,
    ) -> None:
        """The policy check; a refusal is audited before it reaches the caller."""
        try:
            require(self.rt.config, spec, environment, action, actor, requesters, groups=self.rt.groups)
        except PermissionDenied as exc:
            refused = kind or {
                Action.REQUEST: EventKind.REQUEST_REFUSED,
                Action.APPROVE: EventKind.APPROVAL_REFUSED,
            }.get(action, EventKind.ACTION_REFUSED)
            self._audit_refusal(intent_id, actor, refused, str(exc), {"action": action.value, **(data or {})})
            raise

    def _agreed(self, intent: Intent, action: Action, actor: str, reason: str) -> bool:
        """True once as many distinct people as the policy asks have asked for `action` on this version."""
        spec = self.rt.registry.get(intent.workflow)
        needed = rule(self.rt.config, spec, intent.environment, action).people
        if needed <= 1:
            return True
        now = self.rt.clock.now()
        with self.rt.store.transaction() as tx:
            agreeing = tx.agree(intent, action.value, actor, reason, now)
            data = {"action": action.value, "agreeing": agreeing, "needed": needed, "reason": reason}
            tx.append_event(self._event(EventKind.ACTION_AGREED, actor, data, intent.id), now)
        return len(agreeing) >= needed

    def _audit_refusal(
        self, intent_id: IntentId | None, actor: str, kind: EventKind, reason: str, data: dict[str, Any] | None = None
    ) -> None:
        with self.rt.store.transaction() as tx:
            tx.append_event(
                self._event(kind, actor, {"reason": reason, **(data or {})}, intent_id), self.rt.clock.now()
            )

    def _event(self, kind: EventKind, actor: str, data: dict[str, Any], intent_id: IntentId | None) -> EventDraft:
        return EventDraft(kind, actor, {**data, "via": self.origin} if self.origin else data, intent_id)

    def _act(
        self,
        intent: Intent,
        move: Move,
        kind: EventKind,
        actor: str,
        *,
        approval: Approval | None = None,
        reopen_windows: bool = False,
    ) -> Intent:
        """One operator transition in one transaction; a race with anyone else is reported, never retried."""
        now = self.rt.clock.now()
        move = replace(move, reason=f"{kind} by {actor}: {move.reason}")
        data = {"via": self.origin} if self.origin else {}
        try:
            with self.rt.store.transaction() as tx:
                if approval is not None:
                    tx.add_approval(approval)
                if reopen_windows:
                    _reopen_windows(tx, intent, now)
                moved = transition(tx, intent, move, kind, actor, now, data)
        except ConcurrentModification:
            raise InvalidTransition(f"intent {intent.id} changed while you acted; look at it again") from None
        log.info("intent_transition", intent_id=intent.id, kind=kind, to=move.to.value)
        return moved


def _approved_move(
    intent: Intent, approvers: tuple[str, ...], approvals: list[Approval], later: Schedule | None, now: datetime
) -> tuple[Move, EventKind | None, dict[str, Any]]:
    """Approved: to run now, or scheduled for its start, saying whether the approval will still hold then."""
    by = f"approved by {', '.join(approvers)}"
    if later is None:
        return Move(S.APPROVED, by), None, {}
    holds = [a.expires_at for a in approvals if a.actor in approvers and a.valid_for(intent.plan_hash, now)]
    reason = f"{by}; {scheduled_reason(later, min(holds, default=None))}"
    said = {"starts": later.describe(now), "starts_at": later.starts_at.isoformat()}
    return Move(S.SCHEDULED, reason, next_check_at=later.starts_at), EventKind.SCHEDULED, said


def _reopen_windows(tx: StoreTx, intent: Intent, now: datetime) -> None:
    """An operator's resume gives converging steps a fresh convergence window."""
    for rec in tx.steps(intent.id):
        if rec.status is StepStatus.PENDING:
            tx.update_step(intent.id, rec.seq, output={**rec.output, "window_from": now.isoformat()})
