"""What the periodic passes read: the digest's open and recently ended intents and its page of what needs a human,
and the projection's sweep page; each from an index that holds what is open, not the whole history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from store import tables as t
from store.slack import SlackStore
from store.sql import SqlStore, SqlTx
from workflows.model import Intent, IntentId, IntentStatus, Lease, Move, NewIntent
from workflows.runtime import FrozenClock
from workflows.states import AWAITING_APPROVAL

S = IntentStatus


def requested(tx: SqlTx, clock: FrozenClock, n: int, workflow: str = "rds.create-replica") -> Intent:
    new = NewIntent(
        IntentId(f"intent-{n}"), workflow, "prod", {"n": n}, "alice", f"key-{n}", {"locks": []}, "a" * 64, clock.now()
    )
    intent = tx.insert_intent(new)
    assert intent is not None
    return intent


def running(tx: SqlTx, clock: FrozenClock, intent: Intent) -> Intent:
    approved = tx.move(intent, Move(S.APPROVED, "approved"), clock.now())
    lease = Lease(intent.id, "x", f"t-{intent.id}", clock.now() + timedelta(hours=1))
    return tx.start_run(approved, lease, clock.now())


def test_counts_are_the_open_intents_and_those_ended_in_the_period(store: SqlStore, clock: FrozenClock) -> None:
    """Open intents are counted whatever their age; final ones only if they ended since the period began."""
    with store.transaction() as tx:
        old_pending, ended_before = requested(tx, clock, 1), requested(tx, clock, 2)
        tx.move(ended_before, Move(S.CANCELLED, "cancelled"), clock.now())
        clock.advance(3600)
        since = clock.now()
        tx.move(requested(tx, clock, 3), Move(S.DENIED, "denied"), clock.now())
        tx.move(requested(tx, clock, 4), Move(S.CANCELLED, "cancelled"), clock.now())
        running(tx, clock, requested(tx, clock, 5))
        assert old_pending.status is S.PENDING_APPROVAL
    with store.transaction() as tx:
        counts = tx.count_by_status(ended_since=since)
    assert counts == {S.PENDING_APPROVAL: 1, S.RUNNING: 1, S.DENIED: 1, S.CANCELLED: 1}


def test_attention_lists_what_needs_a_human_longest_waiting_first(store: SqlStore, clock: FrozenClock) -> None:
    """Failed, stale approvals and converging past their window are listed oldest first; the rest are not."""
    with store.transaction() as tx:
        failed = tx.move(running(tx, clock, requested(tx, clock, 1)), Move(S.FAILED, "broke"), clock.now())
        clock.advance(60)
        stale = requested(tx, clock, 2)
        clock.advance(60)
        overdue = tx.move(running(tx, clock, requested(tx, clock, 3)), Move(S.CONVERGING, "slow"), clock.now())
        clock.advance(3600)
        tx.move(running(tx, clock, requested(tx, clock, 4)), Move(S.CONVERGING, "in its window"), clock.now())
        unnamed = running(tx, clock, requested(tx, clock, 5, workflow="gone.from-the-catalog"))
        unnamed = tx.move(unnamed, Move(S.CONVERGING, "of a workflow no longer known"), clock.now())
        requested(tx, clock, 6)  # a fresh approval: not a problem yet
        tx.move(requested(tx, clock, 7), Move(S.CANCELLED, "cancelled"), clock.now())
    cutoff = clock.now() - timedelta(minutes=30)
    with store.transaction() as tx:
        shown, total = tx.needing_attention(cutoff, {"rds.create-replica": cutoff}, limit=10)
    assert [i.id for i in shown] == [failed.id, stale.id, overdue.id, unnamed.id]
    assert total == 4


def test_attention_counts_beyond_the_page_and_old_ones_come_first(store: SqlStore, clock: FrozenClock) -> None:
    """With a small page, the longest waiting are shown even behind many newer intents, and all are counted."""
    with store.transaction() as tx:
        oldest = requested(tx, clock, 0)
        for n in range(1, 40):
            clock.advance(60)
            requested(tx, clock, n)
        clock.advance(3600)
        for n in range(40, 80):
            requested(tx, clock, n)  # fresh, and newer than every stale one
    with store.transaction() as tx:
        shown, total = tx.needing_attention(clock.now() - timedelta(minutes=30), {}, limit=5)
    assert shown[0].id == oldest.id and len(shown) == 5
    assert total == 40


def test_the_sweep_page_is_read_from_the_unsettled_index(store: SqlStore, clock: FrozenClock) -> None:
    """The sweep's query is answered from ix_threads_unsettled, so a page costs a page, not the settled threads."""
    with store.transaction() as tx:
        for n in range(300):
            requested(tx, clock, n)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(t.slack_threads),
            [
                {"intent_id": f"intent-{n}", "channel": "C1", "settled": n % 100 != 0, "created_at": clock.now()}
                for n in range(300)
            ],
        )
    issued: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        issued.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    try:
        page = SlackStore(store.engine).unsettled(limit=25)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", capture)
    assert [thread.intent_id for thread in page] == ["intent-0", "intent-100", "intent-200"]
    [(statement, parameters)] = [(s, p) for s, p in issued if s.lstrip().startswith("SELECT")]
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE slack_threads")
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a table this small would be read whole
            plan = " ".join(str(r[0]) for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
        else:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
    assert "ix_threads_unsettled" in plan, plan


def test_the_expiry_scan_reads_ranges_of_the_status_and_age_index(store: SqlStore, clock: FrozenClock) -> None:
    """Requests past their time are found from ix_intents_status_updated, oldest first, each status a range."""
    with store.transaction() as tx:
        for n in range(300):
            requested(tx, clock, n)
            clock.advance(60)
        done = running(tx, clock, requested(tx, clock, 999))
        tx.move(done, Move(S.SUCCEEDED, "done"), clock.now())
    cutoff = clock.now() - timedelta(minutes=290)  # the first ten or so are past their time
    issued: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        issued.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    try:
        with store.transaction() as tx:
            due = tx.undecided_requests({("rds.create-replica", "prod"): cutoff, ("other", "prod"): clock.now()}, 5)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", capture)
    assert [i.id for i in due] == [f"intent-{n}" for n in range(5)]  # oldest first, at most the limit
    selects = [(s, p) for s, p in issued if s.lstrip().startswith("SELECT")]
    assert len(selects) == len(AWAITING_APPROVAL)  # one range per awaiting status
    for statement, parameters in selects:
        with store.engine.begin() as conn:
            if store.engine.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE intents")
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                plan = " ".join(str(r[0]) for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
            else:
                plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
        assert "ix_intents_status_updated" in plan, plan
