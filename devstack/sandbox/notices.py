"""What Slack shows a person that the fake Slack does not keep: a slash command's ack text, and Slack's errors."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True)
class Notice:
    """One line only `user` sees, in `channel` ("" for the app's own surfaces: Home tab, modals)."""

    user: str
    channel: str
    ts: str
    text: str
    kind: str  # "ack": the bot's answer in its ack; "error": Slack's word when the bot failed to; "slackbot"
    blocks: list[JSON] = field(default_factory=list)

    def to_json(self) -> JSON:
        return {
            "channel": self.channel,
            "ts": self.ts,
            "text": self.text,
            "blocks": self.blocks,
            "thread_ts": None,
            "kind": self.kind,
        }


class Notices:
    """The sandbox's own ephemeral lines, and a version that moves whenever the page has something new to show."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notices: list[Notice] = []
        self._version = 0

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def add(self, user: str, channel: str, text: str, kind: str, blocks: list[JSON] | None = None) -> Notice:
        notice = Notice(user, channel, f"{time.time():.6f}", text, kind, blocks or [])
        with self._lock:
            self._notices.append(notice)
            self._version += 1
        return notice

    def touch(self) -> None:
        """Something the page shows changed outside the fake's Web API (a modal closed by the person)."""
        with self._lock:
            self._version += 1

    def for_user(self, user: str) -> list[Notice]:
        with self._lock:
            return [n for n in self._notices if n.user == user]
