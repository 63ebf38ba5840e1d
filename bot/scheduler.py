"""APScheduler jobs: the executor polls for runnable intents, the reconciler runs on its interval."""

from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler

from bot.settings import Settings
from bot.wiring import Services


def start_worker(svc: Services, settings: Settings) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(svc.executor.run_once, "interval", seconds=1.0, id="executor")
    scheduler.add_job(svc.reconciler.reconcile_due, "interval", seconds=settings.reconcile_interval_seconds, id="reconciler")
    scheduler.start()
    return scheduler
