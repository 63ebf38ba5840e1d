"""The periodic channel digest: how many intents are open or ended in the period, by status, and which need a human."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from bot.blocks.kit import MESSAGE_BLOCKS, Block, context, divider, fallback, fit_blocks, header, section
from bot.blocks.status import status_emoji, status_label
from bot.blocks.text import channel_link, clean, clipped, code, duration, link, mention
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
    owner: str | None = None  # who asked for it: mentioned, so the digest reaches someone


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
    title: str = ""  # the period in words ("Mon 30 Nov, 09:00 UTC"); the key `period` when empty
    since: str = ""  # when the period began, in words ("Sun 29 Nov 09:00")


def _counts(digest: Digest, final: bool) -> list[tuple[IntentStatus, int]]:
    return [(s, n) for s in IntentStatus if s.terminal is final and (n := digest.counts.get(s, 0)) > 0]


def _count_lines(counts: list[tuple[IntentStatus, int]]) -> str:
    return "\n".join(f"{status_emoji(s)} {status_label(s)}: *{n}*" for s, n in counts)


def _in_words(counts: list[tuple[IntentStatus, int]]) -> str:
    return ", ".join(f"{n} {status_label(s).split(':')[0].lower()}" for s, n in counts)


def _item(item: AttentionItem) -> Block:
    name = link(item.permalink, f"*{clipped(item.workflow, 200)}*")
    head = f"{status_emoji(item.status)} {name} {code(item.intent_id, 60)} · {status_label(item.status)}"
    head += f" · {item.ticket}" if item.ticket else ""
    head += f" · {mention(item.owner)}" if item.owner else ""
    return section(f"{head} · for {duration(item.age_seconds)}\n{clipped(item.reason, 1500) or '_no reason recorded_'}")


def render_digest(digest: Digest) -> tuple[str, list[dict[str, Any]]]:
    """The digest message: what needs a human first, with its owner; what is about to expire; then what is open
    and what ended in the period. A quiet day is one line (and the audit head)."""
    title = clean(digest.title or digest.period, 120)
    since = f"since {clean(digest.since, 60)}" if digest.since else "in this period"
    open_now, ended = _counts(digest, final=False), _counts(digest, final=True)
    waiting = len(digest.attention) + max(digest.more, 0)
    if not waiting and not digest.expiring:
        summary = "; ".join(
            part
            for part in (
                f"open: {_in_words(open_now)}" if open_now else "",
                f"ended {since}: {_in_words(ended)}" if ended else "",
            )
            if part
        )
        line = f":sparkles: *Ops digest · {title}*: nothing needs attention" + (f" ({summary})" if summary else "")
        blocks: list[Block] = [section(line)]
        blocks.extend(_audit(digest))
        return fallback(f"Ops digest · {title}: nothing needs attention"), fit_blocks(blocks, MESSAGE_BLOCKS)
    blocks = [
        header(f"Ops digest · {title}"),
        context(
            [
                f"{channel_link(digest.channel)} · {waiting} need attention"
                + (f" · {len(digest.expiring)} about to expire" if digest.expiring else "")
            ]
        ),
    ]
    if waiting:
        shown = digest.attention[:MAX_ITEMS]
        blocks.append(section(f"*Needs attention ({waiting})*"))
        blocks.extend(_item(item) for item in shown)
        if waiting > len(shown):
            blocks.append(context([f"_…and {waiting - len(shown)} more; `opsbot intents list` shows them all_"]))
    if digest.expiring:
        blocks.append(section(f"*About to expire ({len(digest.expiring)})*: approve or deny them, or let them go"))
        blocks.extend(_item(item) for item in digest.expiring[:EXPIRING_ITEMS])
    blocks.append(divider())
    blocks.append(section("*Open now*\n" + (_count_lines(open_now) or "_nothing open_")))
    blocks.append(section(f"*Ended {since}*\n" + (_count_lines(ended) or "_nothing ended_")))
    blocks.extend(_audit(digest))
    text = f"Ops digest · {title}: {waiting} need attention"
    text += f", {len(digest.expiring)} about to expire" if digest.expiring else ""
    return fallback(text), fit_blocks(blocks, MESSAGE_BLOCKS)


def _audit(digest: Digest) -> list[Block]:
    if not digest.audit_head:
        return []
    return [
        context(
            [
                f"Audit chain head {code(digest.audit_head, 100)}: check the log against it with "
                f"`opsbot audit verify --anchor {clean(digest.audit_head, 90)}`"
            ]
        )
    ]
