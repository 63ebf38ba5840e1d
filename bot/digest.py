"""The scheduled digest: counts by state and what needs attention, exactly once per channel and period."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from bot.blocks.digest import AttentionItem, Digest, render_digest
from bot.services import SlackServices
from store.slack import OutboxKind
from workflows.config import DigestConfig
from workflows.model import IntentStatus

log = structlog.get_logger("opsbot.digest")

_WAITING = (IntentStatus.PENDING_APPROVAL, IntentStatus.NEEDS_REAPPROVAL)
_ATTENTION = (
    IntentStatus.WAITING,  # its reason names the intent holding the resource
    IntentStatus.UNKNOWN,
    IntentStatus.BLOCKED,
    IntentStatus.FAILED,
    IntentStatus.UNSAFE,
    IntentStatus.NEEDS_REAPPROVAL,
    IntentStatus.CONVERGING,
    IntentStatus.PENDING_APPROVAL,
)


def period_of(now: datetime, digest: DigestConfig) -> str:
    """The digest's period key: the scheduled minute in the digest's timezone."""
    return now.astimezone(ZoneInfo(digest.timezone)).strftime("%Y-%m-%dT%H:%M")


def build_digest(svc: SlackServices, digest: DigestConfig, now: datetime) -> Digest:
    rt = svc.ops.rt
    with rt.store.transaction() as tx:
        counts = tx.count_by_status()
        candidates = tx.list_intents(_ATTENTION, limit=500)
    items = []
    stale = timedelta(minutes=digest.stale_approval_minutes)
    for intent in candidates:
        age = now - intent.updated_at
        if intent.status in _WAITING and intent.status is not IntentStatus.NEEDS_REAPPROVAL and age < stale:
            continue  # a fresh request waiting for review is not a problem yet
        if intent.status is IntentStatus.CONVERGING:
            spec = rt.registry.get(intent.workflow)
            window = max((s.convergence_window or 0.0) for s in spec.steps) or spec.timeout
            if (now - (intent.started_at or intent.created_at)).total_seconds() <= window:
                continue  # converging inside its window is normal
        items.append((intent, age.total_seconds()))
    links = _permalinks(svc, [i.id for i, _ in items[:20]])
    attention = tuple(
        AttentionItem(i.id, i.workflow, i.status, i.status_reason or "", age, links.get(i.id)) for i, age in items
    )
    with rt.store.transaction() as tx:
        head = tx.audit_head()
    return Digest(
        channel=digest.channel, period=period_of(now, digest), counts=dict(counts), attention=attention, audit_head=head
    )


def _permalinks(svc: SlackServices, intent_ids: list[str]) -> dict[str, str]:
    links = {}
    for intent_id, thread in svc.store.threads(intent_ids).items():
        if thread.parent_ts:
            try:
                links[intent_id] = str(
                    svc.client.chat_getPermalink(channel=thread.channel, message_ts=thread.parent_ts)["permalink"]
                )
            except Exception as exc:  # a missing link must not stop the digest
                log.warning("permalink_failed", intent_id=intent_id, error=str(exc))
    return links


def post_digest(svc: SlackServices, digest: DigestConfig, now: datetime | None = None) -> bool:
    """Queue this period's digest unless another process already did; True when this call queued it."""
    now = now or svc.ops.rt.clock.now()
    period = period_of(now, digest)
    if svc.store.digest_claimed(digest.channel, period):
        return False
    text, blocks = render_digest(build_digest(svc, digest, now))
    message = (
        f"digest:{digest.channel}:{period}",
        None,
        digest.channel,
        OutboxKind.POST,
        {"text": text, "blocks": blocks},
    )
    if not svc.store.claim_digest(digest.channel, period, svc.owner, now, message):
        return False
    svc.wake.set()
    log.info("digest_queued", channel=digest.channel, period=period)
    return True
