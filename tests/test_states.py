"""The one state table: every transition it allows is possible, every other one is refused by the store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from store.sql import SqlStore
from workflows.errors import IllegalTransition
from workflows.model import IntentId, IntentStatus, Lease, Move, NewIntent
from workflows.runtime import FrozenClock
from workflows.states import AWAITING_APPROVAL, STATES, Action, allowed

S = IntentStatus


def _paths() -> dict[IntentStatus, list[IntentStatus]]:
    """For every status, a shortest path of allowed transitions from a new intent to it."""
    paths = {S.PENDING_APPROVAL: [S.PENDING_APPROVAL]}
    frontier = [S.PENDING_APPROVAL]
    while frontier:
        current = frontier.pop(0)
        for nxt in sorted(STATES[current].next):
            if nxt not in paths:
                paths[nxt] = [*paths[current], nxt]
                frontier.append(nxt)
    return paths


def test_every_status_has_a_row_and_a_meaning() -> None:
    """The table covers every status, each with a one-sentence meaning and only known targets."""
    assert set(STATES) == set(IntentStatus)
    for status, row in STATES.items():
        assert row.status is status and row.meaning and row.next <= set(IntentStatus)


def test_every_status_is_reachable_from_a_new_intent_and_can_end() -> None:
    """No status is an island: each is reachable from pending approval, and each non-final one can end."""
    paths = _paths()
    assert set(paths) == set(IntentStatus)
    for status in IntentStatus:
        if STATES[status].terminal:
            continue
        seen, todo = {status}, [status]
        while todo:
            for nxt in STATES[todo.pop()].next:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert any(STATES[s].terminal for s in seen), status


def test_terminal_and_human_states_are_consistent() -> None:
    """A final status needs no human; a status needing a human offers something to do; running offers nothing."""
    for status, row in STATES.items():
        assert not (row.terminal and row.needs_human), status
        if row.needs_human:
            assert row.actions, status
    assert STATES[S.RUNNING].actions == ()
    assert all(Action.APPROVE in STATES[s].actions for s in AWAITING_APPROVAL)


def _walk_to(store: SqlStore, clock: FrozenClock, target: IntentStatus, n: int) -> object:
    """An intent moved along allowed transitions (through the store) until it is in `target`."""
    with store.transaction() as tx:
        intent = tx.insert_intent(
            NewIntent(IntentId(f"i{n}"), "rds.create-replica", "prod", {}, "alice", f"k{n}", {}, "a" * 64, clock.now())
        )
        assert intent is not None
        for nxt in _paths()[target][1:]:
            if nxt is S.RUNNING:
                lease = Lease(intent.id, "exec", f"tok{n}", clock.now() + timedelta(seconds=30))
                intent = tx.start_run(intent, lease, clock.now())
            else:
                intent = tx.move(intent, Move(nxt, f"walk to {target.value}"), clock.now())
    return intent


def test_the_store_allows_every_transition_in_the_table_and_refuses_every_other(
    store: SqlStore, clock: FrozenClock
) -> None:
    """All |status|² pairs: the store moves an intent exactly where the table allows, and nowhere else."""
    n = 0
    for source in IntentStatus:
        for target in IntentStatus:
            n += 1
            intent = _walk_to(store, clock, source, n)
            with store.transaction() as tx:
                current = tx.get_intent(IntentId(f"i{n}"))
                assert current is not None and current.status is source and intent is not None
                if allowed(source, target):
                    moved = tx.move(current, Move(target, "allowed"), clock.now())
                    assert moved.status is target and moved.version == current.version + 1
                else:
                    with pytest.raises(IllegalTransition, match=f"from {source.value} to {target.value}"):
                        tx.move(current, Move(target, "not allowed"), clock.now())
    with store.transaction() as tx:
        assert len(tx.list_intents(limit=1000)) == len(IntentStatus) ** 2


def test_leaving_running_always_drops_the_lease(store: SqlStore, clock: FrozenClock) -> None:
    """One place releases a lease: any move out of running clears owner, token and expiry."""
    intent = _walk_to(store, clock, S.RUNNING, 1)
    with store.transaction() as tx:
        current = tx.get_intent(IntentId("i1"))
        assert current is not None and current.lease_token == "tok1" and intent is not None
        moved = tx.move(current, Move(S.FAILED, "boom"), clock.now())
    assert (moved.lease_owner, moved.lease_token, moved.lease_expires_at) == (None, None, None)
    assert moved.last_error == "boom"
