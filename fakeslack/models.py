"""Plain records of what the fake Slack holds: messages, calls, views, triggers and response_urls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass
class Revision:
    """One earlier version of a message, kept when it is edited."""

    text: str
    blocks: list[JSON]
    at: float
    via: str


@dataclass
class Message:
    """A message as it currently stands in a channel (edits applied, history kept)."""

    channel: str
    ts: str
    text: str
    blocks: list[JSON]
    user: str
    bot_id: str | None
    team: str
    thread_ts: str | None = None
    reply_broadcast: bool = False
    attachments: list[JSON] = field(default_factory=list)
    metadata: JSON | None = None
    via: str = "chat.postMessage"
    posted_at: float = 0.0
    edits: list[Revision] = field(default_factory=list)
    deleted: bool = False

    @property
    def is_reply(self) -> bool:
        """True when the message lives in a thread under another message."""
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self) -> JSON:
        """The message as Slack's Web API and interaction payloads render it."""
        out: JSON = {
            "type": "message",
            "text": self.text,
            "user": self.user,
            "ts": self.ts,
            "team": self.team,
        }
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.blocks:
            out["blocks"] = self.blocks
        if self.attachments:
            out["attachments"] = self.attachments
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.metadata:
            out["metadata"] = self.metadata
        if self.edits:
            out["edited"] = {"user": self.user, "ts": f"{self.edits[-1].at:.6f}"}
        return out


@dataclass
class Ephemeral:
    """A message only one user could see."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[JSON]
    thread_ts: str | None
    via: str
    posted_at: float
    replaced: list[Revision] = field(default_factory=list)
    deleted: bool = False


@dataclass
class Call:
    """One HTTP request the fake answered, with what it answered."""

    method: str
    args: JSON
    at: float
    status: int
    body: JSON
    http_verb: str = "POST"
    content_type: str = ""

    @property
    def ok(self) -> bool:
        """True when Slack would have reported success."""
        return self.status == 200 and bool(self.body.get("ok"))

    @property
    def error(self) -> str | None:
        """The Slack error name of a refused call, if any."""
        err = self.body.get("error")
        return str(err) if err is not None else None


@dataclass
class View:
    """A modal opened or a home tab published, as the fake stores it."""

    id: str
    type: str
    user: str
    payload: JSON
    hash: str
    opened_at: float
    via: str
    trigger_id: str | None = None
    closed: bool = False
    revisions: list[JSON] = field(default_factory=list)

    @property
    def callback_id(self) -> str:
        """The view's callback_id, or an empty string."""
        return str(self.payload.get("callback_id") or "")

    @property
    def blocks(self) -> list[JSON]:
        """The view's blocks."""
        return list(self.payload.get("blocks") or [])

    def to_api(self, team_id: str, app_id: str, bot_id: str) -> JSON:
        """The view as Slack's views.* responses and view payloads render it."""
        out: JSON = {
            "id": self.id,
            "team_id": team_id,
            "type": self.type,
            "blocks": self.blocks,
            "private_metadata": str(self.payload.get("private_metadata") or ""),
            "callback_id": self.callback_id,
            "external_id": str(self.payload.get("external_id") or ""),
            "state": {"values": {}},
            "hash": self.hash,
            "title": self.payload.get("title"),
            "close": self.payload.get("close"),
            "submit": self.payload.get("submit"),
            "clear_on_close": bool(self.payload.get("clear_on_close", False)),
            "notify_on_close": bool(self.payload.get("notify_on_close", False)),
            "root_view_id": self.id,
            "previous_view_id": None,
            "app_id": app_id,
            "app_installed_team_id": team_id,
            "bot_id": bot_id,
        }
        return out


@dataclass
class Trigger:
    """A trigger_id the fake handed to the bot with an interaction."""

    id: str
    user: str
    issued_at: float
    used_at: float | None = None


@dataclass
class ResponsePost:
    """One POST the bot made to a response_url, and how the fake answered it."""

    url_id: str
    body: JSON
    at: float
    status: int
    error: str | None


@dataclass
class ResponseUrl:
    """A response_url issued with a slash command or interaction."""

    id: str
    url: str
    channel: str
    user: str
    issued_at: float
    message_ts: str | None = None
    ephemeral_ts: str | None = None
    uses: int = 0
    posts: list[ResponsePost] = field(default_factory=list)


@dataclass
class UserGroup:
    """A user group (a "subteam"): its handle people @-mention, and its members."""

    id: str
    handle: str
    name: str
    team_id: str
    users: list[str]
    created_at: int
    updated_at: int
    created_by: str
    description: str = ""
    disabled_at: int = 0  # Slack's date_delete: 0 while enabled

    def to_api(self, *, include_users: bool, include_count: bool) -> JSON:
        """The usergroup object as usergroups.list renders it."""
        out: JSON = {
            "id": self.id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "name": self.name,
            "description": self.description,
            "handle": self.handle,
            "is_external": False,
            "date_create": self.created_at,
            "date_update": self.updated_at,
            "date_delete": self.disabled_at,
            "auto_type": None,
            "created_by": self.created_by,
            "updated_by": self.created_by,
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
        }
        if include_users:
            out["users"] = list(self.users)
        if include_count:
            out["user_count"] = str(len(self.users))  # Slack sends the count as a string
        return out
