"""The posts in an intent's thread, each for a human: something needs them now (failed, unknown, blocked, a stale plan
or expired approval, waiting for a lock), or the final verdict. Progress is not posted: it is the checklist in the
plan message, edited in place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.blocks.buttons import ACTION_LABELS, intent_buttons, plan_risk, undo_label
from bot.blocks.kit import MESSAGE_BLOCKS, SECTION_TEXT, Block, actions, context, fallback, fit_blocks, section
from bot.blocks.plan import LEFT_AS_IT_IS, people
from bot.blocks.status import status_badge, status_label
from bot.blocks.text import bullets, clean, clipped, code, is_user, mention, plain, ticket_text, with_mentions
from bot.blocks.words import changes
from bot.blocks.words import summary as summary_of
from workflows.model import AuditEvent, Decision, Intent, IntentStatus, StepStatus
from workflows.service import IntentView
from workflows.states import Action

_LIST = SECTION_TEXT - 60


# events ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Notable:
    emoji: str
    title: str


_NOTABLE: dict[str, _Notable] = {
    "approved": _Notable(":white_check_mark:", "Approved"),
    "denied": _Notable(":no_entry:", "Denied"),
    "claimed": _Notable(":gear:", "Picked up"),
    "waiting_for_lock": _Notable(":lock:", "Waiting for a resource another intent holds"),
    "scheduled": _Notable(":calendar:", "Scheduled"),
    "window_opened": _Notable(":arrow_forward:", "Its start came; starting"),
    "window_closing": _Notable(":calendar:", "Stopped before a step: it would not fit in the window"),
    "run_now": _Notable(":fast_forward:", "Run now"),
    "lock_released": _Notable(":unlock:", "The resource is free; starting"),
    "definition_changed": _Notable(":rotating_light:", "The workflow changed under this intent"),
    "approver_revoked": _Notable(":no_entry:", "An approver lost the role; approve again"),
    "action_agreed": _Notable(":ballot_box_with_check:", "Agreed"),
    "step_unknown": _Notable(":grey_question:", "Step outcome unknown"),
    "step_resolved_by_observation": _Notable(":mag:", "Step resolved by observation"),
    "step_rerun": _Notable(":repeat:", "Step running again"),
    "executor_lost": _Notable(":skull:", "Executor lost; resuming from checkpoints"),
    "converging": _Notable(":hourglass_flowing_sand:", "Converging"),
    "convergence_window_exceeded": _Notable(":alarm_clock:", "Did not converge in time"),
    "stale_plan": _Notable(":warning:", "The plan is stale; approve the new plan"),
    "approval_expired": _Notable(":hourglass:", "Approval expired; approve again"),
    "retry": _Notable(":repeat:", "Retry requested"),
    "resumed": _Notable(":arrow_forward:", "Resumed"),
    "cancelled": _Notable(":heavy_multiplication_x:", "Cancelled"),
    "marked_done": _Notable(":ballot_box_with_check:", "Marked done"),
    "compensation_requested": _Notable(":rewind:", "Compensation requested"),
    "replanned": _Notable(":memo:", "Plan recomputed"),
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


# verdicts ---------------------------------------------------------------------------------------

# Ended with a decision someone took: said in one line, by whom and why.
_ONE_LINE = frozenset({IntentStatus.DENIED, IntentStatus.CANCELLED, IntentStatus.EXPIRED, IntentStatus.MARKED_DONE})


def audience(view: IntentView) -> str:
    """The requester and the approvers of the current plan, as mentions: whom a post that needs a human pings."""
    # Every approver so far, of any plan: a stale plan or an expired approval needs the same people again.
    people = [view.intent.requester, *(a.actor for a in view.approvals if a.decision is Decision.APPROVE)]
    unique = list(dict.fromkeys(p for p in people if is_user(p)))
    return " ".join(mention(p) for p in unique[:10])


def advice(view: IntentView, entry: AuditEvent | None) -> str:
    """The adapter's concrete advice for what stopped it: the entry event's, else the latest given since (advice for
    an earlier stop, already acted on, would mislead)."""
    since = entry.seq if entry is not None else 0
    given = [e for e in view.events if e.seq >= since and e.data.get("guidance")]
    return str(given[-1].data["guidance"]) if given else ""


def _can_do(intent: Intent) -> Callable[[tuple[Action, str], int], str]:
    """One offered action as a bullet, under the name its button shows."""

    def line(entry: tuple[Action, str], room: int) -> str:
        action, why = entry
        name = undo_label(intent) if action is Action.COMPENSATE else ACTION_LABELS[action]
        return f"*{clipped(name, 80)}* — {clipped(why, max(room - 100, 1))}"

    return line


def _title(view: IntentView, entry: AuditEvent | None) -> str:
    notable = _NOTABLE.get(entry.kind) if entry is not None else None
    if notable is None:
        return status_badge(view.intent.status)
    return f"{notable.emoji} *{notable.title}*"


def _by(entry: AuditEvent | None) -> str:
    return f" by {mention(entry.actor)}" if entry is not None and is_user(entry.actor) else ""


def _own_words(reason: str, entry: AuditEvent | None) -> str:
    """An operator's reason without the `cancelled by U0…: ` the service puts in front (the line names them)."""
    if entry is not None:
        return reason.removeprefix(f"{entry.kind} by {entry.actor}: ")
    return reason


def render_verdict(view: IntentView, entry: AuditEvent | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The post for a human: what you can do now (with the adapter's advice), what is uncertain, what changed (in
    resources); the final verdict of a success lists what it created, a decision (denied, cancelled) is one line.
    `entry` is the audit event that moved it into its status: it names who decided, or what went wrong."""
    intent, g = view.intent, view.guidance
    reason = intent.status_reason or intent.last_error or ""
    found = changes(intent.plan)
    where = f"{summary_of(found, intent.workflow, detail=False)} in {intent.environment}"
    who = audience(view)
    buttons = intent_buttons(intent, g.action_names, plan_risk(intent.plan), production=view.production)
    tail = [actions(buttons)] if buttons else []
    headline = f"{status_label(intent.status)}: {where}"

    footer = context([_footer(view, where)])
    if intent.status in _ONE_LINE or intent.status is IntentStatus.COMPENSATED:
        reason = _own_words(reason, entry)
        said = f" — {with_mentions(clipped(reason, 1500), people(view))}" if reason else ""
        line = f"{who} {status_badge(intent.status)}{_by(entry)}{said}"
        kept = [section(LEFT_AS_IT_IS + bullets(g.changed, _LIST))] if g.changed_any else []
        return _notification(headline, reason), [section(line.strip()), *kept, footer, *tail]

    if intent.status is IntentStatus.SUCCEEDED:
        done = [c.done() for c in found] or ["every step done"]
        head = f"{who} {status_badge(intent.status)} — {clipped('; '.join(done[:3]), 1500)}"
        ids = [i for r in view.steps if r.status is StepStatus.SUCCEEDED for i in r.external_ids.items()]
        detail = "*What changed*\n" + bullets([*done, *(f"{k}: {v}" for k, v in ids)], _LIST)
        return _notification(headline, "; ".join(done[:3])), fit_blocks(
            [section(head.strip()), section(detail), footer, *tail], MESSAGE_BLOCKS, keep_tail=len(tail)
        )

    advised = advice(view, entry)
    todo = "*What you can do now*\n"
    todo += f":bulb: {clipped(advised, 800)}\n" if advised else ""
    if intent.status is IntentStatus.WAITING:
        todo += "_Nothing, if you can wait: it starts by itself once the resource is free._\n"
    todo += bullets(g.actions, _LIST - 820, _can_do(intent), empty="nothing yet: opsbot keeps checking by itself")
    blocks: list[Block] = [
        section(f"{who} {_title(view, entry)} — {with_mentions(clipped(reason, 1500), people(view))}".strip()),
        section(todo),
        section("*What is uncertain*\n" + bullets(g.uncertain, _LIST)),
        section("*What changed*\n" + bullets(g.changed, _LIST)),
        footer,
    ]
    notification = _notification(headline, reason + (f" — what to do: {advised}" if advised else ""))
    return notification, fit_blocks([*blocks, *tail], MESSAGE_BLOCKS, keep_tail=len(tail))


def _footer(view: IntentView, where: str) -> str:
    ticket = f" · change ticket {t}" if (t := ticket_text(view.intent.plan)) else ""
    return f"{clipped(where, 600)}{ticket} · intent {code(view.intent.id)} · every step is in the plan message"


def _notification(headline: str, detail: str) -> str:
    """The text a push notification shows: plain (no mrkdwn marks), escaped once."""
    return fallback(clean(plain(headline + (f" — {detail}" if detail else "")), 2600))


def superseded(payload: dict[str, Any]) -> dict[str, Any]:
    """An earlier post for a human once the intent moved on: the same words, its buttons replaced by a note."""
    blocks = [b for b in payload.get("blocks") or [] if b.get("type") != "actions"]
    note = context([":arrow_heading_down: Superseded: the intent has moved on since; the plan message is up to date"])
    return {"text": str(payload.get("text", "")), "blocks": [*blocks[: MESSAGE_BLOCKS - 1], note]}
