"""Thread replies under an intent's parent message: step progress, notable audit events, the final verdict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.blocks.buttons import ACTION_LABELS, intent_buttons, plan_risk
from bot.blocks.kit import MESSAGE_BLOCKS, SECTION_TEXT, Block, actions, context, fallback, fit_blocks, section
from bot.blocks.status import status_badge, status_label
from bot.blocks.text import (
    MAX_ITEMS,
    bullets,
    clean,
    clipped,
    code,
    code_block,
    duration,
    elapsed,
    mention,
    pairs,
    shown,
    slack_date,
    ticket_text,
    truncate_mrkdwn,
)
from workflows.model import AuditEvent, EventKind, StepRecord, StepStatus
from workflows.service import IntentView
from workflows.states import Action

_ERROR = 2000
_DETAIL = SECTION_TEXT - 400  # what the details of one event may take, after its headline
_LIST = SECTION_TEXT - 60


def _reply(emoji: str, head: str, details: str, meta: list[str], note: str = "") -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of one reply; the notification shows the headline and the short `note`."""
    body = f"{emoji} {head}" + (f"\n{details}" if details else "")
    return fallback(head + (f": {note}" if note else "")), [section(body), context(meta)]


# steps -------------------------------------------------------------------------------------------


def render_step(step: StepRecord) -> tuple[str, list[dict[str, Any]]]:
    """A thread reply for one step checkpoint: started, succeeded, failed, unknown, or converging."""
    name = code(step.name)
    attempts = f"{step.attempts} attempt{'s' if step.attempts != 1 else ''}"
    meta = [f"Step {step.seq} · {attempts} · started {slack_date(step.started_at)}"]
    if step.finished_at is not None:
        meta.append(f"took {duration(elapsed(step.started_at, step.finished_at))}")
    error = code_block(step.error, _ERROR) if step.error else ""
    if step.status is StepStatus.STARTED:
        again = f" (attempt {step.attempts})" if step.attempts > 1 else ""
        return _reply(":arrow_forward:", f"Step {name} started{again}", "", meta)
    if step.status is StepStatus.SUCCEEDED:
        ids = pairs(step.external_ids, _ERROR) if step.external_ids else ""
        return _reply(":white_check_mark:", f"Step {name} succeeded", ids, meta)
    if step.status is StepStatus.FAILED:
        return _reply(":x:", f"Step {name} failed after {attempts}", error, meta)
    if step.status is StepStatus.UNKNOWN:
        details = "opsbot will look at the world before doing anything else" + (f"\n{error}" if error else "")
        return _reply(":grey_question:", f"Outcome of step {name} is unknown", details, meta)
    observed = step.output.get("observed")
    seen = f"Last observed: {pairs(observed, 600)}" if observed else ""
    return _reply(":hourglass_flowing_sand:", f"Step {name} requested; waiting for it to converge", seen, meta)


# events ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Notable:
    emoji: str
    title: str
    by: str | None = None  # how the actor is named after the title ("by", "for"); None: not named


_NOTABLE: dict[str, _Notable] = {
    "approved": _Notable(":white_check_mark:", "Approved", "by"),
    "denied": _Notable(":no_entry:", "Denied", "by"),
    "claimed": _Notable(":gear:", "Picked up", "by"),
    "waiting_for_lock": _Notable(":lock:", "Waiting for a resource another intent holds"),
    "scheduled": _Notable(":calendar:", "Scheduled"),
    "window_opened": _Notable(":arrow_forward:", "Its start came; starting"),
    "window_closing": _Notable(":calendar:", "Stopped before a step: it would not fit in the window"),
    "run_now": _Notable(":fast_forward:", "Run now", "by"),
    "lock_released": _Notable(":unlock:", "The resource is free; starting"),
    "definition_changed": _Notable(":rotating_light:", "The workflow changed under this intent"),
    "approver_revoked": _Notable(":no_entry:", "An approver lost the role; approve again"),
    "action_agreed": _Notable(":ballot_box_with_check:", "Agreed", "by"),
    "step_unknown": _Notable(":grey_question:", "Step outcome unknown"),
    "step_resolved_by_observation": _Notable(":mag:", "Step resolved by observation"),
    "step_rerun": _Notable(":repeat:", "Step running again"),
    "executor_lost": _Notable(":skull:", "Executor lost; resuming from checkpoints"),
    "converging": _Notable(":hourglass_flowing_sand:", "Converging"),
    "convergence_window_exceeded": _Notable(":alarm_clock:", "Did not converge in time"),
    "stale_plan": _Notable(":warning:", "The plan is stale; approve the new plan"),
    "approval_expired": _Notable(":hourglass:", "Approval expired; approve again"),
    "retry": _Notable(":repeat:", "Retry requested", "by"),
    "resumed": _Notable(":arrow_forward:", "Resumed", "by"),
    "cancelled": _Notable(":heavy_multiplication_x:", "Cancelled", "by"),
    "marked_done": _Notable(":ballot_box_with_check:", "Marked done", "by"),
    "compensation_requested": _Notable(":rewind:", "Compensation requested", "by"),
    "replanned": _Notable(":memo:", "Plan recomputed", "by"),
    "succeeded": _Notable(":large_green_circle:", "Succeeded"),
    "step_failed": _Notable(":x:", "Failed"),
    "step_unsafe": _Notable(":rotating_light:", "Stopped: unsafe to continue"),
    "step_retryable": _Notable(":arrows_counterclockwise:", "Transient failure; will retry"),
    "retries_exhausted": _Notable(":octagonal_sign:", "Gave up retrying"),
    "timeout": _Notable(":alarm_clock:", "Timed out"),
    "requeued": _Notable(":inbox_tray:", "Requeued"),
    "observed": _Notable(":eyes:", "Observed; resuming"),
    "compensated": _Notable(":leftwards_arrow_with_hook:", "Compensated"),
    "checkpoint_mismatch": _Notable(":rotating_light:", "Checkpoint mismatch: the code no longer matches the record"),
}
NOTABLE_KINDS = frozenset(_NOTABLE)
# A refusal is answered privately to whoever was refused and kept in the audit log; a thread reply would name
# (and ping) them in front of the channel for a click that changed nothing.
PRIVATE_KINDS = frozenset(
    {EventKind.APPROVAL_REFUSED, EventKind.ACTION_REFUSED, EventKind.DENY_REFUSED, EventKind.REQUEST_REFUSED}
)


def _names(value: object) -> str:
    items = list(value[:MAX_ITEMS]) if isinstance(value, list | tuple) else [value]
    return truncate_mrkdwn(", ".join(code(v, 80) for v in items) or "none", 600)


def _ids_by_step(value: object) -> str:
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return bullets(list(value.items()), 1000, lambda e, room: f"{code(e[0], 80)}: {pairs(e[1], room - 84)}")
    return pairs(value, 800)


# Data keys worth showing, in display order; every other key (params, full plans) stays in the audit log.
_DETAIL_LINES: tuple[tuple[str, Callable[[Any], str]], ...] = (
    ("step", lambda v: f"Step {code(v, 80)}"),
    ("attempt", lambda v: f"Attempt {shown(v, 40)}"),
    ("lease_owner", lambda v: f"Executor {code(v, 80)} stopped renewing its lease"),
    ("unknown_steps", lambda v: f"In flight when it stopped: {_names(v)}"),
    ("reason", lambda v: shown(v, 1500)),
    ("starts", lambda v: f":calendar: *scheduled:* {shown(v, 300)}"),
    ("why", lambda v: shown(v, 1000)),
    ("how", lambda v: f"How: {shown(v, 200)}"),
    ("external_ids", _ids_by_step),
    ("replayed", lambda v: f"Replayed from checkpoints: {_names(v)}"),
    ("guidance", lambda v: f"_What to do:_ {shown(v, 800)}"),
    ("plan_hash", lambda v: f"Plan {code(str(v)[:12])}"),
    ("new_plan_hash", lambda v: f"New plan {code(str(v)[:12])}"),
)


def _details(data: dict[str, Any]) -> str:
    # Only these fixed, non-secret keys are shown, each value redacted and escaped by its line's renderer.
    lines = [render(data[key]) for key, render in _DETAIL_LINES if data.get(key) not in (None, "", [], {})]
    text = "\n".join(line for line in lines if line)
    return truncate_mrkdwn(text, _DETAIL)


def render_event(event: AuditEvent) -> tuple[str, list[dict[str, Any]]] | None:
    """A thread reply for a notable audit event; None for routine ones (requests) and for refusals (private)."""
    notable = None if event.kind in PRIVATE_KINDS else _NOTABLE.get(event.kind)
    if notable is None:
        return None
    head = f"*{notable.title}*" + (f" {notable.by} {mention(event.actor)}" if notable.by is not None else "")
    via = event.data.get("via")
    by = mention(event.actor) + (f" (via {shown(via, 120)})" if via else "")
    meta = [f"{by} · {slack_date(event.created_at)} · audit event {event.seq}"]
    reason = event.data.get("reason")
    return _reply(notable.emoji, head, _details(event.data), meta, shown(reason, 300) if reason else "")


# verdict -----------------------------------------------------------------------------------------


def _can_do(entry: tuple[Action, str], room: int) -> str:
    action, why = entry
    return f"*{ACTION_LABELS[action]}* — {clipped(why, max(room - 20, 1))}"


def render_verdict(view: IntentView) -> tuple[str, list[dict[str, Any]]]:
    """The stuck-or-final summary: the four answers and the actions available now."""
    intent, g = view.intent, view.guidance
    reason = intent.status_reason or intent.last_error
    head = status_badge(intent.status) + (f" — {clipped(reason, 1500)}" if reason else "")

    blocks: list[Block] = [
        section(head),
        section(
            "*Requested*\n"
            + clipped(g.requested, _LIST)
            + (f"\nChange ticket: {ticket}" if (ticket := ticket_text(intent.plan)) else "")
        ),
        section("*What changed*\n" + bullets(g.changed, _LIST)),
        section("*What is uncertain*\n" + bullets(g.uncertain, _LIST)),
        section("*What you can do now*\n" + bullets(g.actions, _LIST, _can_do, empty="nothing: this is final")),
    ]
    buttons = intent_buttons(intent, g.action_names, plan_risk(intent.plan), production=view.production)
    tail = [actions(buttons)] if buttons else []
    text = f"{clean(intent.workflow, 300)}: {status_label(intent.status)}"
    text += f" — {clean(reason, 2000)}" if reason else ""
    return fallback(text), fit_blocks([*blocks, *tail], MESSAGE_BLOCKS, keep_tail=len(tail))
