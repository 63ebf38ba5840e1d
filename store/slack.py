"""Durable Slack delivery state: the outbox, each intent's thread, and once-per-period digests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from hashlib import sha256
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from store import tables as t
from store.signals import Signals
from store.sql import as_utc
from workflows.redaction import redact

OUTBOX = "opsbot_outbox"  # a message was queued: the delivery loop drains now


class OutboxKind(StrEnum):
    POST = "post"  # a plain message (incident announcement, digest)
    POST_PARENT = "post_parent"  # an intent's plan message, the parent of its thread
    UPDATE_PARENT = "update_parent"  # the plan message edited in place
    THREAD_REPLY = "thread_reply"
    EDIT = "edit"  # an earlier post edited in place, named by its key in the payload's EDIT_OF


EDIT_OF = "edit_of"  # the key of the message an EDIT changes; taken out of the payload before it is sent
# A payload carrying LINK_PARENT (an intent id) links that intent's plan message: PLAN_URL in its text is replaced
# by the message's permalink when it is sent (it is known only once the plan message is posted).
LINK_PARENT = "link_parent"
PLAN_URL = "https://opsbot.invalid/plan-message"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # Slack refused it for good (invalid_blocks, channel_not_found, ...)
    SUPERSEDED = "superseded"  # a newer update of the same message made it pointless


def parent_key(intent_id: str) -> str:
    """The key of an intent's plan message (its POST_PARENT; its UPDATE_PARENTs edit the message it names)."""
    return f"{intent_id}:parent"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    dedupe_key: str
    intent_id: str | None
    channel: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Posted:
    """Where an earlier message went, for editing it: its status, and its channel and ts once sent."""

    status: str
    channel: str
    ts: str | None


@dataclass(frozen=True, slots=True)
class SlackThread:
    intent_id: str
    channel: str
    parent_ts: str | None
    projected_version: int
    projected_steps: str
    settled: bool


def _item(m: Any) -> OutboxItem:
    return OutboxItem(
        m["id"],
        m["dedupe_key"],
        m["intent_id"],
        m["channel"],
        m["kind"],
        m["payload"],
        m["attempts"],
        as_utc(m["next_attempt_at"]),
        as_utc(m["created_at"]),
    )


def _thread(m: Any) -> SlackThread:
    return SlackThread(
        m["intent_id"], m["channel"], m["parent_ts"], m["projected_version"], m["projected_steps"], bool(m["settled"])
    )


Message = tuple[str, str | None, str, str, dict[str, Any]]  # key, intent id, channel, kind, payload


def _insert_message(conn: sa.Connection, message: Message, now: datetime) -> None:
    """Queue one message; its key is unique, so queueing it again is an IntegrityError the caller expects."""
    key, intent_id, channel, kind, payload = message
    conn.execute(
        sa.insert(t.outbox).values(
            dedupe_key=key[:200],
            intent_id=intent_id,
            channel=channel,
            kind=str(kind),
            payload=redact(payload),
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


class SlackStore:
    """SQL for the Slack surface; every method is its own short transaction."""

    def __init__(self, engine: sa.Engine, signals: Signals | None = None) -> None:
        self.engine = engine
        self.signals = signals or Signals()

    # outbox --------------------------------------------------------------------------------------
    def enqueue(
        self,
        items: Iterable[Message],
        now: datetime,
        thread: tuple[str, str] | None = None,
    ) -> int:
        """Insert (key, intent, channel, kind, payload) rows unless their key exists; optionally open a thread."""
        added = 0
        with self.engine.begin() as conn:
            if thread is not None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            sa.insert(t.slack_threads).values(intent_id=thread[0], channel=thread[1], created_at=now)
                        )
                except IntegrityError:
                    pass
            for message in items:
                try:
                    with conn.begin_nested():
                        _insert_message(conn, message, now)
                    added += 1
                except IntegrityError:
                    continue
            if added and conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": OUTBOX})
        if added:
            self.signals.publish(OUTBOX)
        return added

    def due(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Pending items whose time has come, oldest first. A thread's message (its plan post or a reply) is held
        back while an earlier one of the same thread is pending but not due (waiting for its retry, or claimed by
        another process): each thread reads in order across retries and replicas. Earlier ones that are due come
        first in this same list, and the drain sends a list in order."""
        o, earlier = t.outbox.c, t.outbox.alias("earlier")
        threaded = [OutboxKind.POST_PARENT.value, OutboxKind.THREAD_REPLY.value]
        behind = sa.exists().where(
            earlier.c.intent_id == o.intent_id,
            earlier.c.status == OutboxStatus.PENDING,
            earlier.c.kind.in_(threaded),
            earlier.c.id < o.id,
            earlier.c.next_attempt_at > now,
        )
        q = (
            sa.select(t.outbox)
            .where(o.status == OutboxStatus.PENDING, o.next_attempt_at <= now)
            .where(sa.or_(o.intent_id.is_(None), o.kind.not_in(threaded), ~behind))
            .order_by(o.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_item(r._mapping) for r in conn.execute(q)]

    def claim(self, items: list[OutboxItem], now: datetime, until: datetime) -> list[OutboxItem]:
        """Take due items for this process until `until`; items another process took first are left out."""
        if not items:
            return []
        with self.engine.begin() as conn:
            taken = set(
                conn.execute(
                    sa.update(t.outbox)
                    .where(
                        t.outbox.c.id.in_([i.id for i in items]),
                        t.outbox.c.status == OutboxStatus.PENDING,
                        t.outbox.c.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=until)
                    .returning(t.outbox.c.id)
                ).scalars()
            )
        return [i for i in items if i.id in taken]

    def release(self, items: list[OutboxItem], now: datetime) -> None:
        """Hand back claimed items that this pass did not get to."""
        if items:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(t.outbox)
                    .where(t.outbox.c.id.in_([i.id for i in items]), t.outbox.c.status == OutboxStatus.PENDING)
                    .values(next_attempt_at=now)
                )

    def pending_count(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(t.outbox).where(t.outbox.c.status == OutboxStatus.PENDING)
                ).scalar_one()
            )

    def mark_sent(self, items: list[OutboxItem], ts: str | None, now: datetime) -> None:
        """Record delivery of one message (several thread replies may have gone out as one)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t.outbox)
                .where(t.outbox.c.id.in_([i.id for i in items]))
                .values(status=OutboxStatus.SENT, ts=ts, sent_at=now, attempts=t.outbox.c.attempts + 1)
            )
            item = items[0]
            if item.kind in (OutboxKind.UPDATE_PARENT, OutboxKind.EDIT):
                # An older edit of the same message still waiting (say, after a 5xx) must never undo this newer one.
                same = (
                    t.outbox.c.payload[EDIT_OF].as_string() == str(item.payload.get(EDIT_OF))
                    if item.kind == OutboxKind.EDIT
                    else sa.true()
                )
                conn.execute(
                    sa.update(t.outbox)
                    .where(
                        t.outbox.c.intent_id == item.intent_id,
                        t.outbox.c.kind == item.kind,
                        t.outbox.c.id < item.id,
                        t.outbox.c.status == OutboxStatus.PENDING,
                        same,
                    )
                    .values(status=OutboxStatus.SUPERSEDED)
                )
            if item.kind == OutboxKind.POST_PARENT and item.intent_id:
                conn.execute(
                    sa.update(t.slack_threads).where(t.slack_threads.c.intent_id == item.intent_id).values(parent_ts=ts)
                )

    def posted(self, key: str) -> Posted | None:
        """The message queued under `key`, if any."""
        o = t.outbox.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(o.status, o.channel, o.ts).where(o.dedupe_key == key[:200])).first()
        return Posted(row.status, row.channel, row.ts) if row else None

    def posts(self, intent_id: str, prefix: str, kind: OutboxKind) -> list[tuple[str, dict[str, Any], str]]:
        """(key, payload, status) of `intent_id`'s messages of `kind` whose key starts with `prefix`, oldest first."""
        o = t.outbox.c
        q = (
            sa.select(o.dedupe_key, o.payload, o.status)
            .where(o.intent_id == intent_id, o.kind == kind, o.dedupe_key.startswith(prefix, autoescape=True))
            .order_by(o.id)
        )
        with self.engine.connect() as conn:
            return [(r.dedupe_key, r.payload, r.status) for r in conn.execute(q)]

    def drop_pending(self, keys: list[str]) -> None:
        """Never send these, if they are still waiting (one a drain holds already may still go out)."""
        if keys:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(t.outbox)
                    .where(t.outbox.c.dedupe_key.in_(keys), t.outbox.c.status == OutboxStatus.PENDING)
                    .values(status=OutboxStatus.SUPERSEDED)
                )

    def mark_retry(self, item: OutboxItem, next_at: datetime, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t.outbox)
                .where(t.outbox.c.id == item.id)
                .values(attempts=item.attempts + 1, next_attempt_at=next_at, last_error=redact(error))
            )

    def defer(self, item: OutboxItem, next_at: datetime, why: str) -> None:
        """Look at `item` again at `next_at`: it waits for another message, which is not a failed attempt."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t.outbox)
                .where(t.outbox.c.id == item.id)
                .values(next_attempt_at=next_at, last_error=redact(why))
            )

    def mark_dead(self, item: OutboxItem, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t.outbox)
                .where(t.outbox.c.id == item.id)
                .values(status=OutboxStatus.DEAD, attempts=item.attempts + 1, last_error=redact(error))
            )

    def supersede(self, ids: list[int]) -> None:
        if ids:
            with self.engine.begin() as conn:
                conn.execute(sa.update(t.outbox).where(t.outbox.c.id.in_(ids)).values(status=OutboxStatus.SUPERSEDED))

    def sent(self, channel: str | None = None) -> list[OutboxItem]:
        q = sa.select(t.outbox).where(t.outbox.c.status == OutboxStatus.SENT).order_by(t.outbox.c.id)
        if channel:
            q = q.where(t.outbox.c.channel == channel)
        with self.engine.connect() as conn:
            return [_item(r._mapping) for r in conn.execute(q)]

    @contextmanager
    def projecting(self, intent_id: str) -> Iterator[None]:
        """Held while one process projects `intent_id` (reads it, queues its messages): on PostgreSQL a session
        advisory lock, so two replicas never queue the edits of one message out of order. SQLite serves one
        process, whose projector serialises itself."""
        if self.engine.dialect.name != "postgresql":
            yield
            return
        key = int.from_bytes(sha256(f"opsbot-projection:{intent_id}".encode()).digest()[:8], "big", signed=True)
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    # threads -------------------------------------------------------------------------------------
    def thread(self, intent_id: str) -> SlackThread | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.slack_threads).where(t.slack_threads.c.intent_id == intent_id)).first()
        return _thread(row._mapping) if row else None

    def unsettled(self, after: str = "", limit: int = 25) -> list[SlackThread]:
        """One page of the threads not yet at rest, in intent-id order from `after` (a sweep goes round them all;
        what moves is projected at once through the CHANGED signal, so the sweep only catches what a signal missed).
        Served by the partial index ix_threads_unsettled: its cost follows the page, not the table. The condition
        is written as the index's own (`settled = false`): `settled IS false` would not be matched to it, and the
        page would walk the primary key past every settled thread."""
        q = (
            sa.select(t.slack_threads)
            .where(t.slack_threads.c.settled == sa.false(), t.slack_threads.c.intent_id > after)
            .order_by(t.slack_threads.c.intent_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_thread(r._mapping) for r in conn.execute(q)]

    def threads(self, intent_ids: Iterable[str]) -> dict[str, SlackThread]:
        ids = list(intent_ids)
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.slack_threads).where(t.slack_threads.c.intent_id.in_(ids)))
            return {r._mapping["intent_id"]: _thread(r._mapping) for r in rows}

    def set_projection(self, intent_id: str, version: int, steps: str, settled: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t.slack_threads)
                .where(t.slack_threads.c.intent_id == intent_id)
                .values(projected_version=version, projected_steps=steps[:2000], settled=settled)
            )

    # requests taken in ---------------------------------------------------------------------------
    def first_delivery(self, key: str, now: datetime) -> bool:
        """Record a signed request by its key: true the first time, false for a replay or a Slack retry of it."""
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(t.slack_requests).values(key=key, seen_at=now))
        except IntegrityError:
            return False
        return True

    def forget_deliveries(self, before: datetime) -> int:
        """Drop the keys of requests older than `before` (their signatures have expired: a replay is refused)."""
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(t.slack_requests).where(t.slack_requests.c.seen_at < before)).rowcount

    # digests -------------------------------------------------------------------------------------
    def previous_digest_at(self, channel: str, before: datetime) -> datetime | None:
        """When the channel's latest digest before `before` was claimed; None before its first."""
        d = t.digests.c
        q = sa.select(sa.func.max(d.created_at)).where(d.channel == channel, d.created_at < before)
        with self.engine.connect() as conn:
            return as_utc(conn.execute(q).scalar())

    def digest_claimed(self, channel: str, period: str) -> bool:
        with self.engine.connect() as conn:
            q = sa.select(t.digests.c.owner).where(t.digests.c.channel == channel, t.digests.c.period == period)
            return conn.execute(q).first() is not None

    def claim_digest(
        self,
        channel: str,
        period: str,
        owner: str,
        now: datetime,
        message: Message,
    ) -> bool:
        """Claim the period and queue its message in one transaction: true for exactly one caller, across processes."""
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(t.digests).values(channel=channel, period=period, owner=owner, created_at=now))
                _insert_message(conn, message, now)
        except IntegrityError:
            return False
        return True
