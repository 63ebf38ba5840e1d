"""Modal submissions: the generated request form and the reason forms."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.errors import answering, report
from bot.ids import FIELD_ACTION, REASON_ACTION, BlockId, CallbackId, ModalMeta, modal_meta
from bot.surface import SlackSurface
from workflows.errors import OpsError


def _values(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = view.get("state", {}).get("values", {})
    return state


def _text(state: dict[str, dict[str, Any]], block: str, action: str) -> str:
    element = state.get(block, {}).get(action, {})
    return str(element.get("value") or (element.get("selected_option") or {}).get("value") or "")


def register(app: App, surface: SlackSurface) -> None:
    @app.view(CallbackId.REQUEST_MODAL.value)
    def submit_request(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        meta = _our_form(ack, body, view, client)
        if meta is None:
            return
        state = _values(view)
        fields = {b: v for b in state if b != BlockId.ENVIRONMENT.value and (v := _text(state, b, FIELD_ACTION))}
        try:
            command = surface.validate(
                meta.workflow or "", fields, _text(state, BlockId.ENVIRONMENT.value, FIELD_ACTION)
            )
        except OpsError as exc:  # shown on the form's fields; the modal stays open
            ack(response_action="errors", errors=_field_errors(str(exc), state))
            return
        ack()
        user = body["user"]["id"]
        with answering({"user": {"id": user}, "channel": {"id": meta.channel}}, client=client):
            text = surface.request_from_modal(command, meta, user).text
            client.chat_postEphemeral(channel=meta.channel, user=user, text=text)

    def submit_reason(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        meta = _our_form(ack, body, view, client)
        if meta is None:
            return
        reason = _text(_values(view), BlockId.REASON.value, REASON_ACTION)
        ack()
        user = body["user"]["id"]
        with answering({"user": {"id": user}, "channel": {"id": meta.channel}}, client=client):
            text = surface.submit_reason(meta, reason, user).text
            client.chat_postEphemeral(channel=meta.channel, user=user, text=text)

    app.view(CallbackId.DENY_MODAL.value)(submit_reason)
    app.view(CallbackId.REASON_MODAL.value)(submit_reason)


def _our_form(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> ModalMeta | None:
    """The form's metadata; a form we did not issue is closed with an explanation instead."""
    try:
        return modal_meta(view.get("private_metadata"))
    except OpsError as exc:
        ack()
        report(exc, body, client=client)
        return None


def _field_errors(message: str, state: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Put each `field: problem` line of a validation error on its input; the rest on the first input."""
    errors: dict[str, str] = {}
    for line in message.splitlines():
        name, sep, problem = line.strip().partition(":")
        if sep and name in state:
            errors[name] = problem.strip()[:150]
    if not errors and state:
        errors[next(iter(state))] = message.splitlines()[0][:150]
    return errors
