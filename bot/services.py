"""The Slack surface's collaborators, built by the composition root and handed to the app and the digest."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from slack_sdk import WebClient

from bot.delivery import OutboxWorker
from bot.projector import Projector
from bot.surface import SlackSurface
from bot.work import LazyWork
from store.slack import SlackStore
from workflows.service import OpsService


@dataclass(frozen=True)
class SlackServices:
    ops: OpsService
    client: WebClient
    store: SlackStore
    projector: Projector
    outbox: OutboxWorker
    surface: SlackSurface
    wake: threading.Event
    owner: str  # this process, as it signs the digests it claims
    lazy: LazyWork = field(default_factory=LazyWork)  # where the work after each ack runs
