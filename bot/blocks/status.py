"""How each intent status reads in Slack: an emoji and a short label."""

from __future__ import annotations

from types import MappingProxyType

from workflows.model import IntentStatus

S = IntentStatus
_BADGES: MappingProxyType[IntentStatus, tuple[str, str]] = MappingProxyType(
    {
        S.PENDING_APPROVAL: (":hourglass_flowing_sand:", "Pending approval"),
        S.NEEDS_REAPPROVAL: (":warning:", "Needs re-approval"),
        S.APPROVED: (":white_check_mark:", "Approved, queued to run"),
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
