"""The scheduled digest: counts by state and what needs attention, exactly once per channel and period."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from bot.blocks.digest import EXPIRING_ITEMS, MAX_ITEMS, AttentionItem, Digest, render_digest
from bot.blocks.text import duration, ticket_text
from bot.services import SlackServices
from store.slack import OutboxKind
from workflows.authoring import WorkflowDefinition
from workflows.config import DigestConfig
from workflows.reconciler import request_deadlines

log = structlog.get_logger("opsbot.digest")

FIRST_PERIOD = timedelta(days=1)  # what a channel's first digest counts as ended "in this period"
LINKED = MAX_ITEMS  # every item listed links to its thread
EXPIRY_NOTICE = timedelta(days=1)  # a request expiring within this is listed as about to expire


def period_of(now: datetime, digest: DigestConfig) -> str:
    """The digest's period key: the scheduled minute in the digest's timezone."""
    return now.astimezone(ZoneInfo(digest.timezone)).strftime("%Y-%m-%dT%H:%M")


def convergence_window(spec: WorkflowDefinition) -> float:
    """Seconds a converging intent of this workflow may take before a human should look."""
    return max((s.convergence_window or 0.0) for s in spec.steps) or spec.timeout


def build_digest(svc: SlackServices, digest: DigestConfig, now: datetime) -> Digest:
    """What is open and what ended since the channel's previous digest, by status, and what needs a human.

    It reads the open intents, those that ended in the period and the first page of what needs attention, never
    the intents that ended before: its cost does not grow with the store's history."""
    rt = svc.ops.rt
    since = svc.store.previous_digest_at(digest.channel, now) or now - FIRST_PERIOD
    stale = now - timedelta(minutes=digest.stale_approval_minutes)
    past_window = {spec.name: now - timedelta(seconds=convergence_window(spec)) for spec in rt.registry}
    with rt.store.transaction() as tx:
        counts = tx.count_by_status(ended_since=since)
        shown, needing = tx.needing_attention(stale, past_window, MAX_ITEMS)
        soon = tx.undecided_requests(request_deadlines(rt, now, ahead=EXPIRY_NOTICE), EXPIRING_ITEMS)
        head = tx.audit_head()
    links = _permalinks(svc, [i.id for i in [*shown, *soon][:LINKED]])
    attention = tuple(
        AttentionItem(
            i.id,
            i.workflow,
            i.status,
            i.status_reason or "",
            (now - i.updated_at).total_seconds(),
            links.get(i.id),
            ticket_text(i.plan),
            i.requester,
        )
        for i in shown
    )
    expiring = tuple(
        AttentionItem(
            i.id,
            i.workflow,
            i.status,
            f"expires in {duration(max(expires - now, timedelta(0)).total_seconds())} unless someone approves or "
            f"denies it (requested by @{i.requester})",
            (now - i.updated_at).total_seconds(),
            links.get(i.id),
            ticket_text(i.plan),
            i.requester,
        )
        for i in soon
        if (expires := i.updated_at + rt.config.request_ttl(i.workflow, i.environment)) > now
    )
    return Digest(
        channel=digest.channel,
        period=period_of(now, digest),
        counts=counts,
        attention=attention,
        audit_head=head,
        more=needing - len(shown),
        expiring=expiring,
        title=_words(now, digest, with_zone=True),
        since=_words(since, digest, with_zone=False),
    )


def _words(moment: datetime, digest: DigestConfig, with_zone: bool) -> str:
    """`Mon 30 Nov, 09:00 UTC`: a moment as the channel's people read it, in the digest's time zone."""
    local = moment.astimezone(ZoneInfo(digest.timezone))
    return local.strftime("%a %d %b, %H:%M") + (f" {local.tzname()}" if with_zone else "")


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
