"""Background work in one process: executor, reconciler, Slack projection and delivery, digests."""

from __future__ import annotations

import threading

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.digest import post_digest
from opsbot.settings import Settings
from opsbot.wiring import Services
from workflows.errors import ConfigError

log = structlog.get_logger("opsbot.worker")


class Worker:
    """The scheduler and the delivery pump, stopped together."""

    def __init__(self, scheduler: BackgroundScheduler, pump: DeliveryPump | None) -> None:
        self.scheduler, self.pump = scheduler, pump

    def shutdown(self) -> None:
        if self.pump is not None:
            self.pump.stop()
        self.scheduler.shutdown(wait=True)


def start_worker(svc: Services, settings: Settings, engine_jobs: bool = True) -> Worker:
    """Start the jobs; `engine_jobs=False` (serve --no-worker) leaves executing to separate worker processes."""
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    if engine_jobs:
        # A round that frees a resource lock wakes its waiters; run_until_idle picks them up at once.
        scheduler.add_job(svc.executor.run_until_idle, "interval", seconds=1.0, id="executor")
        scheduler.add_job(
            svc.reconciler.reconcile_due, "interval", seconds=settings.reconcile_interval_seconds, id="reconciler"
        )
    pump = None
    if svc.slack is not None:
        for digest in svc.runtime.config.digests:
            try:
                trigger = CronTrigger.from_crontab(digest.cron, timezone=digest.timezone)
            except (ValueError, KeyError) as exc:
                raise ConfigError(f"digest for {digest.channel}: bad cron {digest.cron!r} or timezone: {exc}") from None
            scheduler.add_job(post_digest, trigger, args=(svc.slack, digest), id=f"digest:{digest.channel}")
        pump = DeliveryPump(svc, settings.outbox_interval_seconds)
        pump.start()
    scheduler.start()
    return Worker(scheduler, pump)


class DeliveryPump:
    """Projects intents into Slack and drains the outbox, promptly when woken and on an interval otherwise."""

    def __init__(self, svc: Services, interval: float) -> None:
        assert svc.slack is not None
        self.slack, self.interval = svc.slack, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="slack-delivery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.slack.wake.set()
        self._thread.join(10)

    def run_once(self) -> None:
        self.slack.projector.sync()
        self.slack.outbox.drain_once()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.slack.wake.wait(self.interval)
            self.slack.wake.clear()
            try:
                self.run_once()
            except Exception:
                log.exception("delivery_pass_failed")
