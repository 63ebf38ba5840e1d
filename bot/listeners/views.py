"""Modal submissions: the generated request form and the reason forms."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.errors import answering, report, tell
from bot.ids import FIELD_ACTION, REASON_ACTION, BlockId, CallbackId, ModalMeta, modal_meta
from bot.surface import Command, SlackSurface
from workflows.errors import OpsError


def _values(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = view.get("state", {}).get("values", {})
    return state


def _text(state: dict[str, dict[str, Any]], block: str, action: str) -> str:
    element = state.get(block, {}).get(action, {})
    return str(element.get("value") or (element.get("selected_option") or {}).get("value") or "")


def register(app: App, surface: SlackSurface) -> None:
    def check_request(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        """Before the ack: field errors go back onto the form, which stays open."""
        meta = _our_form(ack, body, view, client)
        if meta is None:
            return
        try:
            _command(surface, meta, view)
        except OpsError as exc:
            ack(response_action="errors", errors=_field_errors(str(exc), _values(view)))
            return
        ack()

    def plan_request(body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        """After the ack: preflight, the store, the plan message."""
        try:
            meta = modal_meta(view.get("private_metadata"))
            command = _command(surface, meta, view)
        except OpsError:
            return  # the ack put it on the form (or closed a form we did not issue); the lazy half runs all the same
        who = {"user": {"id": body["user"]["id"]}, "channel": {"id": meta.channel}}
        with answering(who, client=client):
            tell(who, surface.request_from_modal(command, meta, body["user"]["id"]).text, client=client)

    app.view(CallbackId.REQUEST_MODAL.value)(ack=check_request, lazy=[plan_request])

    def close_reason(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        """Before the ack: a blank reason goes back onto the form, which stays open."""
        meta = _our_form(ack, body, view, client)
        if meta is None:
            return
        missing = surface.missing_reason(meta, _text(_values(view), BlockId.REASON.value, REASON_ACTION))
        if missing is not None:
            ack(response_action="errors", errors={BlockId.REASON.value: missing})
            return
        ack()

    def submit_reason(body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        meta = modal_meta(view.get("private_metadata"))
        who = {"user": {"id": body["user"]["id"]}, "channel": {"id": meta.channel}}
        reason = _text(_values(view), BlockId.REASON.value, REASON_ACTION)
        if surface.missing_reason(meta, reason) is not None:
            return  # refused on the form in the ack; the lazy half runs all the same
        with answering(who, client=client):
            tell(who, surface.submit_reason(meta, reason, body["user"]["id"]).text, client=client)

    app.view(CallbackId.DENY_MODAL.value)(ack=close_reason, lazy=[submit_reason])
    app.view(CallbackId.REASON_MODAL.value)(ack=close_reason, lazy=[submit_reason])

    def close_review(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        if _our_form(ack, body, view, client) is not None:
            ack()

    def approve_reviewed(body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        """After the ack: the approval, checked against whoever submitted; the answer (or refusal) by DM from the
        Home tab, ephemerally in a channel otherwise."""
        try:
            meta = modal_meta(view.get("private_metadata"))
        except OpsError:
            return  # the ack closed the form and said why
        user = body["user"]["id"]
        who = {"user": {"id": user}, "channel": {"id": meta.channel}}
        with answering(who, client=client):
            tell(who, surface.approve_reviewed(meta, user).text, client=client)

    app.view(CallbackId.APPROVE_MODAL.value)(ack=close_review, lazy=[approve_reviewed])

    def close_plan(ack: Ack) -> None:
        """The read-only plan has no submit button: a submission can only be forged, and does nothing."""
        ack()

    app.view(CallbackId.PLAN_MODAL.value)(close_plan)


def _command(surface: SlackSurface, meta: ModalMeta, view: dict[str, Any]) -> Command:
    state = _values(view)
    fields = {b: v for b in state if b != BlockId.ENVIRONMENT.value and (v := _text(state, b, FIELD_ACTION))}
    return surface.validate(meta.workflow or "", fields, _text(state, BlockId.ENVIRONMENT.value, FIELD_ACTION))


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
