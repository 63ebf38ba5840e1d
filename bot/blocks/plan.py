"""The parent message of an intent: its plan, approvals and status, updated in place as the intent moves."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.blocks.buttons import intent_buttons
from bot.blocks.kit import (
    FIELD_TEXT,
    MESSAGE_BLOCKS,
    SECTION_TEXT,
    Block,
    actions,
    context,
    fallback,
    fields,
    fit_blocks,
    header,
    section,
)
from bot.blocks.status import status_badge, status_label
from bot.blocks.text import MAX_ITEMS, bullets, clean, clipped, code, mention, slack_date, ticket_text
from workflows.authoring import Risk
from workflows.model import JSON, Approval, Decision, IntentStatus
from workflows.service import IntentView

_LIST = SECTION_TEXT - 40  # a titled bullet list section
_REASON = 1500
_ROLLBACK = {
    "compensate": ":leftwards_arrow_with_hook: undone by compensation",
    "none": "nothing to undo",
    "irreversible": ":warning: *irreversible*",
}


@dataclass(frozen=True, slots=True)
class PlanFacts:
    """The reviewable parts of a stored plan, read tolerantly (raw: the renderer cleans what it shows)."""

    targets: tuple[str, ...]
    mutations: tuple[tuple[str, str, str], ...]
    locks: tuple[str, ...]
    conflicts: tuple[str, ...]
    blast_radius: str
    rollback: tuple[tuple[str, str], ...]
    rollback_limits: str
    verification: tuple[str, ...]

    @classmethod
    def read(cls, plan: JSON) -> PlanFacts:
        """Facts from a plan dict shaped like `Plan.model_dump(mode="json")`; missing keys read as empty."""
        mutations = tuple(
            (str(m.get("action", "")), str(m.get("target") or m.get("resource") or ""), str(m.get("detail", "")))
            for m in _seq(plan.get("mutations"))
            if isinstance(m, dict)
        )
        rollback = plan.get("rollback")
        return cls(
            targets=tuple(str(t) for t in _seq(plan.get("targets"))),
            mutations=mutations,
            locks=tuple(str(t) for t in _seq(plan.get("locks"))),
            conflicts=tuple(str(t) for t in _seq(plan.get("conflicts"))),
            blast_radius=str(plan.get("blast_radius") or ""),
            rollback=tuple((str(k), str(v)) for k, v in list(rollback.items())[:MAX_ITEMS])
            if isinstance(rollback, dict)
            else (),
            rollback_limits=str(plan.get("rollback_limits") or ""),
            verification=tuple(str(v) for v in _seq(plan.get("verification"))),
        )


_PLAIN_ONLY = re.compile(r"[*`~]")  # mrkdwn marks a notification would show as they are (ids keep their _)


def _seq(value: object) -> Sequence[Any]:
    """A list's first items (more could never be shown); anything else reads as empty."""
    return value[:MAX_ITEMS] if isinstance(value, list | tuple) else ()


def current_approvals(view: IntentView) -> list[Approval]:
    """Each approver's latest approval of the current plan, in the order they came in."""
    latest: dict[str, Approval] = {}
    for a in view.approvals:
        if a.decision is not Decision.APPROVE or a.plan_hash != view.intent.plan_hash:
            continue
        if a.actor not in latest or a.created_at >= latest[a.actor].created_at:
            latest[a.actor] = a
    return sorted(latest.values(), key=lambda a: (a.created_at, a.actor))


def _expiry(approvals: Sequence[Approval]) -> str:
    # The run needs all n approvals valid at once, so the earliest expiry is the one that binds.
    if not approvals:
        return "starts when approved"
    return slack_date(min(a.expires_at for a in approvals))


def _decision(a: Approval, room: int) -> str:
    if a.decision is Decision.APPROVE:
        return f":white_check_mark: {mention(a.actor)} approved {slack_date(a.created_at)}"
    why = f": {clipped(a.reason, max(room - 60, 1))}" if a.reason else " without a reason"
    return f":no_entry: {mention(a.actor)} denied{why}"


def _change(mutation: tuple[str, str, str], room: int) -> str:
    action, resource, detail = mutation
    head = f"{clipped(action, 40)} {code(resource, min(room // 2, 300))}"
    return head + (f" — {clipped(detail, max(room - len(head) - 3, 1))}" if detail else "")


def _rollback(entry: tuple[str, str], room: int) -> str:
    step, how = entry
    return f"{code(step, min(room // 2, 120))}: {_ROLLBACK.get(how) or clipped(how, 100)}"


def _status_line(view: IntentView) -> str:
    intent = view.intent
    reason = intent.status_reason or (intent.last_error if intent.status.terminal else None)
    return status_badge(intent.status) + (f" — {clipped(reason, _REASON)}" if reason else "")


def _schedule_line(view: IntentView) -> str:
    """When it starts, counted from when the view was read: `Scheduled: runs in the window …, in 5 h 12 min`."""
    schedule, now = view.schedule, view.as_of
    if schedule is None or now is None:
        return ""
    head = "Scheduled" if view.intent.status is IntentStatus.SCHEDULED else "Once approved"
    return f"\n:calendar: *{head}:* {clipped(schedule.describe(now), 300)} ({slack_date(schedule.starts_at)})"


def _plan_sections(facts: PlanFacts) -> list[Block]:
    limits = f"\n_Limits:_ {clipped(facts.rollback_limits, 800)}" if facts.rollback_limits else ""
    return [
        section("*Targets*\n" + bullets(facts.targets, _LIST, code, item_limit=300)),
        section("*Expected changes*\n" + bullets(facts.mutations, _LIST, _change, empty="no changes")),
        *fields(
            [
                ("Locks", bullets(facts.locks, FIELD_TEXT - 20, code, item_limit=300)),
                ("Blast radius", clipped(facts.blast_radius, FIELD_TEXT - 20) or "_not stated_"),
            ]
        ),
        *([section("*Conflicts*\n" + bullets(facts.conflicts, _LIST))] if facts.conflicts else []),
        section("*Rollback*\n" + bullets(facts.rollback, _LIST - 820, _rollback, empty="no steps") + limits),
        section("*Verification*\n" + bullets(facts.verification, _LIST, empty="no checks")),
    ]


def render_plan_message(view: IntentView, summary: str, risk: Risk) -> list[dict[str, Any]]:
    """The intent's parent message: plan, approvals so far, status, and the buttons it allows now."""
    intent = view.intent
    approvals = current_approvals(view)
    blocks: list[Block] = [
        header(intent.workflow),
        section(f"{clipped(summary, 1000)}\n{_status_line(view)}{_schedule_line(view)}"),
        *fields(
            [
                ("Requested by", mention(intent.requester)),
                ("Environment", code(intent.environment)),
                ("Risk", f"*{risk.value}*" if risk is Risk.HIGH else risk.value),
                ("Approvals", f"{len(approvals)}/{view.approvals_needed}"),
                ("Plan", code(intent.plan_hash[:12])),
                ("Approval valid until", _expiry(approvals)),
                *([("Change ticket", ticket)] if (ticket := ticket_text(intent.plan)) else []),
            ]
        ),
        *_plan_sections(PlanFacts.read(intent.plan)),
    ]
    decisions = [*approvals, *(a for a in view.approvals if a.decision is Decision.DENY)]
    if decisions:
        blocks.append(section("*Decisions*\n" + bullets(decisions, _LIST, _decision)))
    footer = context(
        [f"Intent {code(intent.id)} · version {intent.version} · requested {slack_date(intent.created_at)}"]
    )
    buttons = intent_buttons(intent, view.guidance.action_names, risk, production=view.production)
    tail = [actions(buttons), footer] if buttons else [footer]
    return fit_blocks([*blocks, *tail], MESSAGE_BLOCKS, keep_tail=len(tail))


def plan_fallback_text(view: IntentView) -> str:
    """The notification text of the parent message, all a push notification shows: the status and what changes (the
    action and its target) where, in plain words (no mrkdwn: a phone shows it raw)."""
    intent = view.intent
    facts = PlanFacts.read(intent.plan)
    change = "; ".join(f"{a} {t}" + (f" ({d})" if d else "") for a, t, d in facts.mutations[:2]) or intent.workflow
    approvals = len(current_approvals(view))
    text = (
        f"{status_label(intent.status)}: {change} in {intent.environment} ({intent.workflow})"
        f" · approvals {approvals}/{view.approvals_needed}"
    )
    text += f" — {intent.status_reason}" if intent.status_reason else ""
    return fallback(clean(_PLAIN_ONLY.sub("", text), 2600))
