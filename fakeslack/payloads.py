"""Builders for the bodies Slack sends apps: slash commands, block_actions, view_submission, events."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fakeslack.models import JSON
from fakeslack.state import Workspace

_VALUE_ELEMENTS = frozenset({"plain_text_input", "email_text_input", "url_text_input", "number_input"})
_SINGLE_OPTION = frozenset({"static_select", "external_select", "radio_buttons", "overflow"})
_MULTI_OPTION = frozenset({"multi_static_select", "multi_external_select", "checkboxes"})
_SELECTED_KEY = {
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
}


@dataclass(frozen=True)
class Actor:
    """The user doing something in Slack, and where."""

    user_id: str
    user_name: str
    channel_id: str | None = None
    channel_name: str | None = None


def action_ts() -> str:
    """A Slack-style action_ts for now."""
    return f"{time.time():.6f}"


def user_block(ws: Workspace, actor: Actor) -> JSON:
    """The `user` object of an interaction payload."""
    return {"id": actor.user_id, "username": actor.user_name, "name": actor.user_name, "team_id": ws.team_id}


def slash_command_form(
    ws: Workspace, actor: Actor, command: str, text: str, *, response_url: str, trigger_id: str
) -> dict[str, str]:
    """The form fields of a slash command request, with Slack's field names."""
    return {
        "token": ws.verification_token,
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": actor.channel_id or "",
        "channel_name": actor.channel_name or "",
        "user_id": actor.user_id,
        "user_name": actor.user_name,
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def iter_elements(blocks: list[JSON]) -> Iterator[tuple[int, JSON, JSON]]:
    """Every interactive element in blocks as (block index, block, element)."""
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        candidates: list[Any] = list(block.get("elements") or []) if block.get("type") == "actions" else []
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for element in candidates:
            if isinstance(element, dict) and "action_id" in element:
                yield i, block, element


def find_element(blocks: list[JSON], action_id: str, block_id: str | None = None) -> tuple[str, JSON]:
    """The (block_id, element) with `action_id` (in `block_id` if given); LookupError when it is not there."""
    for i, block, element in iter_elements(blocks):
        bid = str(block.get("block_id") or f"b{i}")
        if element.get("action_id") == action_id and block_id in (None, bid):
            return bid, element
    raise LookupError(
        f"no element with action_id {action_id!r}"
        + (f" in block {block_id!r}" if block_id else "")
        + f"; available: {[e.get('action_id') for _, _, e in iter_elements(blocks)]}"
    )


def _option(element: JSON, value: str) -> JSON:
    """The option of a select/radio/overflow element with `value`; ValueError when absent."""
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    for option in options:
        if option.get("value") == value:
            return dict(option)
    if element.get("type") in ("external_select", "multi_external_select"):
        return {"text": {"type": "plain_text", "text": value}, "value": value}
    raise ValueError(f"element {element.get('action_id')!r} has no option with value {value!r}")


def action_entry(block_id: str, element: JSON, value: Any) -> JSON:
    """One entry of `actions` in a block_actions payload for the clicked or changed element."""
    kind = str(element.get("type"))
    entry: JSON = {
        "action_id": element["action_id"],
        "block_id": block_id,
        "type": kind,
        "action_ts": action_ts(),
    }
    if kind == "button":
        entry["text"] = element.get("text")
        if value is not None:
            entry["value"] = value
        if element.get("style"):
            entry["style"] = element["style"]
    else:
        entry.update(element_state(element, value))
    return entry


def element_state(element: JSON, value: Any) -> JSON:
    """How Slack reports an element's value in state.values (and in a block_actions entry)."""
    kind = str(element.get("type"))
    out: JSON = {"type": kind}
    if kind in _VALUE_ELEMENTS:
        out["value"] = None if value is None else str(value)
    elif kind in _SINGLE_OPTION:
        out["selected_option"] = None if value is None else _option(element, str(value))
    elif kind in _MULTI_OPTION:
        out["selected_options"] = [_option(element, str(v)) for v in (value or [])]
    elif kind in _SELECTED_KEY:
        out[_SELECTED_KEY[kind]] = value
    else:
        out["value"] = value
    return out


def state_values(blocks: list[JSON], values: Mapping[str, Mapping[str, Any]]) -> JSON:
    """view.state.values from input {block_id: {action_id: value}}; refuses unknown or missing fields."""
    out: JSON = {}
    known: set[tuple[str, str]] = set()
    for i, block, element in iter_elements(blocks):
        if block.get("type") != "input":
            continue
        bid, aid = str(block.get("block_id") or f"b{i}"), str(element["action_id"])
        known.add((bid, aid))
        value = values.get(bid, {}).get(aid)
        if value in (None, "", []) and not block.get("optional", False):
            raise ValueError(f"Slack would not submit: required input {bid}/{aid} is empty")
        out.setdefault(bid, {})[aid] = element_state(element, value)
    for bid, fields in values.items():
        for aid in fields:
            if (bid, aid) not in known:
                raise KeyError(f"the view has no input {bid}/{aid}; inputs: {sorted(known)}")
    return out


def interaction_base(ws: Workspace, kind: str, actor: Actor, trigger_id: str) -> JSON:
    """Fields every interaction payload carries."""
    return {
        "type": kind,
        "user": user_block(ws, actor),
        "api_app_id": ws.app_id,
        "token": ws.verification_token,
        "trigger_id": trigger_id,
        "team": {"id": ws.team_id, "domain": ws.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
    }


def block_actions_on_message(
    ws: Workspace,
    actor: Actor,
    *,
    trigger_id: str,
    response_url: str,
    message: JSON | None,
    message_ts: str,
    thread_ts: str | None,
    action: JSON,
) -> JSON:
    """A block_actions payload for a click on a channel message (message None: an ephemeral one)."""
    payload = interaction_base(ws, "block_actions", actor, trigger_id)
    container: JSON = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": actor.channel_id,
        "is_ephemeral": message is None,
    }
    if thread_ts:
        container["thread_ts"] = thread_ts
    payload.update(
        {
            "container": container,
            "channel": {"id": actor.channel_id, "name": actor.channel_name},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [action],
        }
    )
    if message is not None:
        payload["message"] = message
    return payload


def block_actions_on_view(ws: Workspace, actor: Actor, *, trigger_id: str, view: JSON, action: JSON) -> JSON:
    """A block_actions payload for a click in a modal or on the home tab."""
    payload = interaction_base(ws, "block_actions", actor, trigger_id)
    payload.update({"container": {"type": "view", "view_id": view["id"]}, "view": view, "actions": [action]})
    return payload


def view_submission(ws: Workspace, actor: Actor, *, trigger_id: str, view: JSON) -> JSON:
    """A view_submission payload for a modal whose view (with state.values) is given."""
    payload = interaction_base(ws, "view_submission", actor, trigger_id)
    payload.update({"view": view, "response_urls": []})
    return payload


def event_callback(ws: Workspace, event: JSON) -> JSON:
    """An Events API envelope around `event`."""
    now = int(time.time())
    return {
        "token": ws.verification_token,
        "team_id": ws.team_id,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{secrets.token_hex(5).upper()}",
        "event_time": now,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{secrets.token_urlsafe(24)}",
    }
