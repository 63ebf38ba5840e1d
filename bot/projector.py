"""Projects the intent store into Slack: each intent's parent message and status thread, via the outbox.

The engine knows nothing of Slack. This reads what the store says (steps, audit events, status) and queues
the messages that are missing, each under a unique key, so a crash or a second process never sends twice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

import structlog

from bot.blocks.plan import plan_fallback_text, render_plan_message
from bot.blocks.thread import render_event, render_step, render_verdict
from store.slack import OutboxKind, SlackStore
from workflows.model import EventKind, IntentId, IntentStatus, StepRecord, StepStatus
from workflows.registry import Registry
from workflows.service import IntentView, OpsService

log = structlog.get_logger("opsbot.projector")

Entry = tuple[datetime, str, str, list[dict[str, Any]]]
_SAID_BY_VERDICT = frozenset({EventKind.SUCCEEDED, EventKind.COMPENSATED})


def parent_payload(view: IntentView, registry: Registry) -> dict[str, Any]:
    spec = registry.get(view.intent.workflow)
    return {"text": plan_fallback_text(view), "blocks": render_plan_message(view, spec.summary, spec.risk)}


def step_signature(steps: Iterable[StepRecord]) -> str:
    """Changes whenever a step starts, finishes or is retried: with the version, what a thread is synced to."""
    return ",".join(f"{s.seq}:{s.status.value}:{s.attempts}" for s in steps)


def shows_verdict(status: IntentStatus) -> bool:
    return status.terminal or status.needs_human


SWEEP = 25  # unsettled threads looked at per pass, round-robin, besides those a signal marked


class Projector:
    """What moved (marked by the CHANGED signal) is projected first; a sweep of a few unsettled threads per pass
    catches what a signal missed. A pass costs what changed, not how many intents exist."""

    def __init__(self, ops: OpsService, slack: SlackStore, registry: Registry) -> None:
        self.ops, self.slack, self.registry = ops, slack, registry
        self._marked: set[str] = set()
        self._lock = threading.Lock()
        self._cursor = ""

    def mark(self, intent_id: str) -> None:
        """`intent_id` moved: project it in the next pass, ahead of the sweep."""
        if intent_id:
            with self._lock:
                self._marked.add(intent_id)

    def sync(self) -> int:
        """Project what was marked, then one page of the sweep; returns how many messages were queued."""
        with self._lock:
            marked, self._marked = sorted(self._marked), set()
        page = self.slack.unsettled(after=self._cursor, limit=SWEEP)
        self._cursor = page[-1].intent_id if len(page) == SWEEP else ""
        queued = 0
        for intent_id in [*marked, *(t.intent_id for t in page if t.intent_id not in marked)]:
            try:
                queued += self.sync_one(intent_id)
            except Exception:
                log.exception("projection_failed", intent_id=intent_id)
        return queued

    def sync_one(self, intent_id: str) -> int:
        thread = self.slack.thread(intent_id)
        if thread is None:
            return 0
        with self.ops.rt.store.transaction() as tx:  # two reads decide whether anything moved
            current, steps = tx.get_intent(IntentId(intent_id)), tx.steps(IntentId(intent_id))
        signature = step_signature(steps)
        if current is None or (current.version, signature) == (thread.projected_version, thread.projected_steps):
            return 0
        view = self.ops.show(intent_id)
        intent = view.intent
        signature = step_signature(view.steps)  # of what is rendered below
        entries: list[Entry] = []
        for step in view.steps:
            started = replace(step, status=StepStatus.STARTED, external_ids={}, error=None, finished_at=None)
            entries.append(
                (step.started_at, f"{intent_id}:step:{step.seq}:started:{step.attempts}", *render_step(started))
            )
            if step.status is not StepStatus.STARTED:
                at = step.finished_at or step.started_at
                entries.append(
                    (at, f"{intent_id}:step:{step.seq}:{step.status.value}:{step.attempts}", *render_step(step))
                )
        verdict = shows_verdict(intent.status)
        for event in view.events:
            if verdict and event.kind in _SAID_BY_VERDICT:
                continue  # the verdict below says it, with the four answers
            rendered = render_event(event)
            if rendered is not None:
                entries.append((event.created_at, f"{intent_id}:event:{event.seq}", *rendered))
        if verdict:
            entries.append((intent.updated_at, f"{intent_id}:verdict:v{intent.version}", *render_verdict(view)))
        entries.sort(key=lambda e: e[0])
        items = [
            (key, intent_id, thread.channel, OutboxKind.THREAD_REPLY, {"text": text, "blocks": blocks})
            for _, key, text, blocks in entries
        ]
        items.append(
            (
                f"{intent_id}:parent:v{intent.version}:{signature}",
                intent_id,
                thread.channel,
                OutboxKind.UPDATE_PARENT,
                parent_payload(view, self.registry),
            )
        )
        queued = self.slack.enqueue(items, self.ops.rt.clock.now())
        self.slack.set_projection(intent_id, intent.version, signature, settled=intent.status.terminal)
        return queued
