"""Gauges read from the intent store at scrape time: the same on every replica (take them from any one, or `max`
them; do not sum them), each query a range of an index, so a scrape costs what is open, not what was ever stored.
Read at most every `ttl` seconds however often Prometheus (or several of them) scrapes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import structlog
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from store import tables as t
from store.slack import OutboxStatus
from workflows.model import IntentStatus

log = structlog.get_logger("opsbot.metrics")

ENDED_WINDOW = timedelta(hours=24)  # final intents are counted for this long after they end
_OPEN = [s.value for s in IntentStatus if not s.terminal]
_FINAL = [s.value for s in IntentStatus if s.terminal]


class StoreCollector(Collector):
    """`opsbot_intents`, the outbox's depth and age, the audit chain's length, and whether the store answered."""

    def __init__(
        self, engine: sa.Engine | None = None, ttl: float = 10.0, now: Callable[[], datetime] | None = None
    ) -> None:
        self.engine, self.ttl = engine, ttl
        self.now = now or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._read_at = float("-inf")

    def bind(self, engine: sa.Engine) -> None:
        """Read this store from now on (the process's services were rebuilt)."""
        with self._lock:
            self.engine, self._read_at = engine, float("-inf")

    def describe(self) -> Iterator[Metric]:
        return iter(())  # read only at scrape time, never at registration

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if self.engine is not None and time.monotonic() - self._read_at >= self.ttl:
                self._cached = self._read(self.engine)
                self._read_at = time.monotonic()
            return iter(list(self._cached))

    def _read(self, engine: sa.Engine) -> list[Metric]:
        up = GaugeMetricFamily("opsbot_store_up", "1 when the last scrape could read the intent store")
        try:
            metrics = _store_metrics(engine, self.now())
        except sa.exc.SQLAlchemyError as exc:
            log.warning("metrics_store_unavailable", error=str(exc).splitlines()[0])
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [*metrics, up]


def _store_metrics(engine: sa.Engine, now: datetime) -> list[Metric]:
    i, o = t.intents.c, t.outbox.c
    intents = GaugeMetricFamily(
        "opsbot_intents",
        f"Intents by workflow, environment and status: every one not over yet, and those over (a final status) "
        f"in the last {ENDED_WINDOW.total_seconds() / 3600:g} hours",
        labels=["workflow", "environment", "status"],
    )
    counts = sa.union_all(
        sa.select(i.workflow, i.environment, i.status, sa.func.count())
        .where(i.status.in_(_OPEN))
        .group_by(i.workflow, i.environment, i.status),
        sa.select(i.workflow, i.environment, i.status, sa.func.count())
        .where(i.status.in_(_FINAL), i.updated_at >= now - ENDED_WINDOW)
        .group_by(i.workflow, i.environment, i.status),
    )
    pending = o.status == OutboxStatus.PENDING.value
    with engine.connect() as conn:
        for workflow, environment, status, n in conn.execute(counts):
            intents.add_metric([workflow, environment, status], n)
        depth, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(o.created_at)).where(pending)).one()
        chain = conn.execute(sa.select(sa.func.max(t.audit.c.seq))).scalar()
    age = (now - (oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC))).total_seconds() if oldest else 0.0
    return [
        intents,
        GaugeMetricFamily("opsbot_outbox_messages", "Slack messages waiting in the outbox", value=depth),
        GaugeMetricFamily(
            "opsbot_outbox_oldest_age_seconds", "Age of the oldest message waiting in the outbox (0 if none)", value=age
        ),
        GaugeMetricFamily(
            "opsbot_audit_chain_events", "Events in the audit hash chain (its head's sequence)", value=chain or 0
        ),
    ]


_collector: StoreCollector | None = None
_registered = threading.Lock()


def register_store_metrics(engine: sa.Engine, ttl: float = 10.0) -> StoreCollector:
    """The process's store gauges in the default registry, reading `engine` (once per process; later calls rebind)."""
    global _collector
    with _registered:
        if _collector is None:
            _collector = StoreCollector(engine, ttl)
            REGISTRY.register(_collector)
        else:
            _collector.bind(engine)
            _collector.ttl = ttl
        return _collector
