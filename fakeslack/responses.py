"""response_urls: limited uses within a time window; ephemeral or in_channel; replace or delete original."""

from __future__ import annotations

import json

from fakeslack.api import ApiResult, Refusal, bool_arg, ok, read_content, refused, thread_arg
from fakeslack.models import JSON, ResponsePost, ResponseUrl, Revision
from fakeslack.state import SlackState


def handle_response_url(state: SlackState, url_id: str, raw: bytes) -> ApiResult:
    """Answer a POST to a response_url (the caller holds the state lock) and record it."""
    ru = state.response_urls.get(url_id)
    if ru is None:
        return refused("no_service", status=404)
    payload: JSON = {}
    if state.clock() - ru.issued_at > state.policy.response_url_ttl:
        result = refused("expired_url", status=404)
    elif ru.uses >= state.policy.response_url_uses:
        result = refused("used_url", f"[ERROR] this response_url was already used {ru.uses} times", status=404)
    else:
        try:
            parsed = json.loads(raw.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            parsed = None
        if not isinstance(parsed, dict):
            result = refused("invalid_payload", "[ERROR] the body must be a JSON object", status=400)
        else:
            payload = parsed
            try:
                result = _apply(state, ru, payload)
                ru.uses += 1
            except Refusal as refusal:
                result = refusal.result
                if result.status == 200:
                    result.status = 400
    ru.posts.append(
        ResponsePost(url_id=ru.id, body=payload, at=state.wall(), status=result.status, error=result.body.get("error"))
    )
    return result


def _apply(state: SlackState, ru: ResponseUrl, payload: JSON) -> ApiResult:
    """Carry out one response: delete or replace the original, or post ephemeral / in_channel."""
    if bool_arg(payload, "delete_original"):
        _delete_original(state, ru)
        return ok()
    content = read_content(state, payload)
    if bool_arg(payload, "replace_original"):
        _replace_original(state, ru, content.text, content.blocks)
        return ok()
    response_type = payload.get("response_type") or "ephemeral"
    if response_type == "in_channel":
        thread_ts = thread_arg(state, ru.channel, payload)
        state.post(
            ru.channel,
            content.text or "",
            content.blocks or [],
            via="response_url",
            thread_ts=thread_ts,
            attachments=content.attachments,
        )
    elif response_type == "ephemeral":
        eph = state.post_ephemeral(
            ru.channel,
            ru.user,
            content.text or "",
            content.blocks or [],
            via="response_url",
            thread_ts=payload.get("thread_ts"),
        )
        if ru.message_ts is None and ru.ephemeral_ts is None:
            ru.ephemeral_ts = eph.ts
    else:
        raise Refusal("invalid_response_type", f"[ERROR] unknown response_type {response_type!r}")
    return ok()


def _delete_original(state: SlackState, ru: ResponseUrl) -> None:
    """Delete the message the interaction came from, refusing when there is none."""
    msg = state.find_message(ru.channel, ru.message_ts) if ru.message_ts else None
    eph = state.find_ephemeral(ru.ephemeral_ts)
    if msg is not None:
        msg.deleted = True
    elif eph is not None:
        eph.deleted = True
    else:
        raise Refusal("message_not_found", "[ERROR] no original message to delete", status=404)


def _replace_original(state: SlackState, ru: ResponseUrl, text: str | None, blocks: list[JSON] | None) -> None:
    """Replace the message the interaction came from (or this URL's earlier ephemeral response)."""
    msg = state.find_message(ru.channel, ru.message_ts) if ru.message_ts else None
    if msg is not None:
        state.edit(msg, text=text, blocks=blocks if blocks is not None else [], via="response_url")
        return
    eph = state.find_ephemeral(ru.ephemeral_ts)
    if eph is None:
        raise Refusal("message_not_found", "[ERROR] no original message to replace", status=404)
    eph.replaced.append(Revision(text=eph.text, blocks=eph.blocks, at=state.wall(), via="response_url"))
    eph.text = text or ""
    eph.blocks = blocks or []
