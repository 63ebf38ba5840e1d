"""Button clicks on plan messages, status threads and the Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.errors import answering, tell
from bot.ids import ActionId, button_value
from bot.surface import RECOVERY, SlackSurface


def _channel(body: dict[str, Any]) -> str:
    return str((body.get("channel") or {}).get("id") or "")  # no channel on the Home tab


def register(app: App, surface: SlackSurface) -> None:
    @app.action(ActionId.APPROVE.value)
    def approve(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        with answering(body, respond, client):
            reply = surface.approve(button_value(action.get("value")), body["user"]["id"])
            tell(body, reply.text, respond, client)

    def ask_reason(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        with answering(body, respond, client):
            view = surface.reason_modal(
                ActionId(action["action_id"]), button_value(action.get("value")), _channel(body), body["user"]["id"]
            )
            client.views_open(trigger_id=body["trigger_id"], view=view)

    app.action(ActionId.DENY.value)(ask_reason)
    app.action(ActionId.MARK_DONE.value)(ask_reason)

    def ack_click(ack: Ack) -> None:
        ack()

    def recover(body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient) -> None:
        """After the ack: a retry may re-plan against AWS."""
        with answering(body, respond, client):
            value, user = button_value(action.get("value")), body["user"]["id"]
            tell(body, surface.recover(ActionId(action["action_id"]), value, user).text, respond, client)

    for action_id in RECOVERY:
        if action_id is not ActionId.MARK_DONE:
            app.action(action_id.value)(ack=ack_click, lazy=[recover])
