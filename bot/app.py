"""Builds the Bolt app; nothing here runs at import time."""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from bot.errors import report
from bot.listeners import actions, commands, home, views
from bot.services import SlackServices

log = structlog.get_logger("opsbot.slack")


def _bolt_client(client: WebClient) -> WebClient:
    """The client Bolt copies for each request, without the token: Bolt then takes the token from `authorize`."""
    return WebClient(
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        headers=client.headers,
        logger=client.logger,
        retry_handlers=list(client.retry_handlers or []),
    )


def create_app(signing_secret: str, slack: SlackServices) -> App:
    """The Bolt app over the Slack services; requests are checked against `signing_secret`."""
    surface = slack.surface
    token = slack.client.token

    def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        # One workspace, one bot token: nothing to look up. Bolt would otherwise call auth.test on the first
        # request after a start, inside its ack: a Slack API blip then was an HTTP 500 or "install this app".
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token)

    app = App(
        client=_bolt_client(slack.client),
        authorize=authorize,
        signing_secret=signing_secret,
        # Listeners answer in the request thread (they only parse and touch the store); slow work is lazy.
        process_before_response=True,
        raise_error_for_unhandled_request=False,
        # Lazy listeners (preflight, store writes, views.open) run here, after the ack, never inside it.
        listener_executor=slack.lazy,
    )

    @app.middleware
    def instrumented_client(context: BoltContext, next: Any) -> BoltResponse | None:
        # Bolt hands each listener a plain copy of the client; the app's own one counts and traces every call
        # (views.open, views.publish, ephemerals) like the outbox's. Its token never changes, so sharing is safe.
        context["client"] = slack.client
        return next()  # type: ignore[no-any-return]

    @app.middleware
    def log_request(body: dict[str, Any], next: Any) -> BoltResponse | None:
        response = next()
        kind = body.get("type") or ("slash_command" if "command" in body else "unknown")
        action = (
            ((body.get("actions") or [{}])[0]).get("action_id")
            or body.get("command")
            or (body.get("view") or {}).get("callback_id")
            or (body.get("event") or {}).get("type")
        )
        user = (body.get("user") or {}).get("id") or body.get("user_id") or (body.get("event") or {}).get("user")
        log.info("slack_request", kind=kind, action=action, user=user)
        return response  # type: ignore[no-any-return]

    @app.error
    def on_error(error: Exception, body: dict[str, Any], respond: Any, client: WebClient) -> None:
        """Errors raised before an ack (and anything else Bolt catches) reach the user the same way."""
        report(error, body, respond, client)

    for module in (commands, actions, views, home):
        module.register(app, surface)
    return app
