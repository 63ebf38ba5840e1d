"""One mapping from errors to what the operator sees: typed errors speak for themselves, others get an id."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from workflows.errors import InvalidInput, InvalidTransition, NotFound, OpsError, PermissionDenied, StalePlan
from workflows.redaction import redact_text

log = structlog.get_logger("opsbot.errors")

_PREFIX: dict[type[OpsError], str] = {
    InvalidInput: ":warning: ",
    PermissionDenied: ":no_entry: ",
    StalePlan: ":hourglass: ",
    InvalidTransition: ":information_source: ",
    NotFound: ":mag: ",
}


def user_message(error: BaseException) -> str:
    """The ephemeral text for `error`; unexpected errors are logged with a correlation id that is shown too."""
    if isinstance(error, OpsError):
        prefix = next((p for cls, p in _PREFIX.items() if isinstance(error, cls)), ":warning: ")
        return prefix + redact_text(str(error))
    correlation = uuid.uuid4().hex[:12]
    log.error("unexpected_error", correlation_id=correlation, error=f"{type(error).__name__}: {error}", exc_info=error)
    return (
        f":boom: Something went wrong on our side (correlation id `{correlation}`). "
        "Check `/ops status <id>` for what the intent store recorded before trying again."
    )


def tell(body: dict[str, Any], text: str, respond: Any = None, client: Any = None) -> None:
    """Answer the user who acted: through the response_url, as an ephemeral in the channel, or by DM (Home tab)."""
    if respond is not None and body.get("response_url"):
        respond(response_type="ephemeral", replace_original=False, text=text)
        return
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    if client is not None and user and channel:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    elif client is not None and user:
        client.chat_postMessage(channel=user, text=text)
    else:
        log.warning("answer_not_shown", text=text)


def report(error: BaseException, body: dict[str, Any], respond: Any = None, client: Any = None) -> None:
    """Show `error` to the user who caused it."""
    tell(body, user_message(error), respond, client)


@contextmanager
def answering(body: dict[str, Any], respond: Any = None, client: Any = None) -> Iterator[None]:
    """Work done after the ack reports its own errors: Bolt cannot answer once ack() was called."""
    try:
        yield
    except Exception as exc:
        report(exc, body, respond, client)
