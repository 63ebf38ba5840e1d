"""The /ops slash command."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.errors import answering, user_message
from bot.ids import COMMAND
from bot.surface import Command, CommandKind, SlackSurface
from workflows.errors import OpsError


def register(app: App, surface: SlackSurface) -> None:
    def ack_command(ack: Ack, command: dict[str, Any], context: dict[str, Any]) -> None:
        """Answer within Slack's 3 seconds: syntax and field errors at once, slow work after."""
        try:
            parsed = surface.parse(command.get("text", ""))
        except OpsError as exc:
            ack(response_type="ephemeral", text=user_message(exc))
            return
        if parsed.kind is CommandKind.HELP:
            ack(response_type="ephemeral", text=surface.help_text())
        elif parsed.kind is CommandKind.LIST:
            ack(response_type="ephemeral", text=surface.list_text())
        elif parsed.kind is CommandKind.REQUEST:
            ack(response_type="ephemeral", text=f":hourglass_flowing_sand: Running preflight for {parsed.workflow}…")
        else:
            ack()

    def work(command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        """The slow part (preflight, the store, views.open), after the ack; errors answer ephemerally."""
        with answering(command, respond, client):
            _run(surface.parse(command.get("text", "")), command, respond, client, surface)

    app.command(COMMAND)(ack=ack_command, lazy=[work])


def _run(parsed: Command, command: dict[str, Any], respond: Respond, client: WebClient, surface: SlackSurface) -> None:
    user, channel = command["user_id"], command["channel_id"]
    if parsed.kind is CommandKind.STATUS:
        assert parsed.intent_id
        respond(response_type="ephemeral", text=surface.status(parsed.intent_id, user).text)
    elif parsed.kind is CommandKind.MODAL:
        assert parsed.workflow
        client.views_open(trigger_id=command["trigger_id"], view=surface.request_modal(parsed.workflow, channel))
    elif parsed.kind is CommandKind.REQUEST:
        respond(response_type="ephemeral", text=surface.request(parsed, user, channel).text)
