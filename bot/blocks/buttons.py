"""The buttons an intent offers: Approve/Deny while it awaits approval, otherwise what its guidance allows."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from bot.blocks.kit import Block, Style, button, confirm_dialog, overflow
from bot.blocks.words import changes, sentence, summary, undoing
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


def _where(intent: Intent) -> str:
    """`the change to RDS instance billing-db-r1 in prod`: what a button acts on, by its target."""
    found = changes(intent.plan)
    return f"the change to {found[0].resource if found else intent.workflow} in {intent.environment}"


# What a screen reader says for each button (Slack's accessibility_label, at most 75 characters): the button's
# text first, then which change it acts on.
_LABELS: MappingProxyType[Action, str] = MappingProxyType(
    {
        Action.APPROVE: "Approve {where} (plan {plan})",
        Action.DENY: "Deny {where} (plan {plan})",
        Action.RETRY: "Retry {where}",
        Action.RESUME: "Resume {where}",
        Action.CANCEL: "Cancel {where}",
        Action.MARK_DONE: "Mark done {where}",
        Action.COMPENSATE: "{undo} in {env}",
        Action.RUN_NOW: "Run now {where}",
        Action.REQUEST: "Request again {where}",
    }
)


def accessibility_label(intent: Intent, action: Action) -> str:
    """The screen-reader label of `action`'s button on `intent`."""
    return _LABELS[action].format(
        plan=intent.plan_hash[:12], where=_where(intent), undo=undo_label(intent), env=intent.environment
    )


def _button(intent: Intent, action: Action, *, style: Style | None = None, confirm: Block | None = None) -> Block:
    label = accessibility_label(intent, action)
    text = undo_label(intent) if action is Action.COMPENSATE else ACTION_LABELS[action]  # named by its effect
    return button(text, ACTION_IDS[action], value_for(intent), label=label, style=style, confirm=confirm)


def approval_buttons(intent: Intent, risk: Risk) -> list[Block]:
    """Approve (primary; behind a confirmation when the risk is high) and Deny (danger)."""
    confirm = None
    if risk is Risk.HIGH:
        confirm = confirm_dialog(
            "Approve a high-risk change?",
            f"{summary(changes(intent.plan), intent.workflow, 3, detail=False)} in {intent.environment}: it runs as "
            "soon as enough approvals are in.",
            "Approve",
        )
    return [
        _button(intent, Action.APPROVE, style="primary", confirm=confirm),
        _button(intent, Action.DENY, style="danger"),
    ]


def view_plan_button(intent: Intent) -> Block:
    """View full plan: opens the whole plan in a modal, for anyone who may see the intent."""
    label = f"View full plan of {_where(intent)}"
    return button("View full plan", ActionId.VIEW_PLAN, value_for(intent), label=label)


def review_buttons(intent: Intent) -> list[Block]:
    """Review and approve (primary: the plan modal, whose submit approves) and Deny (danger), for the App Home."""
    label = f"Review and approve plan {intent.plan_hash[:12]} of {_where(intent)}"
    return [
        button("Review and approve", ActionId.REVIEW, value_for(intent), label=label, style="primary"),
        _button(intent, Action.DENY, style="danger"),
    ]


def _undo_text(intent: Intent) -> str:
    return (
        f"Proposes a plan to {undoing(changes(intent.plan))} in {intent.environment}, undoing the steps that "
        "completed. It runs only once approved, like any plan; steps without an undo stay as they are."
    )


def undo_label(intent: Intent) -> str:
    """Compensate named by its effect, as short as a button: `Undo: delete RDS instance billing-db-r1`."""
    return f"Undo: {undoing(changes(intent.plan), limit=1)}"


def _confirm(intent: Intent, action: Action, production: bool) -> Block | None:
    """The dialog in front of `action`, saying in plain words what happens; None when a click is enough."""
    where = _where(intent)
    if action is Action.CANCEL:
        return confirm_dialog(
            "Cancel this change?",
            f"Cancel {where}? It stops here and runs no further step. Nothing already changed is undone, and "
            "an outcome still unknown stays unknown.",
            "Cancel the change",
            "Keep it",
            style="danger",
        )
    if action is Action.RETRY and production:
        change = summary(changes(intent.plan), intent.workflow, 1, detail=False)
        return confirm_dialog(
            "Retry in production?",
            f"The failed step runs again now, in {intent.environment}: {change}. The steps already done are not "
            "repeated.",
            "Retry",
        )
    if action is Action.COMPENSATE:
        return confirm_dialog(
            "Undo the completed steps?",
            _undo_text(intent),
            "Propose undoing",
            style="danger",
        )
    if action is Action.RUN_NOW:
        return confirm_dialog(
            "Run it now?",
            f"{sentence(where)} starts now, without waiting for its maintenance window "
            "or start time. Your choice is recorded in the audit log.",
            "Run now",
        )
    return None


def undo_menu(intent: Intent) -> Block:
    """Compensation of a change that succeeded: a rare, destructive choice, so a menu item rather than a button."""
    return overflow(
        ACTION_IDS[Action.COMPENSATE],
        [(undo_label(intent), value_for(intent))],
        confirm=confirm_dialog(
            "Propose undoing this change?",
            _undo_text(intent),
            "Propose undoing",
            style="danger",
        ),
    )


def recovery_buttons(intent: Intent, offered: Sequence[Action], *, production: bool = True) -> list[Block]:
    """One button per recovery action the guidance offers (approval actions excluded), in its order.

    `production`: the intent's environment is a production one, so a Retry asks to confirm too.
    """
    primary = next((a for a in offered if a in _FORWARD), None)
    out: list[Block] = []
    for action in offered:
        if action in (Action.APPROVE, Action.DENY):
            continue
        if action is Action.COMPENSATE and intent.status is IntentStatus.SUCCEEDED:
            out.append(undo_menu(intent))
            continue
        style: Style | None = "danger" if action is Action.COMPENSATE else "primary" if action is primary else None
        out.append(_button(intent, action, style=style, confirm=_confirm(intent, action, production)))
    return out


def intent_buttons(intent: Intent, offered: Sequence[Action], risk: Risk, *, production: bool = True) -> list[Block]:
    """Approve/Deny first while the intent awaits approval, then every other action its status offers."""
    first = approval_buttons(intent, risk) if intent.status in AWAITING_APPROVAL else []
    return [*first, *recovery_buttons(intent, offered, production=production)]
