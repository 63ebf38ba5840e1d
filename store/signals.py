"""Wake-ups instead of polls: signals raised inside a transaction reach subscribers once it commits.

In this process they are delivered by the store right after the commit; across processes on PostgreSQL the same
signal travels as a NOTIFY (which PostgreSQL itself delivers only at commit) to every `PgListener`.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable

import psycopg
import structlog

log = structlog.get_logger("opsbot.signals")

Subscriber = Callable[[str], None]  # called with the signal's payload (an intent id, or "")


class Signals:
    """Subscribers by channel; publishing never raises (a broken subscriber is logged and skipped)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers[channel].append(subscriber)

    def publish(self, channel: str, payload: str = "") -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(channel, ()))
        for subscriber in subscribers:
            try:
                subscriber(payload)
            except Exception:
                log.exception("signal_subscriber_failed", channel=channel)


class PgListener:
    """LISTENs on the channels on its own connection and publishes what arrives; reconnects with backoff."""

    def __init__(self, dsn: str, signals: Signals, channels: Iterable[str]) -> None:
        self.dsn, self.signals, self.channels = dsn, signals, tuple(channels)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listener", daemon=True)

    def start(self) -> PgListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                    for channel in self.channels:
                        conn.execute(f'LISTEN "{channel}"')
                    backoff = 0.5
                    for channel in self.channels:  # anything raised while we were away: look once
                        self.signals.publish(channel, "")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0, stop_after=100):
                            self.signals.publish(note.channel, note.payload)
            except psycopg.Error as exc:
                log.warning("pg_listener_reconnecting", error=type(exc).__name__, backoff=backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
