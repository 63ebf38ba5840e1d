"""The App Home tab: the viewer's pending approvals and recent operations."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.surface import SlackSurface


def register(app: App, surface: SlackSurface) -> None:
    def ack_event(ack: Ack) -> None:
        ack()

    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        """After the ack: read the store and publish the view."""
        if event.get("tab", "home") == "home":
            client.views_publish(user_id=event["user"], view=surface.home(event["user"]))

    app.event("app_home_opened")(ack=ack_event, lazy=[publish_home])
