"""The composition root: settings in, a Runtime and its services out. Nothing is built at import time."""

from __future__ import annotations

import socket
import os
from dataclasses import dataclass

from adapters.aws import BotoAdapters
from bot.settings import Settings, load_config
from store.db import make_engine
from store.sql import SqlStore
from workflows.catalog import build_registry
from workflows.deps import Runtime
from workflows.executor import Executor
from workflows.ports import AdapterFactory, FaultSeam
from workflows.reconciler import Reconciler
from workflows.runtime import KillAtPoint, NoFaults
from workflows.service import OpsService


@dataclass(frozen=True)
class Services:
    runtime: Runtime
    ops: OpsService
    executor: Executor
    reconciler: Reconciler
    store: SqlStore


def build_services(settings: Settings, adapters: AdapterFactory | None = None) -> Services:
    engine = make_engine(settings.database_url)
    store = SqlStore(engine)
    faults: FaultSeam = KillAtPoint(settings.fault) if settings.fault else NoFaults()
    rt = Runtime(
        store=store,
        registry=build_registry(),
        config=load_config(settings.config),
        adapters=adapters or BotoAdapters(endpoint_url=settings.aws_endpoint_url),
        faults=faults,
        approval_ttl=settings.approval_ttl_seconds,
        lease_seconds=settings.lease_seconds,
    )
    owner = f"{socket.gethostname()}:{os.getpid()}"
    return Services(rt, OpsService(rt), Executor(rt, owner, settings.worker_threads), Reconciler(rt), store)
