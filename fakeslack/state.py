"""The fake workspace: channels, users, user groups, messages, views, triggers and response_urls, under one lock."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fakeslack.limits import DEFAULT_LIMITS, Limits
from fakeslack.models import (
    JSON,
    Call,
    Ephemeral,
    Message,
    ResponseUrl,
    Revision,
    Trigger,
    UserGroup,
    View,
)
from fakeslack.traffic import ChannelLimiter, FaultPlan

DEFAULT_CHANNELS: Mapping[str, str] = {"C0OPS0001": "ops"}
# What installing opsbot from its manifest.yml grants the bot token.
DEFAULT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "channels:history",
    "groups:history",
    "usergroups:read",
)


@dataclass(frozen=True)
class Workspace:
    """Identity of the fake workspace and of the bot installed in it."""

    team_id: str = "T0FAKE001"
    team_domain: str = "fake-workspace"
    team_name: str = "Fake Workspace"
    bot_user_id: str = "U0BOT0001"
    bot_user_name: str = "opsbot"
    bot_id: str = "B0BOT0001"
    app_id: str = "A0APP0001"
    verification_token: str = "fake-verification-token"
    scopes: tuple[str, ...] = DEFAULT_SCOPES  # granted to the bot token; sent as `x-oauth-scopes`, like Slack


@dataclass(frozen=True)
class Policy:
    """Time and use limits Slack puts on triggers and response_urls."""

    trigger_ttl: float = 3.0
    response_url_ttl: float = 1800.0
    response_url_uses: int = 5


class SlackState:
    """Everything the fake knows; every method expects `lock` to be held by the caller."""

    def __init__(
        self,
        token: str,
        workspace: Workspace,
        *,
        channels: Mapping[str, str],
        users: Mapping[str, str],
        limits: Limits = DEFAULT_LIMITS,
        policy: Policy | None = None,
        rate_burst: float = 3,
        rate_per_second: float | None = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.workspace = workspace
        self.limits = limits
        self.policy = policy or Policy()
        self.clock = clock
        self.wall = wall
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.base_url = ""
        self.channels: dict[str, str] = dict(channels)
        self.users: dict[str, str] = dict(users)
        self.usergroups: dict[str, UserGroup] = {}
        self.dms: dict[str, str] = {}
        self.messages: dict[str, dict[str, Message]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.calls: list[Call] = []
        self.views: dict[str, View] = {}
        self.home_views: dict[str, str] = {}
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.limiter = ChannelLimiter(rate_burst, rate_per_second, clock)
        self.faults = FaultPlan()
        self._last_us = 0
        self._serial = 0

    # --- identities -------------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        """A fresh Slack-looking id such as V00000001A."""
        self._serial += 1
        return f"{prefix}{self._serial:08d}{secrets.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}"

    def next_ts(self) -> str:
        """A message ts unique and increasing across the workspace, e.g. 1700000000.000100."""
        now_us = int(self.wall() * 1_000_000)
        self._last_us = max(self._last_us + 1, now_us)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def resolve_channel(self, value: object) -> str | None:
        """Map a channel id, a name (with or without '#'), a DM id or a user id (opens a DM) to an id."""
        if not isinstance(value, str) or not value:
            return None
        if value in self.channels or value in self.dms:
            return value
        name = value.removeprefix("#")
        for cid, cname in self.channels.items():
            if cname == name:
                return cid
        if value in self.users:
            return self.open_dm(value)
        return None

    def open_dm(self, user: str) -> str:
        """The DM channel between the bot and `user`, created on first use."""
        for dm, who in self.dms.items():
            if who == user:
                return dm
        dm = "D" + user[1:]
        self.dms[dm] = user
        return dm

    def channel_name(self, channel: str) -> str:
        """The channel's name ('directmessage' for DMs)."""
        return self.channels.get(channel, "directmessage" if channel in self.dms else channel)

    def resolve_user(self, value: str) -> str | None:
        """Map a user id or a user name to the user id."""
        if value in self.users:
            return value
        for uid, name in self.users.items():
            if name == value.removeprefix("@"):
                return uid
        return None

    # --- user groups ------------------------------------------------------------------------------

    def add_usergroup(self, handle: str, users: list[str], name: str, group_id: str | None = None) -> UserGroup:
        """Create an enabled user group; its handle must be free among enabled groups, as in Slack."""
        if any(g.handle == handle and not g.disabled_at for g in self.usergroups.values()):
            raise ValueError(f"fake Slack already has a user group @{handle}")
        now = int(self.wall())
        group = UserGroup(
            id=group_id or self.new_id("S"),
            handle=handle,
            name=name,
            team_id=self.workspace.team_id,
            users=list(dict.fromkeys(users)),
            created_at=now,
            updated_at=now,
            created_by=next(iter(self.users), self.workspace.bot_user_id),
        )
        self.usergroups[group.id] = group
        return group

    def resolve_usergroup(self, value: str) -> UserGroup | None:
        """A user group by id or by handle (with or without '@'; enabled groups only for handles)."""
        if value in self.usergroups:
            return self.usergroups[value]
        handle = value.removeprefix("@")
        return next((g for g in self.usergroups.values() if g.handle == handle and not g.disabled_at), None)

    # --- messages ---------------------------------------------------------------------------------

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[JSON],
        *,
        via: str,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        attachments: list[JSON] | None = None,
        metadata: JSON | None = None,
    ) -> Message:
        """Store a new bot message in `channel` and return it."""
        ws = self.workspace
        msg = Message(
            channel=channel,
            ts=self.next_ts(),
            text=text,
            blocks=blocks,
            user=ws.bot_user_id,
            bot_id=ws.bot_id,
            team=ws.team_id,
            thread_ts=thread_ts,
            reply_broadcast=reply_broadcast,
            attachments=attachments or [],
            metadata=metadata,
            via=via,
            posted_at=self.wall(),
        )
        self.messages.setdefault(channel, {})[msg.ts] = msg
        return msg

    def find_message(self, channel: str, ts: object) -> Message | None:
        """The live (not deleted) message `ts` in `channel`, if any."""
        if not isinstance(ts, str):
            return None
        msg = self.messages.get(channel, {}).get(ts)
        return None if msg is None or msg.deleted else msg

    def thread_parent(self, channel: str, thread_ts: str) -> Message | None:
        """The top-level message a reply with `thread_ts` would hang under, if it exists."""
        parent = self.find_message(channel, thread_ts)
        return None if parent is None or parent.is_reply else parent

    def edit(self, msg: Message, *, text: str | None, blocks: list[JSON] | None, via: str) -> None:
        """Apply an edit to a message, keeping the previous version."""
        msg.edits.append(Revision(text=msg.text, blocks=msg.blocks, at=self.wall(), via=via))
        if text is not None:
            msg.text = text
        if blocks is not None:
            msg.blocks = blocks

    def post_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        blocks: list[JSON],
        *,
        via: str,
        thread_ts: str | None = None,
    ) -> Ephemeral:
        """Store a message only `user` sees and return it."""
        eph = Ephemeral(
            channel=channel,
            user=user,
            ts=self.next_ts(),
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            via=via,
            posted_at=self.wall(),
        )
        self.ephemerals.append(eph)
        return eph

    def find_ephemeral(self, ts: str | None) -> Ephemeral | None:
        """The live ephemeral message with `ts`, if any."""
        for eph in self.ephemerals:
            if eph.ts == ts and not eph.deleted:
                return eph
        return None

    # --- triggers and response_urls ---------------------------------------------------------------

    def issue_trigger(self, user: str) -> str:
        """Hand out a new trigger_id for `user` (single use, short-lived)."""
        self._serial += 1
        trigger_id = f"{int(self.wall())}.{self._serial:010d}.{secrets.token_hex(16)}"
        self.triggers[trigger_id] = Trigger(id=trigger_id, user=user, issued_at=self.clock())
        return trigger_id

    def check_trigger(self, trigger_id: str) -> str | None:
        """Why `trigger_id` cannot be exchanged now (a Slack error name), or None if it can."""
        trigger = self.triggers.get(trigger_id)
        if trigger is None:
            return "invalid_trigger_id"
        if trigger.used_at is not None:
            return "exchanged_trigger_id"
        if self.clock() - trigger.issued_at > self.policy.trigger_ttl:
            return "expired_trigger_id"
        return None

    def issue_response_url(
        self, channel: str, user: str, *, message_ts: str | None = None, ephemeral_ts: str | None = None
    ) -> str:
        """Hand out a new response_url tied to `channel`, `user` and optionally the message acted on."""
        url_id = f"{self.workspace.team_id}/{self.new_id('B')}/{secrets.token_urlsafe(18)}"
        url = f"{self.base_url}/response/{url_id}"
        self.response_urls[url_id] = ResponseUrl(
            id=url_id,
            url=url,
            channel=channel,
            user=user,
            issued_at=self.clock(),
            message_ts=message_ts,
            ephemeral_ts=ephemeral_ts,
        )
        return url

    # --- views ------------------------------------------------------------------------------------

    def store_view(self, payload: JSON, *, user: str, via: str, trigger_id: str | None = None) -> View:
        """Store a newly opened modal or a home tab (reusing the user's home view id) and return it."""
        kind = str(payload.get("type"))
        existing = self.views.get(self.home_views.get(user, "")) if kind == "home" else None
        view_hash = f"{int(self.wall())}.{secrets.token_hex(4)}"
        if existing is not None:
            existing.revisions.append(existing.payload)
            existing.payload, existing.hash, existing.via = payload, view_hash, via
            return existing
        view = View(
            id=self.new_id("V"),
            type=kind,
            user=user,
            payload=payload,
            hash=view_hash,
            opened_at=self.clock(),
            via=via,
            trigger_id=trigger_id,
        )
        self.views[view.id] = view
        if kind == "home":
            self.home_views[user] = view.id
        return view

    def record(self, call: Call) -> None:
        """Remember a call and wake anyone waiting for the state to change."""
        self.calls.append(call)
        self.changed.notify_all()
