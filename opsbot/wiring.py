"""The composition root: settings in, a Runtime and its services out. Nothing is built at import time."""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient
from sqlalchemy import Engine

from adapters.aws import BotoAdapters
from bot.app import create_app
from bot.delivery import OutboxWorker
from bot.projector import Projector
from bot.services import SlackServices
from bot.slack_client import CountedRateLimitRetry, InstrumentedWebClient
from bot.surface import SlackSurface
from bot.usergroups import SlackGroupDirectory
from opsbot.settings import Settings, load_config
from opsbot.telemetry import configure_tracing
from store.db import make_engine
from store.signals import Signals
from store.slack import SlackStore
from store.sql import SqlStore
from workflows.catalog import build_registry
from workflows.deps import Runtime
from workflows.errors import ConfigError
from workflows.executor import Executor
from workflows.groups import NoGroups
from workflows.ports import AdapterFactory, Clock, FaultSeam
from workflows.reconciler import Reconciler
from workflows.registry import Registry
from workflows.runtime import NoFaults, SystemClock
from workflows.service import OpsService


@dataclass(frozen=True)
class Services:
    runtime: Runtime
    ops: OpsService
    executor: Executor
    reconciler: Reconciler
    store: SqlStore
    slack: SlackServices | None = None
    groups: SlackGroupDirectory | None = None  # roles' Slack user groups, refreshed by the worker's loop


def build_services(
    settings: Settings,
    adapters: AdapterFactory | None = None,
    faults: FaultSeam | None = None,
    clock: Clock | None = None,
    registry: Registry | None = None,
) -> Services:
    configure_tracing()
    engine = make_engine(settings.database_url)
    store = SqlStore(engine, Signals())
    config = load_config(settings.config)
    groups = user_groups(settings, config.user_groups()) if settings.slack_bot_token is not None else None
    rt = Runtime(
        store=store,
        registry=registry or build_registry(),
        config=config,
        adapters=adapters or BotoAdapters(endpoint_url=settings.aws_endpoint_url),
        faults=faults or NoFaults(),
        clock=clock or SystemClock(),
        approval_ttl=settings.approval_ttl_seconds,
        lease_seconds=settings.lease_seconds,
        groups=groups or NoGroups(),
    )
    owner = f"{socket.gethostname()}:{os.getpid()}"
    ops = OpsService(rt)
    slack = build_slack(settings, ops, engine, owner) if settings.slack_bot_token is not None else None
    return Services(rt, ops, Executor(rt, owner, settings.worker_threads), Reconciler(rt), store, slack, groups)


def user_groups(settings: Settings, groups: tuple[str, ...]) -> SlackGroupDirectory:
    """Members of the Slack user groups roles name, asked of Slack (none is asked before a check or a refresh)."""
    return SlackGroupDirectory(
        web_client(settings),
        ttl=settings.slack_groups_ttl_seconds,
        max_stale=settings.slack_groups_max_stale_seconds,
        groups=groups,
    )


def build_slack(settings: Settings, ops: OpsService, engine: Engine, owner: str) -> SlackServices:
    client = web_client(settings)
    slack_store = SlackStore(engine, ops.rt.store.signals if isinstance(ops.rt.store, SqlStore) else None)
    projector = Projector(ops, slack_store, ops.rt.registry)
    outbox = OutboxWorker(slack_store, client, ops.rt.clock, settings.slack_channel_burst, settings.slack_channel_rate)
    wake = threading.Event()
    surface = SlackSurface(ops, slack_store, projector, wake.set)
    return SlackServices(ops, client, slack_store, projector, outbox, surface, wake, owner)


def web_client(settings: Settings) -> WebClient:
    """The Web API client, with the 429 retry handler slack_sdk leaves out by default."""
    if settings.slack_bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return InstrumentedWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=base,
        timeout=int(settings.slack_timeout_seconds),
        # Only 429s are retried in the client (Slack did nothing). A lost connection may hide a post that
        # happened: the outbox retries those itself, after looking for the message first.
        retry_handlers=[CountedRateLimitRetry(max_retry_count=1)],
    )


def slack_app(settings: Settings, svc: Services) -> App:
    """The Bolt app for `opsbot serve`; refuses to build without the Slack credentials."""
    if svc.slack is None:
        raise ConfigError("the Slack services were not built (SLACK_BOT_TOKEN missing?)")
    if settings.slack_signing_secret is None:
        raise ConfigError("SLACK_SIGNING_SECRET is not set")
    return create_app(settings.slack_signing_secret.get_secret_value(), svc.slack)
