"""The parent message of an intent: its plan, approvals and status, updated in place as the intent moves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.blocks.buttons import intent_buttons, view_plan_button
from bot.blocks.kit import (
    MESSAGE_BLOCKS,
    SECTION_TEXT,
    Block,
    actions,
    context,
    fallback,
    fit_blocks,
    section,
)
from bot.blocks.progress import checklist
from bot.blocks.status import status_badge, status_label
from bot.blocks.text import (
    MAX_ITEMS,
    bullets,
    clean,
    clipped,
    code,
    duration,
    elapsed,
    mention,
    plain,
    slack_date,
    ticket_text,
    with_mentions,
)
from bot.blocks.words import KINDS, Change, changes, sentence
from bot.blocks.words import summary as summary_of
from workflows.authoring import Risk
from workflows.model import JSON, Approval, Decision, IntentStatus
from workflows.service import IntentView

_LIST = SECTION_TEXT - 40  # a titled bullet list section
_REASON = 1500


@dataclass(frozen=True, slots=True)
class PlanFacts:
    """The reviewable parts of a stored plan, read tolerantly (raw: the renderer cleans what it shows)."""

    targets: tuple[str, ...]
    locks: tuple[str, ...]
    conflicts: tuple[str, ...]
    blast_radius: str
    rollback: tuple[tuple[str, str], ...]
    rollback_limits: str
    verification: tuple[str, ...]

    @classmethod
    def read(cls, plan: JSON) -> PlanFacts:
        """Facts from a plan dict shaped like `Plan.model_dump(mode="json")`; missing keys read as empty."""
        rollback = plan.get("rollback")
        return cls(
            targets=tuple(str(t) for t in _seq(plan.get("targets"))),
            locks=tuple(str(t) for t in _seq(plan.get("locks"))),
            conflicts=tuple(str(t) for t in _seq(plan.get("conflicts"))),
            blast_radius=str(plan.get("blast_radius") or ""),
            rollback=tuple((str(k), str(v)) for k, v in list(rollback.items())[:MAX_ITEMS])
            if isinstance(rollback, dict)
            else (),
            rollback_limits=str(plan.get("rollback_limits") or ""),
            verification=tuple(str(v) for v in _seq(plan.get("verification"))),
        )


# Before its first step: what the message shows is the decision, not a checklist.
_BEFORE_RUNNING = frozenset(
    {
        IntentStatus.PENDING_APPROVAL,
        IntentStatus.NEEDS_REAPPROVAL,
        IntentStatus.SCHEDULED,
        IntentStatus.WAITING,
        IntentStatus.DENIED,
        IntentStatus.EXPIRED,
        IntentStatus.CANCELLED,
    }
)


def _seq(value: object) -> Sequence[Any]:
    """A list's first items (more could never be shown); anything else reads as empty."""
    return value[:MAX_ITEMS] if isinstance(value, list | tuple) else ()


LEFT_AS_IT_IS = "*Done before it stopped, and left as it is*\n"


def people(view: IntentView) -> set[str]:
    """Whom an intent's stored texts may name: its requester, whoever acted on it, whoever holds what it waits for."""
    return {
        view.intent.requester,
        *(a.actor for a in view.approvals),
        *(e.actor for e in view.events),
        *(h.requester for h in view.holders),
    }


def current_approvals(view: IntentView) -> list[Approval]:
    """Each approver's latest approval of the current plan, in the order they came in."""
    latest: dict[str, Approval] = {}
    for a in view.approvals:
        if a.decision is not Decision.APPROVE or a.plan_hash != view.intent.plan_hash:
            continue
        if a.actor not in latest or a.created_at >= latest[a.actor].created_at:
            latest[a.actor] = a
    return sorted(latest.values(), key=lambda a: (a.created_at, a.actor))


def _decision(a: Approval, room: int) -> str:
    if a.decision is Decision.APPROVE:
        return f":white_check_mark: {mention(a.actor)} approved {slack_date(a.created_at)}"
    why = f": {clipped(a.reason, max(room - 60, 1))}" if a.reason else " without a reason"
    return f":no_entry: {mention(a.actor)} denied{why}"


def _status_line(view: IntentView, risk: Risk) -> str:
    """`:hourglass: *Pending approval* · `prod` · *high risk*`, then the reason on its own line."""
    intent = view.intent
    reason = intent.status_reason or (intent.last_error if intent.status.terminal else None)
    if intent.status in (IntentStatus.SUCCEEDED, IntentStatus.DENIED):
        reason = None  # the outcome below says what it did, or who denied it and why
    risk_words = f"*{risk.value} risk*" if risk is Risk.HIGH else f"{risk.value} risk"
    line = f"{status_badge(intent.status)} · {code(intent.environment, 60)} · {risk_words}"
    return line + (f"\n{with_mentions(clipped(reason, _REASON), people(view))}" if reason else "")


def _schedule_line(view: IntentView) -> str:
    """When it starts, counted from when the view was read: `Scheduled: runs in the window …, in 5 h 12 min`."""
    schedule, now = view.schedule, view.as_of
    if schedule is None or now is None:
        return ""
    head = "Scheduled" if view.intent.status is IntentStatus.SCHEDULED else "Once approved"
    return f"\n:calendar: *{head}:* {clipped(schedule.describe(now), 300)} ({slack_date(schedule.starts_at)})"


def change_line(change: Change, room: int, *, bold: bool = True, detail: bool = True) -> str:
    """`*Create RDS instance* `billing-db-r1`: read replica of …`: the change in words, its resource's name as code
    (the whole target when its kind has no name), then its detail in what `room` leaves."""
    noun = KINDS.get(change.kind)
    words = clipped(sentence(change.action), 40) + (f" {noun}" if noun else "")
    what = (f"*{words}*" if bold else words) + " " + code(change.name if noun else change.target, 200)
    if not detail or not change.detail:
        return what
    return what + f": {clipped(change.detail, max(room - len(what) - 2, 1))}"


def headline(view: IntentView, summary: str) -> str:
    """The action and its target in plain words, then who asked: what an approver decides on."""
    intent = view.intent
    found = changes(intent.plan)
    said = "\n".join(change_line(c, 600) for c in found[:3]) or f"*{clipped(summary, 600)}*"
    more = f"\n_…and {len(found) - 3} more changes: View full plan_" if len(found) > 3 else ""
    ticket = f" · change ticket {t}" if (t := ticket_text(intent.plan)) else ""
    return (
        f"{said}{more}\n"
        f"Requested by {mention(intent.requester)} {slack_date(intent.created_at)}{ticket} · "
        f"{clipped(intent.workflow, 100)}"
    )


def _who_approves(view: IntentView, room: int) -> str:
    """`*Needs 1 approval* from a member of `dba-lead` (not the requester) · decide by <date>`, then who did."""
    approvals = current_approvals(view)
    needed = view.approvals_needed - len(approvals)
    roles = ", ".join(code(r, 60) for r in view.approver_roles) or "_no role: check the policy_"
    others = "different people" if needed > 1 else "someone"
    head = (
        f":raising_hand: *Needs {needed} more approval{'s' if needed != 1 else ''}* from {others} in {roles}, "
        "not the requester"
    )
    if view.decide_by is not None:
        head += f" · decide by {slack_date(view.decide_by)}"
    said = [_decision(a, room) for a in approvals]
    return "\n".join([head, *said])


def _approved_by(view: IntentView) -> str:
    approvals = current_approvals(view)
    if not approvals:
        return ""
    return "Approved by " + ", ".join(mention(a.actor) for a in approvals[:10])


def _outcome(view: IntentView) -> list[Block]:
    """The one section a finished operation keeps: what it did (or why it stopped) and who decided."""
    intent = view.intent
    if intent.status is IntentStatus.SUCCEEDED:
        found = changes(intent.plan)
        done = "; ".join(clipped(c.done(), 300) for c in found[:5]) or "every step done"
        took = _took(view)
        return [section(f"{sentence(done)}{took}")]
    denials = [a for a in view.approvals if a.decision is Decision.DENY and a.plan_hash == intent.plan_hash]
    if intent.status is IntentStatus.DENIED and denials:
        return [section(_decision(denials[-1], 1500))]
    if view.guidance.changed_any:  # stopped after some steps: what they left behind
        return [section(LEFT_AS_IT_IS + bullets(view.guidance.changed, _LIST))]
    return []


def _took(view: IntentView) -> str:
    started = [s.started_at for s in view.steps]
    finished = [s.finished_at for s in view.steps if s.finished_at is not None]
    if not started or not finished:
        return ""
    return f" in {duration(elapsed(min(started), max(finished)))}"


def render_plan_message(view: IntentView, summary: str, risk: Risk) -> list[dict[str, Any]]:
    """The intent's one living message: the decision first (status, the change in plain words, who must approve by
    when, the buttons), then a checklist of its steps edited in place; once finished, just the outcome. Locks,
    rollback and verification are one click away, behind View full plan."""
    intent = view.intent
    status = intent.status
    blocks: list[Block] = [
        section(f"{_status_line(view, risk)}{_schedule_line(view)}"),
        section(headline(view, summary)),
    ]
    if status.awaiting_approval:
        blocks.append(section(_who_approves(view, _LIST)))
        if PlanFacts.read(intent.plan).conflicts:
            blocks.append(section(":warning: *Conflicts:* see View full plan"))
    elif status.terminal:
        blocks.extend(_outcome(view))
    if not status.terminal and (view.steps or status not in _BEFORE_RUNNING):
        blocks.append(section(checklist(view)))
    notes = [n for n in (_approved_by(view) if not status.awaiting_approval else "",) if n]
    footer = context(
        [
            *notes,
            f"Intent {code(intent.id)} · plan {code(intent.plan_hash[:12])} · version {intent.version}",
        ]
    )
    buttons = [
        *intent_buttons(intent, view.guidance.action_names, risk, production=view.production),
        view_plan_button(intent),
    ]
    tail = [actions(buttons), footer]
    return fit_blocks([*blocks, *tail], MESSAGE_BLOCKS, keep_tail=len(tail))


def plan_fallback_text(view: IntentView) -> str:
    """The notification text of the plan message, all a push notification shows: the status, the change and its
    target in plain words, where, and what it waits for (no mrkdwn: a phone shows it raw)."""
    intent = view.intent
    change = summary_of(changes(intent.plan), intent.workflow, detail=False)
    text = f"{status_label(intent.status)}: {change} in {intent.environment}"
    if intent.status.awaiting_approval:
        needed = view.approvals_needed - len(current_approvals(view))
        text += f" — needs {needed} approval{'s' if needed != 1 else ''}"
        text += f" from {', '.join(view.approver_roles)}" if view.approver_roles else ""
    elif intent.status_reason:
        text += f" — {intent.status_reason}"
    return fallback(clean(plain(text), 2600))
