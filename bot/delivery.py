"""The outbox drain: delivers queued Slack posts and updates, paced per channel, honouring Retry-After."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from store.slack import (
    EDIT_OF,
    LINK_PARENT,
    PLAN_URL,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    SlackStore,
    parent_key,
)
from workflows.ports import Clock

log = structlog.get_logger("opsbot.delivery")

# Errors that retrying cannot fix: the payload or the target is wrong. Everything else is retried.
_PERMANENT = {
    "invalid_blocks",
    "invalid_arguments",
    "channel_not_found",
    "not_in_channel",
    "msg_too_long",
    "no_text",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "missing_scope",
    "cant_update_message",
    "message_not_found",
    "edit_window_closed",
}
MAX_BACKOFF = 300.0
_AFTER_PARENT = frozenset({OutboxKind.UPDATE_PARENT, OutboxKind.THREAD_REPLY, OutboxKind.EDIT})
CLAIM_SECONDS = 60.0
NOT_YET_SECONDS = 1.0  # a message waiting for the one it hangs under or edits looks again this soon
PLAN_EVENT = "opsbot_plan"  # message metadata that marks an intent's plan message
# After the burst, refill a little slower than Slack does: our clock starts when we send, Slack's when the request
# lands, and a request that lands early would otherwise meet a bucket a few milliseconds short and draw a 429.
PACING_MARGIN = 0.9


@dataclass
class _Bucket:
    """Token bucket per channel: `burst` messages at once, then `rate` per second."""

    tokens: float
    stamp: float
    blocked_until: float = 0.0


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    coalesced: int = 0
    errors: list[str] = field(default_factory=list)


class OutboxWorker:
    """Drains the outbox; safe to call from a scheduler tick and from listeners that want a prompt send."""

    def __init__(
        self,
        store: SlackStore,
        client: WebClient,
        clock: Clock,
        burst: int = 3,
        rate: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.client, self.clock = store, client, clock
        self.burst, self.rate, self.monotonic = burst, rate, monotonic
        self._buckets: dict[str, _Bucket] = {}
        self._permalinks: dict[str, str] = {}  # intent id → its plan message's permalink
        self._lock = threading.Lock()
        self.stats = DeliveryStats()

    def drain_once(self) -> int:
        """One pass over what is due; returns how many messages were delivered."""
        if not self._lock.acquire(blocking=False):
            return 0  # another thread is draining; one drain at a time keeps the order per channel
        try:
            return self._drain()
        finally:
            self._lock.release()

    def drain_until_idle(self, timeout: float = 30.0) -> None:
        """Deliver everything pending (tests and the demo); gives up after `timeout` seconds."""
        deadline = self.monotonic() + timeout
        while self.store.pending_count() and self.monotonic() < deadline:
            if not self.drain_once():
                time.sleep(0.05)

    def _drain(self) -> int:
        now = self.clock.now()
        # Claimed for a minute: another process's drain skips them; a crash hands them back when it lapses.
        items = self.store.claim(self.store.due(now), now, now + timedelta(seconds=CLAIM_SECONDS))
        latest_update: dict[str, int] = {}  # per edited message, the newest edit due: the others are pointless
        for item in items:
            if target := edited(item):
                latest_update[target] = item.id
        stale = [i.id for i in items if (target := edited(i)) and latest_update[target] != i.id]
        self.store.supersede(stale)
        self.stats.coalesced += len(stale)
        unposted_parents = {i.intent_id for i in items if i.kind == OutboxKind.POST_PARENT}
        delivered = 0
        held: set[str] = set()  # channels we must not send to again in this pass (paced or rate limited)
        handled: set[int] = set(stale)  # sent, deferred with their own retry time, or dead
        for item in items:
            if item.id in handled or item.channel in held:
                continue
            if item.kind in _AFTER_PARENT and item.intent_id in unposted_parents:
                continue  # the parent is queued in this pass and not posted yet
            if not self._take_token(item.channel):
                held.add(item.channel)
                continue
            handled.add(item.id)
            if self._send(item):
                delivered += 1
            else:
                held.add(item.channel)
        self.store.release([i for i in items if i.id not in handled], now)
        return delivered

    def _take_token(self, channel: str) -> bool:
        now = self.monotonic()
        bucket = self._buckets.setdefault(channel, _Bucket(float(self.burst), now))
        if now < bucket.blocked_until:
            return False
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate * PACING_MARGIN)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _refund(self, channel: str) -> None:
        bucket = self._buckets[channel]
        bucket.tokens = min(float(self.burst), bucket.tokens + 1.0)

    def _send(self, item: OutboxItem) -> bool:
        try:
            ts = self._call(item, dict(item.payload))
        except _NotYet as exc:  # nothing was sent: the token goes back, and it is not a failed attempt
            self._refund(item.channel)
            self.store.defer(item, self.clock.now() + timedelta(seconds=NOT_YET_SECONDS), str(exc))
            return True
        except _Gone as exc:  # what it hangs under or edits was never posted (Slack refused it for good)
            self._refund(item.channel)
            self.store.mark_dead(item, str(exc))
            self.stats.dead += 1
            return True
        except SlackApiError as exc:
            return self._failed(item, exc)
        except Exception as exc:  # timeouts, connection resets: Slack may be down; keep the message and retry
            self._retry(item, self._backoff(item), f"{type(exc).__name__}: {exc}")
            return False
        self.store.mark_sent([item], ts, self.clock.now())
        self.stats.sent += 1
        return True

    def _call(self, item: OutboxItem, payload: dict[str, Any]) -> str | None:
        if linked := payload.pop(LINK_PARENT, None):
            payload = self._linked(str(linked), payload)
        if item.kind == OutboxKind.UPDATE_PARENT:
            _, parent = self._parent(item.intent_id or "")
            response = self.client.chat_update(channel=item.channel, ts=parent, **payload)
            return str(response.get("ts") or parent)
        if item.kind == OutboxKind.EDIT:
            target = str(payload.pop(EDIT_OF, ""))
            posted = self.store.posted(target)
            if posted is None or posted.status == OutboxStatus.PENDING:
                raise _NotYet(f"{target} not posted yet")
            if posted.ts is None:
                raise _Gone(f"{target} was never posted ({posted.status})")
            response = self.client.chat_update(channel=posted.channel, ts=posted.ts, **payload)
            return str(response.get("ts") or posted.ts)
        if item.kind == OutboxKind.POST_PARENT:
            if item.attempts and (ts := self._find_parent(item)):
                return ts  # an earlier attempt reached Slack and only its answer was lost
            payload["metadata"] = {"event_type": PLAN_EVENT, "event_payload": {"intent_id": item.intent_id}}
        if item.kind == OutboxKind.THREAD_REPLY:
            payload["thread_ts"] = self._parent(item.intent_id or "")[1]
        response = self.client.chat_postMessage(channel=item.channel, **payload)
        return str(response.get("ts"))

    def _parent(self, intent_id: str) -> tuple[str, str]:
        """(channel, ts) of `intent_id`'s plan message; _NotYet until it is posted, _Gone if Slack refused it for good
        (what hangs under it or edits it would otherwise wait for ever)."""
        thread = self.store.thread(intent_id)
        if thread is not None and thread.parent_ts is not None:
            return thread.channel, thread.parent_ts
        parent = self.store.posted(parent_key(intent_id))
        if parent is not None and parent.status == OutboxStatus.DEAD:
            raise _Gone(f"the plan message of {intent_id} was refused by Slack for good")
        raise _NotYet("parent message not posted yet")

    def _linked(self, intent_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """`payload` with PLAN_URL replaced by the permalink of `intent_id`'s plan message (asked once, then kept)."""
        url = self._permalinks.get(intent_id)
        if url is None:
            channel, parent = self._parent(intent_id)
            url = str(self.client.chat_getPermalink(channel=channel, message_ts=parent)["permalink"])
            if len(self._permalinks) > 10_000:
                self._permalinks.clear()
            self._permalinks[intent_id] = url
        safe = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")  # it goes inside a mrkdwn <url|label>
        return dict(json.loads(json.dumps(payload).replace(PLAN_URL, json.dumps(safe)[1:-1])))

    def _find_parent(self, item: OutboxItem) -> str | None:
        """Look for a plan message this intent already has (by its metadata) before posting it again."""
        since = item.created_at.timestamp() - 300
        history = self.client.conversations_history(
            channel=item.channel, oldest=f"{since:.6f}", limit=200, include_all_metadata=True
        )
        for message in history.get("messages") or []:
            meta = message.get("metadata") or {}
            if (
                meta.get("event_type") == PLAN_EVENT
                and (meta.get("event_payload") or {}).get("intent_id") == item.intent_id
            ):
                return str(message["ts"])
        return None

    def _failed(self, item: OutboxItem, exc: SlackApiError) -> bool:
        response = exc.response
        error = str(response.get("error", "")) if response is not None else ""
        status = getattr(response, "status_code", 0)
        if status == 429 or error == "ratelimited":
            retry_after = float(response.headers.get("Retry-After", "1") if response is not None else 1)
            self._buckets[item.channel].blocked_until = self.monotonic() + retry_after
            self._retry(item, retry_after, f"rate limited for {retry_after:g}s")
            return False
        if error in _PERMANENT:
            self.store.mark_dead(item, error)
            self.stats.dead += 1
            self.stats.errors.append(error)
            log.error("slack_delivery_failed", key=item.dedupe_key, error=error)
            return True  # not a reason to hold the channel
        self._retry(item, self._backoff(item), f"{status} {error}")
        return False

    def _retry(self, item: OutboxItem, delay: float, why: str) -> None:
        self.store.mark_retry(item, self.clock.now() + timedelta(seconds=delay), why)
        self.stats.retried += 1
        log.warning("slack_delivery_deferred", key=item.dedupe_key, delay=delay, why=why)

    @staticmethod
    def _backoff(item: OutboxItem) -> float:
        return float(min(0.5 * 2.0 ** min(item.attempts, 10), MAX_BACKOFF))


def edited(item: OutboxItem) -> str | None:
    """Which message `item` edits (an intent's plan message, or an earlier post by its key); None for a post."""
    if item.kind == OutboxKind.UPDATE_PARENT and item.intent_id:
        return parent_key(item.intent_id)
    if item.kind == OutboxKind.EDIT:
        return str(item.payload.get(EDIT_OF, "")) or None
    return None


class _NotYet(Exception):
    """The message depends on another that has not been delivered yet."""


class _Gone(Exception):
    """The message to edit will never exist."""
