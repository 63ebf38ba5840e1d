"""Button clicks on plan messages, status threads and the Home tab: the ack only acks; the work runs after it."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.errors import answering, tell
from bot.ids import ActionId, ButtonValue, button_value
from bot.surface import RECOVERY, SlackSurface


def _channel(body: dict[str, Any]) -> str:
    return str((body.get("channel") or {}).get("id") or "")  # no channel on the Home tab


def _value(action: dict[str, Any]) -> ButtonValue:
    """A button's value, or that of the option picked in an overflow menu (Undo after a success)."""
    raw = action.get("value") or (action.get("selected_option") or {}).get("value")
    return button_value(raw)


def register(app: App, surface: SlackSurface) -> None:
    def ack_click(ack: Ack) -> None:
        ack()

    def approve(body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient) -> None:
        """After the ack: the approval (store writes) and the answer."""
        with answering(body, respond, client):
            reply = surface.approve(button_value(action.get("value")), body["user"]["id"])
            tell(body, reply.text, respond, client)

    def ask_reason(body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond) -> None:
        """After the ack (well inside the trigger's three seconds): who may, then the reason form."""
        with answering(body, respond, client):
            value = button_value(action.get("value"))
            view = surface.reason_modal(ActionId(action["action_id"]), value, _channel(body), body["user"]["id"])
            client.views_open(trigger_id=body["trigger_id"], view=view)

    def open_plan(body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond) -> None:
        """After the ack: who may see it, then the whole plan (Review: a modal whose submit approves it)."""
        with answering(body, respond, client):
            value, approve = button_value(action.get("value")), action["action_id"] == ActionId.REVIEW.value
            view = surface.plan_modal(value, _channel(body), body["user"]["id"], approve=approve)
            client.views_open(trigger_id=body["trigger_id"], view=view)

    def recover(body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient) -> None:
        """After the ack: a retry may re-plan against AWS."""
        with answering(body, respond, client):
            value, user = _value(action), body["user"]["id"]
            tell(body, surface.recover(ActionId(action["action_id"]), value, user).text, respond, client)

    app.action(ActionId.APPROVE.value)(ack=ack_click, lazy=[approve])
    for reasoned in (ActionId.DENY, ActionId.MARK_DONE):
        app.action(reasoned.value)(ack=ack_click, lazy=[ask_reason])
    for planned in (ActionId.VIEW_PLAN, ActionId.REVIEW):
        app.action(planned.value)(ack=ack_click, lazy=[open_plan])
    for action_id in RECOVERY:
        if action_id is not ActionId.MARK_DONE:
            app.action(action_id.value)(ack=ack_click, lazy=[recover])

    def unknown(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        """Anything else (a forged or outdated action id): a 200 and a clear note, never a 404."""
        ack()
        tell(body, ":warning: this button is not one opsbot recognises (was it edited?)", respond, client)

    app.action(re.compile(".*"))(unknown)  # registered last: only what nothing above claimed
