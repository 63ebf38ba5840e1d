"""The App Home tab: what waits for the viewer's approval, and the viewer's recent operations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.blocks.buttons import plan_risk, review_buttons
from bot.blocks.kit import Block, actions, context, divider, header, home, section
from bot.blocks.status import status_badge
from bot.blocks.text import clipped, code, duration, elapsed, mention, slack_date
from bot.blocks.words import changes, summary
from bot.ids import COMMAND
from workflows.model import Intent

MAX_PENDING = 25  # three blocks each
MAX_RECENT = 15  # one block each


def _unique(intents: Sequence[Intent]) -> list[Intent]:
    seen: set[str] = set()
    out = []
    for intent in intents:
        if intent.id not in seen:
            seen.add(intent.id)
            out.append(intent)
    return out


def _pending(intent: Intent, now: datetime) -> list[Block]:
    """The change in plain words first, then where and whose; approving goes through the whole plan (a modal)."""
    risk = plan_risk(intent.plan)
    head = (
        f"{clipped(summary(changes(intent.plan), intent.workflow), 600)}\n"
        f"*{clipped(intent.workflow, 200)}* in {code(intent.environment, 60)} · risk {risk.value} · "
        f"plan {code(intent.plan_hash[:12])}\n"
        f"Requested by {mention(intent.requester)} {duration(elapsed(intent.created_at, now))} ago"
    )
    reason = clipped(intent.status_reason, 600) if intent.status_reason else status_badge(intent.status)
    return [
        section(head),
        context([reason, f"Intent {code(intent.id, 60)}"]),
        actions(review_buttons(intent), block_id=f"approve:{intent.id}"),
    ]


def _recent(intent: Intent, now: datetime) -> Block:
    reason = f"\n{clipped(intent.status_reason, 400)}" if intent.status_reason else ""
    return section(
        f"{status_badge(intent.status)} · *{clipped(intent.workflow, 200)}* in {code(intent.environment, 60)}"
        f" · {code(intent.id, 60)} · updated {duration(elapsed(intent.updated_at, now))} ago{reason}"
    )


def _more(count: int, what: str) -> list[Block]:
    return [context([f"_…and {count} more {what}; `opsbot intents list` shows them all_"])] if count > 0 else []


def render_home(user: str, pending_approvals: list[Intent], recent: list[Intent], now: datetime) -> dict[str, Any]:
    """The viewer's home tab: approvals waiting on them (Review and approve, Deny) and their recent operations."""
    pending, mine = _unique(pending_approvals), _unique(recent)
    blocks: list[Block] = [
        header("Opsbot"),
        context([f"For {mention(user)} · updated {slack_date(now)}"]),
        section(f"*Waiting for your approval ({len(pending)})*"),
    ]
    if pending:
        for intent in pending[:MAX_PENDING]:
            blocks.extend(_pending(intent, now))
        blocks.extend(_more(len(pending) - MAX_PENDING, "waiting for approval"))
    else:
        blocks.append(context(["Nothing is waiting for your approval."]))
    blocks += [divider(), section("*Your recent operations*")]
    if mine:
        blocks.extend(_recent(intent, now) for intent in mine[:MAX_RECENT])
        blocks.extend(_more(len(mine) - MAX_RECENT, "operations"))
    else:
        blocks.append(context([f"You have not requested anything yet. Try `{COMMAND}`."]))
    return home(blocks)
