"""The intent store on SQLAlchemy Core: one implementation for SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, overload

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.compiler import SQLCompiler

from store import tables as t
from store.audit import GENESIS, chain_hash
from store.signals import Signals
from workflows.errors import ConcurrentModification, LeaseLost, StoreUnavailable
from workflows.model import (
    Approval,
    AuditEvent,
    AuditReport,
    Decision,
    EventDraft,
    Intent,
    IntentId,
    IntentStatus,
    Lease,
    LockHolder,
    Mode,
    Move,
    NewIntent,
    StepDone,
    StepRecord,
    StepStatus,
)
from workflows.plan import canonical_json
from workflows.redaction import redact, redact_text
from workflows.states import AWAITING_APPROVAL, check_transition
from workflows.telemetry import TRANSITIONS

CHECK_HOLD = timedelta(seconds=60)  # how long a reconciler's pass holds the checks it took
_AUDIT_LOCK_KEY = 0x0B5B07  # advisory lock that serialises appends to the audit hash chain
_OPEN = [s.value for s in IntentStatus if not s.terminal]
_FINAL = [s.value for s in IntentStatus if s.terminal]
# Whatever their age: a human is needed, or the intent waits for a resource another intent holds.
_ALWAYS_ATTENTION = [s for s in IntentStatus if s.needs_human] + [IntentStatus.WAITING]


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """Timestamps read back as aware UTC, whatever the driver returns (SQLite: naive; PostgreSQL: session zone)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _intent(row: sa.Row[Any]) -> Intent:
    m = row._mapping
    return Intent(
        id=IntentId(m["id"]),
        workflow=m["workflow"],
        environment=m["environment"],
        params=m["params"],
        requester=m["requester"],
        idempotency_key=m["idempotency_key"],
        plan=m["plan"],
        plan_hash=m["plan_hash"],
        status=IntentStatus(m["status"]),
        version=m["version"],
        mode=Mode(m["mode"]),
        attempts=m["attempts"],
        created_at=as_utc(m["created_at"]),
        updated_at=as_utc(m["updated_at"]),
        lease_owner=m["lease_owner"],
        lease_token=m["lease_token"],
        lease_expires_at=as_utc(m["lease_expires_at"]),
        next_check_at=as_utc(m["next_check_at"]),
        status_reason=m["status_reason"],
        last_error=m["last_error"],
        started_at=as_utc(m["started_at"]),
        reauthorize=bool(m["reauthorize"]),
        traceparent=m["traceparent"],
        not_before=as_utc(m["not_before"]),
        windows_waived=bool(m["windows_waived"]),
    )


_INTENT_FIELDS = frozenset(f.name for f in fields(Intent))


def _step(row: sa.Row[Any]) -> StepRecord:
    m = row._mapping
    return StepRecord(
        intent_id=IntentId(m["intent_id"]),
        seq=m["seq"],
        name=m["name"],
        status=StepStatus(m["status"]),
        idempotency_token=m["idempotency_token"],
        attempts=m["attempts"],
        started_at=as_utc(m["started_at"]),
        external_ids=m["external_ids"] or {},
        output=m["output"] or {},
        error=m["error"],
        finished_at=as_utc(m["finished_at"]),
    )


def _event(row: sa.Row[Any]) -> AuditEvent:
    m = row._mapping
    return AuditEvent(
        seq=m["seq"],
        intent_id=IntentId(m["intent_id"]) if m["intent_id"] else None,
        kind=m["kind"],
        actor=m["actor"],
        data=json.loads(m["data"]),
        created_at=as_utc(m["created_at"]),
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )


def _held() -> sa.ColumnElement[bool]:
    """True while the intent runs under the lease in :lease_intent/:lease_token: the fence on executor writes."""
    return sa.exists().where(
        t.intents.c.id == sa.bindparam("lease_intent"),
        t.intents.c.lease_token == sa.bindparam("lease_token"),
        t.intents.c.status == IntentStatus.RUNNING.value,
    )


_STEP_COLUMNS = (
    "intent_id",
    "seq",
    "name",
    "status",
    "idempotency_token",
    "external_ids",
    "output",
    "error",
    "attempts",
    "started_at",
    "finished_at",
)
# Built once: the hot path binds values into these instead of building expressions per step.
_FENCED_START = sa.insert(t.steps).from_select(
    list(_STEP_COLUMNS),
    sa.select(*[sa.bindparam(f"v_{c}", type_=t.steps.c[c].type) for c in _STEP_COLUMNS]).where(_held()),
)
_DONE = ("status", "output", "external_ids", "finished_at")
_DONE_CTE = (
    sa.update(t.steps)
    .where(t.steps.c.intent_id == sa.bindparam("lease_intent"), t.steps.c.seq == sa.bindparam("done_seq"), _held())
    .values({c: sa.bindparam(f"d_{c}", type_=t.steps.c[c].type) for c in _DONE})
    .returning(t.steps.c.seq)
    .cte("done")
)
# PostgreSQL: the previous step's success and the next step's start in one statement (one round trip, one
# commit); the start is inserted only if the success was recorded, both only under the lease.
_FENCED_DONE_THEN_START = (
    sa.insert(t.steps)
    .from_select(
        list(_STEP_COLUMNS),
        sa.select(*[sa.bindparam(f"v_{c}", type_=t.steps.c[c].type) for c in _STEP_COLUMNS]).where(
            _held(), sa.exists(sa.select(_DONE_CTE.c.seq))
        ),
    )
    .add_cte(_DONE_CTE)
)
_FENCED_OUTCOME = {
    frozenset(cols): sa.update(t.steps)
    .where(t.steps.c.intent_id == sa.bindparam("lease_intent"), t.steps.c.seq == sa.bindparam("step_seq"), _held())
    .values({c: sa.bindparam(f"v_{c}", type_=t.steps.c[c].type) for c in cols})
    for cols in (("status", "output", "external_ids", "finished_at"), ("external_ids",))
}


class _Prepared:
    """A statement compiled once per dialect and run straight on the driver's cursor: the hot path's two writes."""

    def __init__(self, stmt: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self.order = compiled.positiontup
        self.defaults = {name: bind.value for name, bind in compiled.binds.items()}
        self.processors = {
            name: proc
            for name, bind in compiled.binds.items()
            if (proc := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }

    def run(self, conn: sa.Connection, values: dict[str, Any]) -> int:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            return self.execute(cursor, values)
        finally:
            cursor.close()

    def execute(self, cursor: Any, values: dict[str, Any]) -> int:
        merged = {**self.defaults, **values}
        for name, proc in self.processors.items():
            merged[name] = proc(merged[name])
        args: Any = tuple(merged[n] for n in self.order) if self.order else merged
        cursor.execute(self.sql, args)
        return int(cursor.rowcount)


def _fenced_together(conn: sa.Connection, writes: list[tuple[_Prepared, dict[str, Any]]]) -> bool:
    """Several fenced writes in one transaction on the autocommit connection: one commit (one fsync) for all.
    False, with nothing written, when any of them found the lease gone."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("BEGIN IMMEDIATE" if conn.dialect.name == "sqlite" else "BEGIN")
        try:
            held = all(prepared.execute(cursor, values) == 1 for prepared, values in writes)
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT" if held else "ROLLBACK")
        return held
    finally:
        cursor.close()


def _reason(exc: BaseException) -> str:
    """The driver's first line, without credentials (a DSN may be in it). When SQLite rolled a transaction back
    itself (disk full), the savepoint error that follows hides the cause: the cause is what is reported."""
    causes: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(causes) < 10:
        causes.append(seen)
        seen = seen.__cause__ or seen.__context__
    chosen = next((c for c in reversed(causes) if isinstance(c, sa.exc.OperationalError)), exc)
    original = getattr(chosen, "orig", None) or chosen
    text = str(original).strip()
    return redact_text(text.splitlines()[0] if text else type(original).__name__)


def _lease_params(lease: Lease) -> dict[str, Any]:
    return {"lease_intent": lease.intent_id, "lease_token": lease.token}


def _lost(lease: Lease) -> LeaseLost:
    return LeaseLost(f"lease on intent {lease.intent_id} is no longer held by {lease.owner}")


def _step_values(
    status: StepStatus | None = None,
    external_ids: dict[str, Any] | None = None,
    output: dict[str, Any] | None = None,
    error: str | None = None,
    attempts: int | None = None,
    finished_at: datetime | None = None,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if status is not None:
        values["status"] = status.value
    if external_ids is not None:
        values["external_ids"] = redact(external_ids)
    if output is not None:
        values["output"] = redact(output)
    if error is not None:
        values["error"] = redact(error)
    if attempts is not None:
        values["attempts"] = attempts
    if finished_at is not None:
        values["finished_at"] = finished_at
    return values


class SqlTx:
    """One transaction; the `SqlStore.transaction` context manager commits it or rolls it back."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn
        self._pg = conn.dialect.name == "postgresql"
        self.raised: dict[tuple[str, str], None] = {}  # signals to publish here once committed, in order
        self._events: list[tuple[EventDraft, datetime]] = []  # appended to the chain just before the commit
        self.moves: list[tuple[str, str, str]] = []  # (workflow, from, to): counted once committed

    def notify(self, channel: str, payload: str = "") -> None:
        """On PostgreSQL a NOTIFY (delivered to other processes at commit); here, published after the commit."""
        if (channel, payload) in self.raised:
            return
        self.raised[(channel, payload)] = None
        if self._pg:
            self._c.execute(sa.text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})

    # intents -----------------------------------------------------------------------------------
    def insert_intent(self, new: NewIntent) -> Intent | None:
        """Insert a new intent; None when its idempotency key is taken (the caller then reads that one)."""
        values = {
            "id": new.id,
            "workflow": new.workflow,
            "environment": new.environment,
            "params": new.params,
            "requester": new.requester,
            "idempotency_key": new.idempotency_key,
            "plan": new.plan,
            "plan_hash": new.plan_hash,
            "status": IntentStatus.PENDING_APPROVAL.value,
            "version": 1,
            "mode": Mode.FORWARD.value,
            "attempts": 0,
            "created_at": new.created_at,
            "updated_at": new.created_at,
            "traceparent": new.traceparent,
            "not_before": new.not_before,
        }
        try:
            with self._c.begin_nested():
                self._c.execute(sa.insert(t.intents).values(values))
        except IntegrityError:
            return None
        return self.get_intent(new.id)

    def get_intent(self, intent_id: IntentId) -> Intent | None:
        row = self._c.execute(sa.select(t.intents).where(t.intents.c.id == intent_id)).first()
        return _intent(row) if row else None

    def get_intent_by_key(self, key: str) -> Intent | None:
        row = self._c.execute(sa.select(t.intents).where(t.intents.c.idempotency_key == key)).first()
        return _intent(row) if row else None

    def list_intents(self, statuses: Iterable[IntentStatus] | None = None, limit: int = 100) -> list[Intent]:
        q = sa.select(t.intents).order_by(t.intents.c.created_at.desc()).limit(limit)
        if statuses is not None:
            q = q.where(t.intents.c.status.in_([s.value for s in statuses]))
        return [_intent(r) for r in self._c.execute(q)]

    def move(self, intent: Intent, move: Move, now: datetime) -> Intent:
        """The one way an intent's status changes: checked against the state table, compare-and-set on version."""
        return self._move(intent, move, now)

    def take_over(self, intent: Intent, move: Move, now: datetime) -> Intent:
        """`move`, only if the intent's lease is unchanged and expired at `now` (its executor died)."""
        # On PostgreSQL a concurrent heartbeat makes this UPDATE wait and then re-check these conditions.
        return self._move(
            intent, move, now, t.intents.c.lease_token == intent.lease_token, t.intents.c.lease_expires_at <= now
        )

    def _move(self, intent: Intent, move: Move, now: datetime, *conditions: sa.ColumnElement[bool]) -> Intent:
        check_transition(intent.status, move.to)
        reason = redact(move.reason)  # operators paste things into reasons
        values: dict[str, Any] = {
            "status": move.to.value,
            "status_reason": reason,
            "next_check_at": move.next_check_at,
            "updated_at": now,
        }
        if move.to is not IntentStatus.RUNNING:
            values.update(lease_owner=None, lease_token=None, lease_expires_at=None)
        if move.to.needs_human or move.to is IntentStatus.RETRYABLE:
            values["last_error"] = reason
        if move.mode is not None:
            values["mode"] = move.mode.value
        if move.new_plan is not None:
            values.update(plan=move.new_plan.plan, plan_hash=move.new_plan.hash)
        if move.count_attempt:
            values["attempts"] = intent.attempts + 1
        if move.fresh_budget:
            values.update(attempts=0, started_at=None)
        if move.reauthorize is not None:
            values["reauthorize"] = move.reauthorize
        if move.windows_waived is not None:
            values["windows_waived"] = move.windows_waived
        return self._cas(intent, values, *conditions)

    def _cas(self, intent: Intent, values: dict[str, Any], *conditions: sa.ColumnElement[bool]) -> Intent:
        result = self._c.execute(
            sa.update(t.intents)
            .where(t.intents.c.id == intent.id, t.intents.c.version == intent.version, *conditions)
            .values(version=intent.version + 1, **values)
        )
        if result.rowcount != 1:
            raise ConcurrentModification(f"intent {intent.id} moved since version {intent.version}")
        if "status" in values:
            self.moves.append((intent.workflow, intent.status.value, values["status"]))
        changed = {k: v for k, v in values.items() if k in _INTENT_FIELDS}
        if "status" in changed:
            changed["status"] = IntentStatus(changed["status"])
        if "mode" in changed:
            changed["mode"] = Mode(changed["mode"])
        return replace(intent, version=intent.version + 1, **changed)

    def retire_idempotency_key(self, intent: Intent) -> None:
        self._c.execute(
            sa.update(t.intents)
            .where(t.intents.c.id == intent.id, t.intents.c.idempotency_key == intent.idempotency_key)
            .values(idempotency_key=f"{intent.idempotency_key}#{intent.id}"[:200])
        )

    def reschedule(self, intent: Intent, next_check_at: datetime | None) -> None:
        result = self._c.execute(
            sa.update(t.intents)
            .where(t.intents.c.id == intent.id, t.intents.c.version == intent.version)
            .values(next_check_at=next_check_at)
        )
        if result.rowcount != 1:
            raise ConcurrentModification(f"intent {intent.id} moved since version {intent.version}")

    def runnable(self, now: datetime, limit: int) -> list[Intent]:
        """Approved intents that are due, locked for this transaction (skipping rows another claimer holds)."""
        q = (
            sa.select(t.intents)
            .where(t.intents.c.status == IntentStatus.APPROVED.value)
            .where(sa.or_(t.intents.c.next_check_at.is_(None), t.intents.c.next_check_at <= now))
            .order_by(t.intents.c.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_intent(r) for r in self._c.execute(q)]

    def start_run(self, intent: Intent, lease: Lease, now: datetime) -> Intent:
        """APPROVED -> RUNNING under `lease`; the budget clock starts at the first run."""
        check_transition(intent.status, IntentStatus.RUNNING)
        return self._cas(
            intent,
            {
                "status": IntentStatus.RUNNING.value,
                "lease_owner": lease.owner,
                "lease_token": lease.token,
                "lease_expires_at": lease.expires_at,
                "next_check_at": lease.expires_at,
                "updated_at": now,
                "started_at": intent.started_at or now,
            },
        )

    def clear_reauthorize(self, lease: Lease) -> None:
        """The run passed its approval gate; a crash from here on continues under that approval."""
        result = self._c.execute(
            sa.update(t.intents)
            .where(t.intents.c.id == lease.intent_id, t.intents.c.lease_token == lease.token)
            .values(reauthorize=False)
        )
        if result.rowcount != 1:
            raise _lost(lease)

    # resource locks ------------------------------------------------------------------------------
    def acquire_locks(self, intent_id: IntentId, resources: Iterable[str], now: datetime) -> LockHolder | None:
        """All of `resources` for `intent_id`, or none: then the holder in the way is returned instead.

        Taken in sorted order inside a savepoint, stopping at the first conflict, so two claimers never deadlock.
        """
        wanted = sorted(set(resources))
        if not wanted:
            return None  # nothing to take, and an intent that locks nothing never waited for anything
        with self._c.begin_nested() as savepoint:
            for resource in wanted:
                inserted = self._c.execute(
                    self._insert(t.resource_locks)
                    .values(resource=resource, intent_id=intent_id, acquired_at=now)
                    .on_conflict_do_nothing(index_elements=["resource"])
                ).rowcount
                if inserted == 1:
                    continue
                holders = self.lock_holders([resource])
                if holders and holders[0].intent_id == intent_id:
                    continue  # ours already: a resumed run
                savepoint.rollback()
                if holders:
                    return holders[0]
                return LockHolder(resource, IntentId("?"), "?", "?", IntentStatus.RUNNING)  # released meanwhile
        self._c.execute(sa.delete(t.resource_waits).where(t.resource_waits.c.intent_id == intent_id))
        return None

    def wait_for(self, intent_id: IntentId, resources: Iterable[str], now: datetime) -> None:
        for resource in sorted(set(resources)):
            self._c.execute(
                self._insert(t.resource_waits)
                .values(resource=resource, intent_id=intent_id, since=now)
                .on_conflict_do_nothing(index_elements=["resource", "intent_id"])
            )

    def release_locks(self, intent_id: IntentId) -> list[IntentId]:
        """Free what `intent_id` holds or waits for; returns the intents that were waiting for what it held."""
        mine = t.resource_locks.c.intent_id == intent_id
        held = [
            r
            for (r,) in self._c.execute(sa.delete(t.resource_locks).where(mine).returning(t.resource_locks.c.resource))
        ]
        self._c.execute(sa.delete(t.resource_waits).where(t.resource_waits.c.intent_id == intent_id))
        if not held:
            return []
        q = (
            sa.select(t.resource_waits.c.intent_id)
            .where(t.resource_waits.c.resource.in_(held))
            .group_by(t.resource_waits.c.intent_id)
            .order_by(sa.func.min(t.resource_waits.c.since))
        )
        return [IntentId(i) for (i,) in self._c.execute(q)]

    def lock_holders(self, resources: Iterable[str]) -> list[LockHolder]:
        return self._lock_rows(t.resource_locks, resources)

    def lock_waiters(self, resources: Iterable[str]) -> list[LockHolder]:
        return self._lock_rows(t.resource_waits, resources)

    def _lock_rows(self, table: sa.Table, resources: Iterable[str]) -> list[LockHolder]:
        wanted = sorted(set(resources))
        if not wanted:
            return []
        i = t.intents.c
        q = (
            sa.select(table.c.resource, i.id, i.workflow, i.requester, i.status)
            .join(t.intents, i.id == table.c.intent_id)
            .where(table.c.resource.in_(wanted))
            .order_by(table.c.resource, i.created_at)
        )
        return [
            LockHolder(resource, IntentId(iid), wf, who, IntentStatus(st))
            for resource, iid, wf, who, st in self._c.execute(q)
        ]

    def _insert(self, table: sa.Table) -> Any:
        return (pg_insert if self._pg else sqlite_insert)(table)

    # agreements ----------------------------------------------------------------------------------
    def agree(self, intent: Intent, action: str, actor: str, reason: str, now: datetime) -> list[str]:
        """Record `actor`'s agreement to `action` on this version of the intent; returns everyone agreeing so far."""
        self._c.execute(
            self._insert(t.agreements)
            .values(
                intent_id=intent.id,
                action=action,
                intent_version=intent.version,
                actor=actor,
                reason=redact(reason) or None,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["intent_id", "action", "intent_version", "actor"])
        )
        a = t.agreements.c
        q = (
            sa.select(a.actor)
            .where(a.intent_id == intent.id, a.action == action, a.intent_version == intent.version)
            .order_by(a.created_at, a.actor)
        )
        return [actor for (actor,) in self._c.execute(q)]

    def next_check_at(self) -> datetime | None:
        """When the earliest check comes due (served by ix_intents_due)."""
        q = sa.select(sa.func.min(t.intents.c.next_check_at)).where(t.intents.c.next_check_at.is_not(None))
        return as_utc(self._c.execute(q).scalar())

    def due_for_reconcile(self, now: datetime, limit: int) -> list[Intent]:
        """The checks due now, soonest first, taken for this reconciler: their next check moves `CHECK_HOLD` on,
        so another replica's pass skips them (rows another pass is taking are skipped, not waited for). The
        check itself sets the real next time; a reconciler that dies mid-pass leaves them due again after it."""
        i = t.intents.c
        q = sa.select(t.intents).where(i.next_check_at.is_not(None), i.next_check_at <= now)
        q = q.order_by(i.next_check_at).limit(limit)
        if self._pg:
            q = q.with_for_update(skip_locked=True)
        due = [_intent(r) for r in self._c.execute(q)]
        if due:
            taken = sa.update(t.intents).where(i.id.in_([d.id for d in due])).values(next_check_at=now + CHECK_HOLD)
            self._c.execute(taken)
        return due

    def renew_lease(self, lease: Lease, until: datetime) -> None:
        result = self._c.execute(
            sa.update(t.intents)
            .where(
                t.intents.c.id == lease.intent_id,
                t.intents.c.lease_token == lease.token,
                t.intents.c.status == IntentStatus.RUNNING.value,
            )
            .values(lease_expires_at=until, next_check_at=until)
        )
        if result.rowcount != 1:
            raise _lost(lease)

    def count_by_status(self, ended_since: datetime) -> dict[IntentStatus, int]:
        """The intents not over yet, by status, and those that ended (reached a final status) since `ended_since`.

        Both are ranges of ix_intents_status_updated: the cost follows what is open and what ended in the
        period, not how many intents the store has ever held."""
        i = t.intents.c
        q = sa.union_all(
            sa.select(i.status, sa.func.count()).where(i.status.in_(_OPEN)).group_by(i.status),
            sa.select(i.status, sa.func.count())
            .where(i.status.in_(_FINAL), i.updated_at >= ended_since)
            .group_by(i.status),
        )
        return {IntentStatus(s): n for s, n in self._c.execute(q)}

    def undecided_requests(self, waiting_since: Mapping[tuple[str, str], datetime], limit: int) -> list[Intent]:
        """Each awaiting status is a range of ix_intents_status_updated, narrowed per (workflow, environment): the
        cost follows the requests past their time, not the store's size."""
        if not waiting_since:
            return []
        i, s = t.intents.c, t.steps.c
        arms = [
            sa.and_(i.workflow == w, i.environment == e, i.updated_at < before)
            for (w, e), before in waiting_since.items()
        ]
        nothing_ran = ~sa.exists().where(s.intent_id == i.id)
        latest = max(waiting_since.values())
        found: list[Intent] = []
        for status in sorted(AWAITING_APPROVAL):  # one ordered range each, read only as far as `limit` matches
            q = (
                sa.select(t.intents)
                .where(i.status == status.value, i.updated_at < latest, sa.or_(*arms), nothing_ran)
                .order_by(i.updated_at)
                .limit(limit)
            )
            found += [_intent(r) for r in self._c.execute(q)]
        return sorted(found, key=lambda x: x.updated_at)[:limit]

    def needing_attention(
        self, approvals_before: datetime, converging_before: Mapping[str, datetime], limit: int
    ) -> tuple[list[Intent], int]:
        """What a human should look at, longest waiting first (at most `limit`), and how many there are in all.

        That is every intent in a status that needs a human or waiting for a resource, approvals requested before
        `approvals_before`, and converging intents of a workflow `w` that started before `converging_before[w]`
        (past their window; any, for a workflow not named). Each status is one ordered range of
        ix_intents_status_updated, so the cost follows `limit` and what needs attention, not the store's size."""
        i = t.intents.c
        named = list(converging_before)
        past_window = [
            sa.and_(i.workflow == w, sa.func.coalesce(i.started_at, i.created_at) < cutoff)
            for w, cutoff in converging_before.items()
        ]
        arms = [i.status == s.value for s in _ALWAYS_ATTENTION]
        arms.append(sa.and_(i.status == IntentStatus.PENDING_APPROVAL.value, i.updated_at < approvals_before))
        arms.append(sa.and_(i.status == IntentStatus.CONVERGING.value, sa.or_(i.workflow.not_in(named), *past_window)))
        oldest = [sa.select(t.intents).where(arm).order_by(i.updated_at, i.id).limit(limit).subquery() for arm in arms]
        merged = sa.union_all(*(sa.select(sq) for sq in oldest)).subquery()
        q = sa.select(merged).order_by(merged.c.updated_at, merged.c.id).limit(limit)
        shown = [_intent(r) for r in self._c.execute(q)]
        counts = [sa.select(sa.func.count()).select_from(t.intents).where(arm).scalar_subquery() for arm in arms]
        return shown, sum(int(n) for n in self._c.execute(sa.select(*counts)).one())

    # steps -------------------------------------------------------------------------------------
    def steps(self, intent_id: IntentId) -> list[StepRecord]:
        q = sa.select(t.steps).where(t.steps.c.intent_id == intent_id).order_by(t.steps.c.seq)
        return [_step(r) for r in self._c.execute(q)]

    def insert_step(self, record: StepRecord) -> None:
        self._c.execute(
            sa.insert(t.steps).values(
                intent_id=record.intent_id,
                seq=record.seq,
                name=record.name,
                status=record.status.value,
                idempotency_token=record.idempotency_token,
                external_ids=redact(record.external_ids),
                output=redact(record.output),
                error=record.error,
                attempts=record.attempts,
                started_at=record.started_at,
                finished_at=record.finished_at,
            )
        )

    def update_step(self, intent_id: IntentId, seq: int, **changes: Any) -> None:
        self._c.execute(
            sa.update(t.steps)
            .where(t.steps.c.intent_id == intent_id, t.steps.c.seq == seq)
            .values(**_step_values(**changes))
        )

    # approvals ---------------------------------------------------------------------------------
    def add_approval(self, approval: Approval) -> None:
        """Record a decision; the same decision on the same plan again refreshes it (a re-approval after expiry)."""
        values = {
            "intent_id": approval.intent_id,
            "actor": approval.actor,
            "plan_hash": approval.plan_hash,
            "decision": approval.decision.value,
            "reason": redact(approval.reason) if approval.reason else None,
            "created_at": approval.created_at,
            "expires_at": approval.expires_at,
        }
        self._c.execute(
            self._insert(t.approvals)
            .values(values)
            .on_conflict_do_update(
                index_elements=["intent_id", "actor", "plan_hash", "decision"],
                set_={"created_at": approval.created_at, "expires_at": approval.expires_at, "reason": values["reason"]},
            )
        )

    def approvals(self, intent_id: IntentId) -> list[Approval]:
        q = sa.select(t.approvals).where(t.approvals.c.intent_id == intent_id).order_by(t.approvals.c.id)
        return [
            Approval(
                intent_id=IntentId(m["intent_id"]),
                actor=m["actor"],
                plan_hash=m["plan_hash"],
                decision=Decision(m["decision"]),
                created_at=as_utc(m["created_at"]),
                expires_at=as_utc(m["expires_at"]),
                reason=m["reason"],
            )
            for m in (r._mapping for r in self._c.execute(q))
        ]

    # audit -------------------------------------------------------------------------------------
    def append_event(self, draft: EventDraft, now: datetime) -> None:
        """Add to the hash chain when this transaction commits (see `flush_events`)."""
        self._events.append((draft, now))

    def flush_events(self) -> None:
        """Append the transaction's events to the chain, last thing before the commit: the chain's lock (which
        serialises appends across processes) is then held for one head read, one insert and the commit, not for
        the whole transaction. Secrets are masked here, before anything is stored."""
        if not self._events:
            return
        events, self._events = self._events, []
        if self._pg:
            self._c.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_KEY})
        head = self._c.execute(sa.select(t.audit.c.seq, t.audit.c.hash).order_by(t.audit.c.seq.desc()).limit(1)).first()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
        rows = []
        for draft, now in events:
            data = redact(draft.data)
            created = now.astimezone(UTC)
            digest = chain_hash(prev, seq, draft.intent_id, draft.kind, draft.actor, data, created)
            rows.append(
                {
                    "seq": seq,
                    "intent_id": draft.intent_id,
                    "kind": str(draft.kind),
                    "actor": draft.actor,
                    "data": canonical_json(data),
                    "created_at": created,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            seq, prev = seq + 1, digest
        self._c.execute(sa.insert(t.audit), rows)

    def audit_head(self) -> str:
        """`<seq>:<hash>` of the newest audit event ("" before any): publish it where the database cannot reach."""
        self.flush_events()
        row = self._c.execute(sa.select(t.audit.c.seq, t.audit.c.hash).order_by(t.audit.c.seq.desc()).limit(1)).first()
        return f"{row[0]}:{row[1]}" if row else ""

    def events(self, intent_id: IntentId | None = None) -> list[AuditEvent]:
        self.flush_events()  # this transaction's own events too
        q = sa.select(t.audit).order_by(t.audit.c.seq)
        if intent_id is not None:
            q = q.where(t.audit.c.intent_id == intent_id)
        return [_event(r) for r in self._c.execute(q)]


class SqlStore:
    """The intent store; `transaction()` is the unit of work the engine composes its writes in.

    The executor's hot path does not use it: `checkpoint_started` and `checkpoint_outcome` are each one
    fenced statement, committed on their own (autocommit) on a connection the executor pins for a run.
    """

    def __init__(self, engine: sa.Engine, signals: Signals | None = None) -> None:
        self.engine = engine
        self.signals = signals or Signals()
        self._local = threading.local()
        self._fenced_start = _Prepared(_FENCED_START, engine.dialect)
        self._fenced_outcome = {cols: _Prepared(stmt, engine.dialect) for cols, stmt in _FENCED_OUTCOME.items()}
        self._done_then_start = (
            _Prepared(_FENCED_DONE_THEN_START, engine.dialect) if engine.dialect.name == "postgresql" else None
        )

    @contextmanager
    def transaction(self) -> Iterator[SqlTx]:
        """One unit of work: committed whole, or rolled back whole (a store that fails says so, plainly)."""
        try:
            with self.engine.begin() as conn:
                tx = SqlTx(conn)
                yield tx
                tx.flush_events()
        except sa.exc.OperationalError as exc:
            raise StoreUnavailable(
                f"the intent store refused the operation, nothing was written: {_reason(exc)}"
            ) from None
        for workflow, was, now in tx.moves:
            TRANSITIONS.labels(workflow, was, now).inc()
        for channel, payload in tx.raised:  # committed: wake this process's subscribers
            self.signals.publish(channel, payload)

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Hold one autocommit connection for this thread's checkpoints until the block ends."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    @contextmanager
    def _autocommit(self) -> Iterator[sa.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        with self.pinned():
            yield self._local.conn

    def checkpoint_started(self, lease: Lease, record: StepRecord, done: StepDone | None = None) -> None:
        """Record "started" before a side effect, only while `lease` still holds the intent; with `done`, the
        previous step's outcome is committed in the same transaction (one commit between two steps, not two)."""
        params = {
            "v_intent_id": record.intent_id,
            "v_seq": record.seq,
            "v_name": record.name,
            "v_status": record.status.value,
            "v_idempotency_token": record.idempotency_token,
            "v_external_ids": redact(record.external_ids),
            "v_output": redact(record.output),
            "v_error": record.error,
            "v_attempts": record.attempts,
            "v_started_at": record.started_at,
            "v_finished_at": record.finished_at,
            **_lease_params(lease),
        }
        with self._autocommit() as conn:
            if done is None:
                held = self._fenced_start.run(conn, params) == 1
            else:
                values = _step_values(
                    status=StepStatus.SUCCEEDED,
                    output=done.output,
                    external_ids=done.external_ids,
                    finished_at=done.finished_at,
                )
                if self._done_then_start is not None:
                    together = params | {f"d_{k}": v for k, v in values.items()} | {"done_seq": done.seq}
                    held = self._done_then_start.run(conn, together) == 1
                else:  # SQLite: the two statements in one transaction
                    outcome = {f"v_{k}": v for k, v in values.items()} | _lease_params(lease) | {"step_seq": done.seq}
                    held = _fenced_together(
                        conn, [(self._fenced_outcome[frozenset(values)], outcome), (self._fenced_start, params)]
                    )
        if not held:
            raise _lost(lease)

    def checkpoint_outcome(self, lease: Lease, seq: int, **changes: Any) -> None:
        """Record a step's outcome (or newly known external ids), only while `lease` still holds the intent."""
        values = _step_values(**changes)
        prepared = self._fenced_outcome.get(frozenset(values))
        with self._autocommit() as conn:
            if prepared is not None:
                params = {f"v_{k}": v for k, v in values.items()} | _lease_params(lease) | {"step_seq": seq}
                rowcount = prepared.run(conn, params)
            else:
                rowcount = conn.execute(
                    sa.update(t.steps)
                    .where(t.steps.c.intent_id == lease.intent_id, t.steps.c.seq == seq, _held())
                    .values(**values),
                    _lease_params(lease),
                ).rowcount
        if rowcount != 1:
            raise _lost(lease)

    def renew_lease(self, lease: Lease, until: datetime) -> None:
        with self._autocommit() as conn:
            SqlTx(conn).renew_lease(lease, until)

    def verify_audit(self, anchor: str | None = None) -> AuditReport:
        """Walk the chain: an edited row breaks its hash, a deleted one breaks the sequence or the links.

        Deleting the newest events leaves a shorter chain that is still intact; `anchor` ("seq:hash", a head
        recorded earlier outside the database) catches that too.
        """
        problems: list[str] = []
        anchored: dict[int, str] = {}
        if anchor:
            seq_text, _, anchor_hash = anchor.partition(":")
            if not seq_text.isdigit() or len(anchor_hash) != 64:
                problems.append(f"anchor {anchor!r} is not <seq>:<sha256>")
            else:
                anchored[int(seq_text)] = anchor_hash
        expected_prev, expected_seq, checked = GENESIS, 1, 0
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(t.audit).order_by(t.audit.c.seq)):
                m = row._mapping
                checked += 1
                if m["seq"] != expected_seq:
                    problems.append(f"event {expected_seq}..{m['seq'] - 1} missing (deleted?)")
                if m["prev_hash"] != expected_prev:
                    problems.append(f"event {m['seq']}: link to previous event broken")
                recomputed = chain_hash(
                    m["prev_hash"],
                    m["seq"],
                    m["intent_id"],
                    m["kind"],
                    m["actor"],
                    json.loads(m["data"]),
                    as_utc(m["created_at"]),
                )
                if recomputed != m["hash"]:
                    problems.append(f"event {m['seq']}: content does not match its hash (edited?)")
                if m["seq"] in anchored and anchored.pop(m["seq"]) != m["hash"]:
                    problems.append(f"event {m['seq']}: not the event the anchor recorded (rewritten?)")
                expected_prev, expected_seq = m["hash"], m["seq"] + 1
        for seq in anchored:
            problems.append(f"event {seq} from the anchor is gone: the newest events were deleted")
        head = f"{expected_seq - 1}:{expected_prev}" if checked else ""
        return AuditReport(ok=not problems, checked=checked, problems=tuple(problems), head=head)
