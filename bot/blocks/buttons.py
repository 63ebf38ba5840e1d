"""The buttons an intent offers: Approve/Deny while it awaits approval, otherwise what its guidance allows."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from bot.blocks.kit import Block, Style, button, confirm_dialog
from bot.ids import ActionId, ButtonValue
from workflows.authoring import Risk
from workflows.model import JSON, Intent, IntentStatus
from workflows.states import Action

AWAITING_APPROVAL = frozenset({IntentStatus.PENDING_APPROVAL, IntentStatus.NEEDS_REAPPROVAL})

ACTION_IDS: MappingProxyType[Action, ActionId] = MappingProxyType(
    {
        Action.APPROVE: ActionId.APPROVE,
        Action.DENY: ActionId.DENY,
        Action.RETRY: ActionId.RETRY,
        Action.RESUME: ActionId.RESUME,
        Action.CANCEL: ActionId.CANCEL,
        Action.MARK_DONE: ActionId.MARK_DONE,
        Action.COMPENSATE: ActionId.COMPENSATE,
        Action.RUN_NOW: ActionId.RUN_NOW,
        Action.REQUEST: ActionId.REQUEST_AGAIN,  # offered by an expired request, to its requester
    }
)
ACTION_LABELS: MappingProxyType[Action, str] = MappingProxyType(
    {
        Action.APPROVE: "Approve",
        Action.DENY: "Deny",
        Action.RETRY: "Retry",
        Action.RESUME: "Resume",
        Action.CANCEL: "Cancel",
        Action.MARK_DONE: "Mark done",
        Action.COMPENSATE: "Compensate",
        Action.RUN_NOW: "Run now",
        Action.REQUEST: "Request again",
    }
)
_FORWARD = (Action.RESUME, Action.RETRY)  # the first of these offered is the primary button


def value_for(intent: Intent) -> ButtonValue:
    """What every button of `intent` carries: id, the plan hash shown, and the version shown."""
    return ButtonValue(intent_id=intent.id, plan_hash=intent.plan_hash, version=intent.version)


def plan_risk(plan: JSON) -> Risk:
    """The risk a stored plan declares; an unreadable one counts as high, so approval still asks to confirm."""
    try:
        return Risk(str(plan.get("risk")))
    except ValueError:
        return Risk.HIGH


def approval_buttons(intent: Intent, risk: Risk) -> list[Block]:
    """Approve (primary; behind a confirmation when the risk is high) and Deny (danger)."""
    confirm = None
    if risk is Risk.HIGH:
        confirm = confirm_dialog(
            "Approve a high-risk change?",
            f"You are approving plan {intent.plan_hash[:12]} of {intent.workflow} in {intent.environment}. "
            "It runs as soon as enough approvals are in.",
            "Approve",
        )
    value = value_for(intent)
    return [
        button(ACTION_LABELS[Action.APPROVE], ActionId.APPROVE, value, style="primary", confirm=confirm),
        button(ACTION_LABELS[Action.DENY], ActionId.DENY, value, style="danger"),
    ]


def recovery_buttons(intent: Intent, offered: Sequence[Action]) -> list[Block]:
    """One button per recovery action the guidance offers (approval actions excluded), in its order."""
    value = value_for(intent)
    primary = next((a for a in offered if a in _FORWARD), None)
    out: list[Block] = []
    for action in offered:
        if action in (Action.APPROVE, Action.DENY):
            continue
        style: Style | None = "primary" if action is primary else None
        confirm = None
        if action is Action.COMPENSATE:
            style = "danger"
            confirm = confirm_dialog(
                "Undo the completed steps?",
                f"Compensation runs the undo of every completed step of {intent.workflow} that declares one.",
                "Compensate",
                style="danger",
            )
        if action is Action.RUN_NOW:
            confirm = confirm_dialog(
                "Run it now?",
                f"{intent.workflow} in {intent.environment} starts now, without waiting for its maintenance window "
                "or start time. Your choice is recorded in the audit log.",
                "Run now",
            )
        out.append(button(ACTION_LABELS[action], ACTION_IDS[action], value, style=style, confirm=confirm))
    return out


def intent_buttons(intent: Intent, offered: Sequence[Action], risk: Risk) -> list[Block]:
    """Approve/Deny while the intent awaits approval; otherwise the offered recovery actions."""
    if intent.status in AWAITING_APPROVAL:
        return approval_buttons(intent, risk)
    return recovery_buttons(intent, offered)
