"""How each intent status reads in Slack: an emoji and a short label."""

from __future__ import annotations

from types import MappingProxyType

from bot.blocks.text import clipped, code
from workflows.model import IntentStatus
from workflows.service import IntentView
from workflows.states import Action

S = IntentStatus
_BADGES: MappingProxyType[IntentStatus, tuple[str, str]] = MappingProxyType(
    {
        S.PENDING_APPROVAL: (":hourglass_flowing_sand:", "Pending approval"),
        S.NEEDS_REAPPROVAL: (":warning:", "Needs re-approval"),
        S.APPROVED: (":white_check_mark:", "Approved, queued to run"),
        S.SCHEDULED: (":calendar:", "Scheduled"),
        S.WAITING: (":lock:", "Waiting for a resource"),
        S.RUNNING: (":gear:", "Running"),
        S.CONVERGING: (":hourglass:", "Converging"),
        S.RETRYABLE: (":arrows_counterclockwise:", "Retrying soon"),
        S.BLOCKED: (":octagonal_sign:", "Blocked"),
        S.UNSAFE: (":rotating_light:", "Unsafe: stopped"),
        S.UNKNOWN: (":grey_question:", "Outcome unknown"),
        S.FAILED: (":x:", "Failed"),
        S.SUCCEEDED: (":large_green_circle:", "Succeeded"),
        S.DENIED: (":no_entry:", "Denied"),
        S.CANCELLED: (":heavy_multiplication_x:", "Cancelled"),
        S.EXPIRED: (":hourglass:", "Expired: nobody decided in time"),
        S.MARKED_DONE: (":ballot_box_with_check:", "Marked done"),
        S.COMPENSATED: (":leftwards_arrow_with_hook:", "Compensated"),
    }
)


def status_emoji(status: IntentStatus) -> str:
    """The emoji code for a status."""
    return _BADGES.get(status, (":grey_question:", status.value))[0]


def status_label(status: IntentStatus) -> str:
    """A short human label for a status."""
    return _BADGES.get(status, (":grey_question:", status.value))[1]


def status_badge(status: IntentStatus) -> str:
    """Emoji and bold label, as mrkdwn."""
    return f"{status_emoji(status)} *{status_label(status)}*"


def render_status(view: IntentView, yours: tuple[Action, ...]) -> str:
    """`/ops status`: the four answers as mrkdwn; everything stored is escaped (a reason's link stays text)."""
    intent, g = view.intent, view.guidance
    reason = f" — {clipped(intent.status_reason, 600)}" if intent.status_reason else ""
    holders = "".join(
        f"\n*Waiting for:* {code(h.resource, 120)}, held by intent {code(h.intent_id, 60)} "
        f"({clipped(h.workflow, 80)}, {clipped(h.status.value, 40)})"
        for h in view.holders
    )
    return "\n".join(
        [
            f"*{clipped(intent.workflow, 100)}* {code(intent.id, 60)} — {status_badge(intent.status)}{reason}{holders}",
            f"*Requested:* {clipped(g.requested, 600)}",
            "*Changed:* " + clipped("; ".join(g.changed), 800),
            "*Uncertain:* " + clipped("; ".join(g.uncertain), 800),
            "*You can now:* " + _yours(g.action_names, yours),
        ]
    )


def _yours(offered: tuple[Action, ...], yours: tuple[Action, ...]) -> str:
    if not offered:
        return "nothing: this is final"
    others = ", ".join(a.value for a in offered if a not in yours)
    mine = ", ".join(a.value for a in yours) or "nothing yourself"
    return mine + (f" (others may: {others})" if others else "")
