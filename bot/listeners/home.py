"""The App Home tab: the viewer's pending approvals and recent operations."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.surface import SlackSurface


def register(app: App, surface: SlackSurface) -> None:
    @app.event("app_home_opened")
    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        client.views_publish(user_id=event["user"], view=surface.home(event["user"]))
