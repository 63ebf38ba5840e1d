"""Projects the intent store into Slack: each intent's one living plan message, and a thread post only for people.

The engine knows nothing of Slack. This reads what the store says (steps, audit events, status) and queues what is
missing, each under a unique key, so a crash or a second process never sends twice. Steps, checks and approvals
edit the plan message in place (its checklist); a post goes to the thread only when the intent enters a status the
state table says to tell (a human must act, it waits on another intent, or it ended), naming the requester and the
approvers, broadcast to the channel. An earlier such post loses its buttons once the intent has moved on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from hashlib import sha256
from typing import Any

import structlog

from bot.blocks.buttons import plan_risk
from bot.blocks.incident import render_incident_notice
from bot.blocks.plan import plan_fallback_text, render_plan_message
from bot.blocks.thread import render_verdict, superseded
from store.slack import EDIT_OF, LINK_PARENT, PLAN_URL, Message, OutboxKind, OutboxStatus, SlackStore, SlackThread
from workflows.model import AuditEvent, IntentId, StepRecord
from workflows.registry import Registry
from workflows.service import IntentView, OpsService

log = structlog.get_logger("opsbot.projector")


def parent_payload(view: IntentView, registry: Registry) -> dict[str, Any]:
    spec = registry.get(view.intent.workflow)
    return {"text": plan_fallback_text(view), "blocks": render_plan_message(view, spec.summary, spec.risk)}


def step_signature(steps: Iterable[StepRecord]) -> str:
    """Changes whenever a step starts, finishes or is retried: with the version, what a thread is synced to. A
    digest, so it fits the projection's column and a message key whatever the number of steps."""
    said = ",".join(f"{s.seq}:{s.status.value}:{s.attempts}" for s in steps)
    return sha256(said.encode()).hexdigest()[:16]


def entry_event(view: IntentView) -> AuditEvent | None:
    """The audit event that moved the intent into its current status (every transition records from and to)."""
    status = view.intent.status.value
    for event in reversed(view.events):
        if event.data.get("to") == status and event.data.get("from") != status:
            return event
    return None


def post_key(view: IntentView, entry: AuditEvent | None) -> str:
    """One post per entry into a status that tells people: keyed by the event that moved it there."""
    return f"{view.intent.id}:post:{entry.seq if entry is not None else f'v{view.intent.version}'}"


MAX_THREAD_POSTS = 2  # with the plan message, at most three posts per operation
SWEEP = 25  # unsettled threads looked at per pass, round-robin, besides those a signal marked


class Projector:
    """What moved (marked by the CHANGED signal) is projected first; a sweep of a few unsettled threads per pass
    catches what a signal missed. A pass costs what changed, not how many intents exist."""

    def __init__(self, ops: OpsService, slack: SlackStore, registry: Registry) -> None:
        self.ops, self.slack, self.registry = ops, slack, registry
        self._marked: set[str] = set()
        self._lock = threading.Lock()
        self._projecting = threading.Lock()
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
        if self._moved(intent_id) is None:
            return 0
        # One projection of an intent at a time, in this process and across replicas: a click's refresh and a
        # worker's pass would otherwise queue the edits of one message out of order.
        with self._projecting, self.slack.projecting(intent_id):
            thread = self._moved(intent_id)  # again, under the lock: another one may have projected it meanwhile
            return 0 if thread is None else self._project(intent_id, thread)

    def _moved(self, intent_id: str) -> SlackThread | None:
        """Its thread, if the intent moved since the thread was last projected: two reads, no rendering."""
        thread = self.slack.thread(intent_id)
        if thread is None:
            return None
        with self.ops.rt.store.transaction() as tx:
            current, steps = tx.get_intent(IntentId(intent_id)), tx.steps(IntentId(intent_id))
        if current is None or (current.version, step_signature(steps)) == (
            thread.projected_version,
            thread.projected_steps,
        ):
            return None
        return thread

    def _project(self, intent_id: str, thread: SlackThread) -> int:
        view = self.ops.show(intent_id)
        intent = view.intent
        signature = step_signature(view.steps)  # of what is rendered below
        items = self._thread_posts(view, thread)
        parent = parent_payload(view, self.registry)
        key = f"{intent_id}:parent:v{intent.version}:{signature}"
        items.append((key, intent_id, thread.channel, OutboxKind.UPDATE_PARENT, parent))
        items += self._incident_notice(view, thread)
        queued = self.slack.enqueue(items, self.ops.rt.clock.now())
        self.slack.set_projection(intent_id, intent.version, signature, settled=intent.status.terminal)
        return queued

    def _thread_posts(self, view: IntentView, thread: SlackThread) -> list[Message]:
        """The post for the status it entered (once posted, edits keep its buttons current), and an edit that takes
        the buttons off each earlier post. An operation posts at most MAX_THREAD_POSTS times in its thread: past
        that, the latest post is edited to say the new status instead (with its buttons)."""
        intent, items = view.intent, list[Message]()
        earlier = self.slack.posts(intent.id, f"{intent.id}:post:", OutboxKind.THREAD_REPLY)
        posted = {key: payload for key, payload, status in earlier if status != OutboxStatus.SUPERSEDED}
        target = None
        if intent.status.tells:
            entry = entry_event(view)
            target = post_key(view, entry)
            if target not in posted and len(posted) >= MAX_THREAD_POSTS:
                target = list(posted)[-1]  # no further post: the latest one says it
            text, blocks = render_verdict(view, entry)
            if target in posted:
                edit = {"text": text, "blocks": blocks, EDIT_OF: target}
                items.append((f"{target}:v{intent.version}", intent.id, thread.channel, OutboxKind.EDIT, edit))
            else:
                post = {"text": text, "blocks": blocks, "reply_broadcast": True}
                items.append((target, intent.id, thread.channel, OutboxKind.THREAD_REPLY, post))
        unsent = [key for key, _, status in earlier if key != target and status == OutboxStatus.PENDING]
        self.slack.drop_pending(unsent)  # moved on before Slack saw it: a post nobody needs any more
        for key, payload in posted.items():
            if key != target:
                over = {**superseded(payload), EDIT_OF: key}  # dead at once if it was dropped above
                items.append((f"{key}:over", intent.id, thread.channel, OutboxKind.EDIT, over))
        return items

    def _incident_notice(self, view: IntentView, thread: SlackThread) -> list[Message]:
        """For the risk levels its environment names: the notice (once), then an edit on each status people are
        told about, so it ends with the outcome."""
        intent = view.intent
        env = self.ops.rt.config.environments.get(intent.environment)
        channel = env.incident_channel if env is not None else None
        if env is None or not channel or channel == thread.channel:
            return []
        if plan_risk(intent.plan).value not in env.incident_risks:
            return []
        payload = {**render_incident_notice(view, PLAN_URL), LINK_PARENT: intent.id}
        key = f"{intent.id}:incident"
        items: list[Message] = [(key, intent.id, channel, OutboxKind.POST, payload)]
        if intent.status.tells:
            edit = {**payload, EDIT_OF: key}
            items.append((f"{key}:v{intent.version}", intent.id, channel, OutboxKind.EDIT, edit))
        return items
