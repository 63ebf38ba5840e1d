"""Background work in one process: executor, reconciler, Slack projection and delivery, digests.

Each loop waits on a wake-up (an approval, a released lock, a moved intent, a queued message: signals from the
store, across processes through PostgreSQL's LISTEN/NOTIFY) and falls back to a poll, so nothing waits for a
tick and nothing is lost if a signal is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from prometheus_client import start_http_server

from bot.digest import post_digest
from opsbot.settings import Settings
from opsbot.wiring import Services
from store.metrics import register_store_metrics
from store.signals import PgListener
from store.slack import OUTBOX
from workflows.errors import ConfigError
from workflows.ports import CHANGED, RUNNABLE
from workflows.telemetry import PASS_SECONDS

log = structlog.get_logger("opsbot.worker")


class WakeLoop:
    """Runs `body` whenever woken, and at least every `every` seconds (or sooner, when `body` says when)."""

    def __init__(
        self, name: str, body: Callable[[], float | None], every: float, wake: threading.Event | None = None
    ) -> None:
        self.name, self.body, self.every = name, body, every
        self.wake = wake or threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> WakeLoop:
        self._thread.start()
        return self

    def poke(self, _payload: str = "") -> None:
        self.wake.set()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        self._thread.join(15)

    def _run(self) -> None:
        wait = 0.0
        while not self._stop.is_set():
            self.wake.wait(wait)
            self.wake.clear()
            if self._stop.is_set():
                return
            began = time.perf_counter()
            try:
                sooner = self.body()
            except Exception:
                log.exception("loop_pass_failed", loop=self.name)
                sooner = None
            PASS_SECONDS.labels(self.name).observe(time.perf_counter() - began)
            wait = self.every if sooner is None else max(min(sooner, self.every), 0.0)


class Worker:
    """The loops, the digest schedule and the cross-process listener, stopped together."""

    def __init__(self, loops: list[WakeLoop], scheduler: BackgroundScheduler, listener: PgListener | None) -> None:
        self.loops, self.scheduler, self.listener = loops, scheduler, listener

    def shutdown(self) -> None:
        for loop in self.loops:
            loop.stop()
        if self.listener is not None:
            self.listener.stop()
        self.scheduler.shutdown(wait=True)


def start_worker(svc: Services, settings: Settings, engine_jobs: bool = True) -> Worker:
    """Start the loops; `engine_jobs=False` (serve --no-worker) leaves executing to separate worker processes."""
    signals = svc.store.signals
    register_store_metrics(svc.store.engine, settings.metrics_ttl_seconds)
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
        log.info("metrics_serving", url=f"http://{settings.metrics_host}:{settings.metrics_port}/metrics")
    loops: list[WakeLoop] = []
    if engine_jobs:
        executor = WakeLoop("executor", lambda: _run_all(svc), settings.executor_poll_seconds)
        signals.subscribe(RUNNABLE, executor.poke)
        reconciler = WakeLoop("reconciler", lambda: _reconcile(svc), settings.reconcile_interval_seconds)
        loops += [executor, reconciler]
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    if svc.slack is not None:
        slack = svc.slack
        for digest in svc.runtime.config.digests:
            try:
                trigger = CronTrigger.from_crontab(digest.cron, timezone=digest.timezone)
            except (ValueError, KeyError) as exc:
                raise ConfigError(f"digest for {digest.channel}: bad cron {digest.cron!r} or timezone: {exc}") from None
            scheduler.add_job(post_digest, trigger, args=(slack, digest), id=f"digest:{digest.channel}")
        delivery = WakeLoop("slack-delivery", lambda: _deliver(svc), settings.outbox_interval_seconds, slack.wake)

        def moved(intent_id: str) -> None:
            slack.projector.mark(intent_id)
            delivery.poke()

        signals.subscribe(CHANGED, moved)
        signals.subscribe(OUTBOX, delivery.poke)
        loops.append(delivery)
    if svc.groups is not None and svc.runtime.config.user_groups():  # only when a role names a user group
        loops.append(WakeLoop("slack-groups", svc.groups.refresh, svc.groups.refresh_every))
    listener = None
    if svc.store.engine.dialect.name == "postgresql":
        channels = [RUNNABLE, CHANGED, OUTBOX]
        listener = PgListener(_libpq_dsn(settings.database_url), signals, channels).start()
    for loop in loops:
        loop.start()
    scheduler.start()
    return Worker(loops, scheduler, listener)


def _run_all(svc: Services) -> None:
    """Everything runnable now; a round that frees a resource lock wakes its waiters, run in the next round."""
    svc.executor.run_until_idle()


def _reconcile(svc: Services) -> float | None:
    """One pass, then sleep until the next check comes due (bounded by the interval)."""
    svc.reconciler.reconcile_due()
    svc.reconciler.expire_requests()
    with svc.runtime.store.transaction() as tx:
        due = tx.next_check_at()
    return _seconds_until(due, svc.runtime.clock.now()) if due else None


def _deliver(svc: Services) -> float | None:
    assert svc.slack is not None
    svc.slack.projector.sync()
    svc.slack.outbox.drain_once()
    return None


def _seconds_until(moment: datetime, now: datetime) -> float:
    return max((moment - now).total_seconds(), 0.0) + 0.01


def _libpq_dsn(url: str) -> str:
    """`postgresql+psycopg://…` (SQLAlchemy's form) as libpq takes it."""
    return "postgresql://" + url.split("://", 1)[1]
