"""The periodic channel digest: how many intents are open or ended in the period, by status, and which need a human."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from bot.blocks.kit import MESSAGE_BLOCKS, Block, context, divider, fallback, fit_blocks, header, section
from bot.blocks.status import status_emoji, status_label
from bot.blocks.text import channel_link, clean, clipped, code, duration, link
from workflows.model import IntentStatus

MAX_ITEMS = 30  # attention items shown one block each; the rest are counted
EXPIRING_ITEMS = 10  # requests about to expire, shown one block each


@dataclass(frozen=True, slots=True)
class AttentionItem:
    """One intent that needs a human, as the digest lists it."""

    intent_id: str
    workflow: str
    status: IntentStatus
    reason: str
    age_seconds: float
    permalink: str | None = None
    ticket: str | None = None  # mrkdwn: the change ticket, linked


@dataclass(frozen=True, slots=True)
class Digest:
    """What the digest reports for one channel and period; items are shown in the order given."""

    channel: str
    period: str
    # Open intents by status, and those that reached a final status in the period.
    counts: Mapping[IntentStatus, int] = field(default_factory=lambda: MappingProxyType({}))
    attention: tuple[AttentionItem, ...] = ()
    audit_head: str = ""  # "<seq>:<sha256>" of the newest audit event: evidence kept outside the database
    more: int = 0  # how many more need attention than `attention` lists
    expiring: tuple[AttentionItem, ...] = ()  # requests that expire before the next digest unless decided


def _counts(digest: Digest) -> str:
    shown = [(s, digest.counts.get(s, 0)) for s in IntentStatus if digest.counts.get(s, 0) > 0]
    if not shown:
        return "_No operations in this period._"
    return "\n".join(f"{status_emoji(s)} {status_label(s)}: *{n}*" for s, n in shown)


def _item(item: AttentionItem) -> Block:
    name = link(item.permalink, f"*{clipped(item.workflow, 200)}*")
    head = f"{status_emoji(item.status)} {name} {code(item.intent_id, 60)} · {status_label(item.status)}"
    head += f" · {item.ticket}" if item.ticket else ""
    return section(f"{head} · for {duration(item.age_seconds)}\n{clipped(item.reason, 1500) or '_no reason recorded_'}")


def render_digest(digest: Digest) -> tuple[str, list[dict[str, Any]]]:
    """The digest message: counts by status, then the intents that need attention (oldest first as given)."""
    total = sum(n for n in digest.counts.values() if n > 0)
    waiting = len(digest.attention) + max(digest.more, 0)
    blocks: list[Block] = [
        header(f"Ops digest · {digest.period}"),
        context([f"{channel_link(digest.channel)} · {total} operation(s) · {waiting} need attention"]),
        section(_counts(digest)),
        divider(),
    ]
    if waiting:
        shown = digest.attention[:MAX_ITEMS]
        blocks.append(section(f"*Needs attention ({waiting})*"))
        blocks.extend(_item(item) for item in shown)
        if waiting > len(shown):
            blocks.append(context([f"_…and {waiting - len(shown)} more; `opsbot intents list` shows them all_"]))
    else:
        blocks.append(section(":sparkles: Nothing needs attention."))
    if digest.expiring:
        blocks.append(section(f"*About to expire ({len(digest.expiring)})*: approve or deny them, or let them go"))
        blocks.extend(_item(item) for item in digest.expiring[:EXPIRING_ITEMS])
    if digest.audit_head:
        blocks.append(
            context(
                [
                    f"Audit chain head {code(digest.audit_head, 100)}: check the log against it with "
                    f"`opsbot audit verify --anchor {clean(digest.audit_head, 90)}`"
                ]
            )
        )
    text = f"Ops digest for {clean(digest.period)}: {total} operation(s), {waiting} need attention"
    return fallback(text), fit_blocks(blocks, MESSAGE_BLOCKS)
