"""Every status change goes through `transition`: the store checks it against the state table, the audit log
records it, and an intent that is over frees the resources it held, waking whoever waited for them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflows.model import EventDraft, EventKind, Intent, IntentId, IntentStatus, LockHolder, Move
from workflows.ports import CHANGED, RUNNABLE, StoreTx


def transition(
    tx: StoreTx,
    intent: Intent,
    move: Move,
    kind: EventKind | None,
    actor: str,
    now: datetime,
    data: dict[str, Any] | None = None,
    *,
    release_locks: bool = False,
    taking_over: bool = False,
) -> Intent:
    """Move `intent` and audit it in the caller's transaction; ConcurrentModification if it moved meanwhile.

    Locks are released when the intent becomes terminal, or with `release_locks` (it stops before any step ran).
    """
    moved = tx.take_over(intent, move, now) if taking_over else tx.move(intent, move, now)
    tx.notify(CHANGED, intent.id)
    if move.to is IntentStatus.APPROVED:
        tx.notify(RUNNABLE)
    if kind is not None:  # None: a routine re-check whose new reason is not worth an audit event
        record = {"from": intent.status.value, "to": move.to.value, "reason": move.reason, **(data or {})}
        tx.append_event(EventDraft(kind, actor, record, intent.id), now)
    if (move.to.terminal or release_locks) and intent.plan.get("locks"):  # a plan without locks takes none
        free_resources(tx, intent.id, actor, now)
    return moved


def free_resources(tx: StoreTx, intent_id: IntentId, actor: str, now: datetime) -> None:
    """Release what `intent_id` holds; each intent that waited for it is approved to start again at once."""
    for waiter_id in tx.release_locks(intent_id):
        waiter = tx.get_intent(waiter_id)
        if waiter is None or waiter.status is not IntentStatus.WAITING:
            continue
        move = Move(IntentStatus.APPROVED, f"intent {intent_id} released the resources it was waiting for")
        transition(tx, waiter, move, EventKind.LOCK_RELEASED, actor, now, {"released_by": intent_id})


def waiting_reason(holder: LockHolder) -> str:
    """`waiting for rds:billing-db, held by intent 7f3a… (rds.resize, requested by @alice, running)`."""
    return (
        f"waiting for {holder.resource}, held by intent {holder.intent_id} "
        f"({holder.workflow}, requested by @{holder.requester}, {holder.status.value})"
    )
