"""What the page shows one person: the workspace as the fake Slack holds it, read into plain JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devstack.sandbox.notices import Notices
from devstack.sandbox.world import Person
from fakeslack import Call, FakeSlack, Message, View

JSON = dict[str, Any]


@dataclass(frozen=True)
class Query:
    """Whose page, which channel, and which thread (if one is open)."""

    user: str
    channel: str
    thread_ts: str | None = None


def version(fake: FakeSlack, notices: Notices) -> str:
    """Moves whenever anything the page shows may have changed."""
    return f"{fake.call_count}.{notices.version}"


def snapshot(fake: FakeSlack, notices: Notices, people: list[Person], channels: dict[str, str], q: Query) -> JSON:
    """Everything the page renders for `q`, with the version it was read at."""
    seen = version(fake, notices)  # read first: a change during the read shows on the next poll
    ws = fake.workspace
    names = {p.id: p.name for p in people} | {ws.bot_user_id: ws.bot_user_name}
    in_channel = fake.messages(q.channel) if q.channel in channels else []
    thread = None
    if q.thread_ts:
        parent = next((m for m in in_channel if m.ts == q.thread_ts), None)
        if parent is not None:
            thread = {
                "channel": q.channel,
                "parent": _message(parent, in_channel),
                "replies": [_message(m, []) for m in in_channel if m.is_reply and m.thread_ts == parent.ts],
            }
    dm = fake.messages(q.user)  # the person's DM with the bot: the app's Messages tab
    ephemerals = [
        {
            "channel": e.channel,
            "ts": e.ts,
            "text": e.text,
            "blocks": e.blocks,
            "thread_ts": e.thread_ts,
            "kind": "ephemeral",
        }
        for e in fake.ephemerals(user=q.user)
        if not e.deleted
    ]
    ephemerals += [n.to_json() for n in notices.for_user(q.user)]
    home = fake.home_view(q.user)
    return {
        "version": seen,
        "workspace": {"name": ws.team_name, "bot": {"id": ws.bot_user_id, "name": ws.bot_user_name}},
        "user": q.user,
        "people": [{"id": p.id, "name": p.name, "roles": list(p.roles)} for p in people],
        "names": names,
        "channels": [
            {"id": cid, "name": name, "count": len(_top_level(fake.messages(cid)))} for cid, name in channels.items()
        ],
        "channel": {"id": q.channel, "messages": [_message(m, in_channel) for m in _top_level(in_channel)]},
        "thread": thread,
        "dm": {"id": fake.channel_id(q.user), "messages": [_message(m, dm) for m in _top_level(dm)]},
        "ephemerals": sorted(ephemerals, key=lambda e: float(e["ts"])),
        "home": _view(home) if home is not None else None,
        "modal": _open_modal(fake, q.user),
        "errors": [_refusal(fake, call) for call in fake.refusals()],
    }


def _top_level(messages: list[Message]) -> list[Message]:
    return [m for m in messages if not m.is_reply or m.reply_broadcast]


def _message(m: Message, siblings: list[Message]) -> JSON:
    replies = [r for r in siblings if r.is_reply and r.thread_ts == m.ts]
    return {
        "ts": m.ts,
        "user": m.user,
        "bot": m.bot_id is not None,
        "text": m.text,
        "blocks": m.blocks,
        "attachments": m.attachments,
        "edited": bool(m.edits),
        "thread_ts": m.thread_ts,
        "reply_count": len(replies),
        "latest_reply": replies[-1].ts if replies else None,
    }


def _view(view: View) -> JSON:
    return {
        "id": view.id,
        "hash": view.hash,
        "type": view.type,
        "callback_id": view.callback_id,
        "title": view.payload.get("title"),
        "submit": view.payload.get("submit"),
        "close": view.payload.get("close"),
        "blocks": view.blocks,
    }


def _open_modal(fake: FakeSlack, user: str) -> JSON | None:
    """The person's newest modal still open (Slack shows one stack of modals at a time)."""
    open_modals = [v for v in fake.views(kind="modal", user=user) if not v.closed]
    return _view(max(open_modals, key=lambda v: v.opened_at)) if open_modals else None


def _refusal(fake: FakeSlack, call: Call) -> JSON:
    """A call Slack refused, with the channel it was meant for when it names one."""
    channel = ""
    target = call.args.get("channel")
    if isinstance(target, str) and target:
        try:
            channel = fake.channel_id(target)
        except KeyError:
            channel = ""
    meta = call.body.get("response_metadata")
    detail = meta.get("messages") if isinstance(meta, dict) else None
    return {
        "ts": f"{call.at:.6f}",
        "method": call.method,
        "status": call.status,
        "error": call.error or f"HTTP {call.status}",
        "detail": [str(d) for d in detail] if isinstance(detail, list) else [],
        "channel": channel,
    }
