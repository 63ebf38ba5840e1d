"""One contract for the intent store, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from store.sql import CHECK_HOLD, SqlStore
from workflows.errors import ConcurrentModification, LeaseLost
from workflows.model import (
    Approval,
    Decision,
    EventDraft,
    EventKind,
    IntentId,
    IntentStatus,
    Lease,
    Move,
    NewIntent,
    StepRecord,
    StepStatus,
)
from workflows.runtime import FrozenClock


def new_intent(clock: FrozenClock, n: int = 1, key: str | None = None) -> NewIntent:
    return NewIntent(
        IntentId(f"intent-{n}"),
        "rds.create-replica",
        "prod",
        {"replica": f"r{n}"},
        "alice",
        key or f"key-{n}",
        {"fingerprint": "f"},
        "a" * 64,
        clock.now(),
    )


def test_idempotency_key_is_unique(store: SqlStore, clock: FrozenClock) -> None:
    """A second intent with the same key is not inserted; the first stays."""
    with store.transaction() as tx:
        assert tx.insert_intent(new_intent(clock, 1, key="k")) is not None
        assert tx.insert_intent(new_intent(clock, 2, key="k")) is None
        assert tx.get_intent_by_key("k").id == "intent-1"  # type: ignore[union-attr]


def test_status_change_is_compare_and_set(store: SqlStore, clock: FrozenClock) -> None:
    """Two writers holding the same version: the second loses with ConcurrentModification."""
    with store.transaction() as tx:
        intent = tx.insert_intent(new_intent(clock))
    assert intent is not None
    with store.transaction() as tx:
        moved = tx.move(intent, Move(IntentStatus.APPROVED, "approved"), clock.now())
    assert moved.version == intent.version + 1
    with pytest.raises(ConcurrentModification), store.transaction() as tx:
        tx.move(intent, Move(IntentStatus.CANCELLED, "cancelled"), clock.now())
    with store.transaction() as tx:
        assert tx.get_intent(intent.id).status is IntentStatus.APPROVED  # type: ignore[union-attr]


def test_claim_takes_only_approved_intents_once(store: SqlStore, clock: FrozenClock) -> None:
    """An approved intent is claimed by one executor; a second claim finds nothing."""
    with store.transaction() as tx:
        a = tx.insert_intent(new_intent(clock, 1))
        tx.insert_intent(new_intent(clock, 2))
        assert a is not None
        tx.move(a, Move(IntentStatus.APPROVED, "approved"), clock.now())
    until = clock.now() + timedelta(seconds=30)
    with store.transaction() as tx:
        [runnable] = tx.runnable(clock.now(), 10)
        claimed = tx.start_run(runnable, Lease(runnable.id, "one", "tok1", until), clock.now())
    with store.transaction() as tx:
        assert tx.runnable(clock.now(), 10) == []
    assert claimed.id == "intent-1" and claimed.status is IntentStatus.RUNNING and claimed.lease_owner == "one"


def test_lease_fences_writes_of_a_former_owner(store: SqlStore, clock: FrozenClock) -> None:
    """Renewing with a token that is no longer the intent's raises LeaseLost."""
    with store.transaction() as tx:
        a = tx.insert_intent(new_intent(clock))
        assert a is not None
        approved = tx.move(a, Move(IntentStatus.APPROVED, "approved"), clock.now())
    until = clock.now() + timedelta(seconds=30)
    with store.transaction() as tx:
        claimed = tx.start_run(approved, Lease(approved.id, "one", "tok1", until), clock.now())
    with store.transaction() as tx:
        tx.renew_lease(Lease(claimed.id, "one", "tok1", until), until + timedelta(seconds=30))
    with pytest.raises(LeaseLost), store.transaction() as tx:
        tx.renew_lease(Lease(claimed.id, "zombie", "old-token", until), until)


def test_step_checkpoint_is_unique_per_intent_and_sequence(store: SqlStore, clock: FrozenClock) -> None:
    """A second "started" record for the same step number is rejected by the store."""
    with store.transaction() as tx:
        tx.insert_intent(new_intent(clock))
    rec = StepRecord(IntentId("intent-1"), 1, "create_replica", StepStatus.STARTED, "tok", 1, clock.now())
    with store.transaction() as tx:
        tx.insert_step(rec)
    with pytest.raises(IntegrityError), store.transaction() as tx:
        tx.insert_step(rec)
    with store.transaction() as tx:
        tx.update_step(
            rec.intent_id, 1, status=StepStatus.SUCCEEDED, external_ids={"replica_id": "r1"}, finished_at=clock.now()
        )
        [stored] = tx.steps(rec.intent_id)
    assert stored.status is StepStatus.SUCCEEDED and stored.external_ids == {"replica_id": "r1"}
    assert stored.started_at == clock.now()


def test_repeated_approval_is_one_row_and_refreshes_its_expiry(store: SqlStore, clock: FrozenClock) -> None:
    """The same approver approving the same plan again leaves one row, valid from the latest approval."""
    with store.transaction() as tx:
        tx.insert_intent(new_intent(clock))
    approval = Approval(
        IntentId("intent-1"), "bob", "a" * 64, Decision.APPROVE, clock.now(), clock.now() + timedelta(hours=1)
    )
    later = Approval(
        IntentId("intent-1"),
        "bob",
        "a" * 64,
        Decision.APPROVE,
        clock.now() + timedelta(hours=2),
        clock.now() + timedelta(hours=3),
    )
    with store.transaction() as tx:
        tx.add_approval(approval)
        tx.add_approval(later)
        [stored] = tx.approvals(IntentId("intent-1"))
    assert stored.expires_at == later.expires_at


def test_locks_are_taken_all_or_none_and_freed_for_their_waiters(store: SqlStore, clock: FrozenClock) -> None:
    """A holder of one of two wanted resources blocks the whole set; its release names who waited."""
    with store.transaction() as tx:
        for n in (1, 2):
            tx.insert_intent(new_intent(clock, n))
        assert tx.acquire_locks(IntentId("intent-1"), ["rds:b", "rds:a"], clock.now()) is None
        assert tx.acquire_locks(IntentId("intent-1"), ["rds:a"], clock.now()) is None  # ours already
        holder = tx.acquire_locks(IntentId("intent-2"), ["rds:c", "rds:b"], clock.now())
        assert holder is not None and (holder.resource, holder.intent_id) == ("rds:b", "intent-1")
        assert [h.resource for h in tx.lock_holders(["rds:a", "rds:b", "rds:c"])] == ["rds:a", "rds:b"]
        tx.wait_for(IntentId("intent-2"), ["rds:b", "rds:c"], clock.now())
        assert [w.intent_id for w in tx.lock_waiters(["rds:b"])] == ["intent-2"]
        assert tx.release_locks(IntentId("intent-1")) == ["intent-2"]
        assert tx.lock_holders(["rds:a", "rds:b"]) == []
        assert tx.acquire_locks(IntentId("intent-2"), ["rds:c", "rds:b"], clock.now()) is None
        assert tx.lock_waiters(["rds:b", "rds:c"]) == []  # taking the locks ends the wait


def test_due_scan_returns_only_due_intents_in_order(store: SqlStore, clock: FrozenClock) -> None:
    """Intents with no next check, or one in the future, are not returned."""
    with store.transaction() as tx:
        for n, offset in enumerate([None, -10, 5, -20], 1):
            intent = tx.insert_intent(new_intent(clock, n))
            assert intent is not None
            if offset is not None:
                approved = tx.move(intent, Move(IntentStatus.APPROVED, "approved"), clock.now())
                lease = Lease(intent.id, "x", f"t{n}", clock.now() + timedelta(hours=1))
                running = tx.start_run(approved, lease, clock.now())
                due = clock.now() + timedelta(seconds=offset)
                tx.move(running, Move(IntentStatus.CONVERGING, "converging", next_check_at=due), clock.now())
    with store.transaction() as tx:
        assert [i.id for i in tx.due_for_reconcile(clock.now(), 10)] == ["intent-4", "intent-2"]
    with store.transaction() as tx:  # taken by that pass: another reconciler's pass skips them
        assert tx.due_for_reconcile(clock.now(), 10) == []
    clock.advance(CHECK_HOLD.total_seconds() + 1)
    with store.transaction() as tx:  # a pass that died leaves them due again after the hold
        again = [i.id for i in tx.due_for_reconcile(clock.now(), 10)]
    assert again[0] == "intent-3"  # due at +5 s, before the held two
    assert sorted(again[1:]) == ["intent-2", "intent-4"]


def test_due_scan_uses_the_partial_index(store: SqlStore, clock: FrozenClock) -> None:
    """The due query is answered from ix_intents_due, so its cost follows the due rows, not the table."""
    with store.transaction() as tx:
        for n in range(300):
            tx.insert_intent(new_intent(clock, n))
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE intents")
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " ".join(
                r[0]
                for r in conn.exec_driver_sql(
                    "EXPLAIN SELECT * FROM intents WHERE next_check_at IS NOT NULL AND next_check_at <= now() "
                    "ORDER BY next_check_at LIMIT 200"
                )
            )
        else:
            plan = " ".join(
                str(r[-1])
                for r in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT * FROM intents WHERE next_check_at IS NOT NULL "
                    "AND next_check_at <= '2030-01-01' ORDER BY next_check_at LIMIT 200"
                )
            )
    assert "ix_intents_due" in plan, plan


def test_audit_chain_verifies_and_detects_edits_and_deletions(store: SqlStore, clock: FrozenClock) -> None:
    """An intact chain verifies; an edited row and a deleted row are each reported."""
    with store.transaction() as tx:
        for n in range(4):
            tx.append_event(EventDraft(EventKind.REQUESTED, "alice", {"n": n}), clock.now())
    report = store.verify_audit()
    assert report.ok and report.checked == 4
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    edited = store.verify_audit()
    assert not edited.ok and any("event 2" in p and "edited" in p for p in edited.problems)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET actor = 'alice' WHERE seq = 2"))
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq = 3"))
    deleted = store.verify_audit()
    assert not deleted.ok and any("missing" in p for p in deleted.problems)


def test_audit_anchor_detects_a_truncated_tail(store: SqlStore, clock: FrozenClock) -> None:
    """Deleting the newest events leaves an intact but shorter chain; the recorded head catches it."""
    with store.transaction() as tx:
        for n in range(3):
            tx.append_event(EventDraft(EventKind.REQUESTED, "alice", {"n": n}), clock.now())
    anchor = store.verify_audit().head
    assert anchor.startswith("3:") and store.verify_audit(anchor).ok
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq = 3"))
    assert store.verify_audit().ok  # the chain alone cannot tell
    truncated = store.verify_audit(anchor)
    assert not truncated.ok and any("newest events were deleted" in p for p in truncated.problems)


def test_audit_data_is_redacted_before_it_is_stored(store: SqlStore, clock: FrozenClock) -> None:
    """A DSN password in event data never reaches the table."""
    with store.transaction() as tx:
        tx.append_event(
            EventDraft(
                EventKind.REQUESTED,
                "alice",
                {"dsn": "postgresql://u:CANARY-9f2@db/x", "url": "postgresql://u:CANARY-9f2@db/x"},
            ),
            clock.now(),
        )
    with store.engine.connect() as conn:
        raw = " ".join(str(v) for row in conn.execute(sa.text("SELECT * FROM audit_events")) for v in row)
    assert "CANARY-9f2" not in raw
    assert store.verify_audit().ok
