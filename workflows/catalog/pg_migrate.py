"""pg.migrate: apply the pending SQL files of a database, each with its version row, under short lock timeouts.

Files are `<version>_<slug>.sql` (version: digits) in the database's configured directory. A file whose first line
is `-- opsbot:no-transaction` runs outside a transaction and holds one statement (CREATE INDEX CONCURRENTLY).
Applied versions live in `opsbot_schema_migrations` in the target database, written in the same transaction as
the file; an applied file whose checksum changed is refused at preflight.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from workflows.sdk import (
    Absent,
    DatabasePort,
    Done,
    Evidence,
    Mutation,
    Observation,
    PlanDraft,
    PreconditionFailed,
    PreflightContext,
    RetryPolicy,
    Risk,
    Rollback,
    StepContext,
    StepOutcome,
    TransientError,
    UnsafeError,
    Workflow,
    postcondition,
    step,
    workflow,
)
from workflows.sqllocks import StatementLock, index_name, lock_for, migration_problem, split_statements

NO_TRANSACTION = "-- opsbot:no-transaction"
FILE_NAME = re.compile(r"^(?P<version>[0-9]{1,20})_(?P<slug>[A-Za-z0-9_-]{1,100})\.sql$")
LONG_TRANSACTION_SECONDS = 60.0


class MigrateParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database: str = Field(pattern=r"^[a-z_][a-z0-9_]{0,47}$", description="the database's name in the config")
    target: str | None = Field(
        default=None, pattern=r"^[0-9]{1,20}$", description="apply up to this version (default: all pending)"
    )


@dataclass(frozen=True, slots=True)
class MigrationFile:
    version: str
    slug: str
    sql: str
    checksum: str
    transactional: bool
    statements: tuple[str, ...]

    @property
    def locks(self) -> tuple[StatementLock, ...]:
        return tuple(lock_for(s) for s in self.statements)

    @property
    def index(self) -> str | None:
        """The index a non-transactional CREATE INDEX CONCURRENTLY builds, if that is what it does."""
        return index_name(self.statements[0]) if self.statements and not self.transactional else None


Ctx = StepContext[MigrateParams]


def migration_files(ctx: Ctx | PreflightContext[MigrateParams]) -> dict[str, MigrationFile]:
    """The database's migration files by version, read from its configured directory."""
    ref = ctx.env.databases.get(ctx.params.database)
    if ref is None:
        raise PreconditionFailed(f"no database {ctx.params.database!r} in this environment's config")
    if not ref.migrations:
        raise PreconditionFailed(f"databases.{ctx.params.database}.migrations is not configured")
    directory = Path(ref.migrations)
    if not directory.is_dir():
        raise PreconditionFailed(f"the migrations directory of {ctx.params.database} does not exist")
    files: dict[str, MigrationFile] = {}
    for path in sorted(directory.glob("*.sql")):
        named = FILE_NAME.match(path.name)
        if named is None:
            raise PreconditionFailed(f"{path.name}: migration files are named <version>_<slug>.sql")
        sql = path.read_text(encoding="utf-8")
        version = str(int(named.group("version")))
        if version in files:
            raise PreconditionFailed(f"two files for version {version}")
        transactional = not sql.lstrip().startswith(NO_TRANSACTION)
        statements = tuple(split_statements(sql))
        problem = migration_problem(list(statements), transactional=transactional)
        if problem is not None:
            raise PreconditionFailed(f"{path.name}: {problem.message}; {problem.guidance}")
        checksum = hashlib.sha256(sql.encode()).hexdigest()
        files[version] = MigrationFile(version, named.group("slug"), sql, checksum, transactional, statements)
    return dict(sorted(files.items(), key=lambda kv: int(kv[0])))


def _db(ctx: Ctx | PreflightContext[MigrateParams]) -> DatabasePort:
    return ctx.adapters.database(ctx.env, ctx.params.database)


def _describe_locks(db: DatabasePort, f: MigrationFile) -> str:
    parts = []
    for lock in f.locks:
        held = db.conflicting_sessions(list(lock.relations), lock.mode) if lock.relations else []
        now = "; held now by " + ", ".join(s.describe() for s in held) if held else ""
        parts.append(f"{lock.kind} {', '.join(lock.relations) or '?'} → {lock.mode}{now}")
    return "; ".join(parts) or "no statements"


@workflow(
    name="pg.migrate",
    summary="Apply the pending schema migrations of a PostgreSQL database",
    risk=Risk.HIGH,
    blast_radius="the tables the files touch: their queries may wait up to the lock timeout",
    request_roles=("dba",),
    approve_roles=("dba-lead",),
    rollback_limits="schema changes are not undone automatically: write a new migration to reverse one",
    approvals=1,  # a reviewed migration needs one approver besides its author (the config may ask for more)
    retry=RetryPolicy(attempts=3, initial_delay=2.0, max_delay=20.0, requeues=2),
    timeout=4 * 3600.0,
)
class Migrate(Workflow[MigrateParams]):
    """One step per pending file, each under the database's advisory lock, recorded with its version row."""

    def preflight(self, ctx: PreflightContext[MigrateParams]) -> PlanDraft:
        p, db = ctx.params, _db(ctx)
        ref = ctx.env.databases[p.database]
        files = migration_files(ctx)
        applied = {m.version: m.checksum for m in db.applied_migrations()}
        changed = [v for v, c in applied.items() if v in files and files[v].checksum != c]
        if changed:
            raise PreconditionFailed(
                f"applied migrations changed on disk since they ran: {', '.join(changed)} (write a new file instead)"
            )
        pending = [f for v, f in files.items() if v not in applied and (p.target is None or int(v) <= int(p.target))]
        if not pending:
            raise PreconditionFailed(
                f"{p.database} is up to date (latest applied: {max(applied, key=int, default='none')})"
            )
        lag = db.replicas_lag_seconds()
        behind = {name: seconds for name, seconds in lag.items() if seconds > ref.max_replica_lag_seconds}
        if behind:
            raise PreconditionFailed(
                f"replicas are behind by more than {ref.max_replica_lag_seconds:g}s: "
                + ", ".join(f"{n} {s:.0f}s" for n, s in sorted(behind.items()))
            )
        long = db.long_transactions(LONG_TRANSACTION_SECONDS)
        mutations = tuple(
            Mutation(
                action="migrate",
                target=f"pg:{ctx.environment}/{p.database}@{f.version}",
                detail=f"{f.slug} ({len(f.statements)} statement(s)"
                + ("" if f.transactional else ", no transaction")
                + f"): {_describe_locks(db, f)}",
            )
            for f in pending
        )
        notes = f"; long transactions now: {', '.join(s.describe() for s in long)}" if long else ""
        lag_note = ", ".join(f"{n} {s:.1f}s" for n, s in sorted(lag.items())) or "no replicas"
        return PlanDraft(
            targets=(f"pg:{ctx.environment}/{p.database}",),
            mutations=mutations,
            observed={"pending": {f.version: f.checksum for f in pending}, "applied": sorted(applied, key=int)},
            locks=(f"pg:{ctx.environment}/{p.database}",),
            blast_radius=(
                f"queries on the touched tables wait at most {ref.lock_timeout_seconds:g}s (lock_timeout); "
                f"replica lag {lag_note} (limit {ref.max_replica_lag_seconds:g}s){notes}"
            ),
            each={"files": tuple(f.version for f in pending)},
        )

    @step(
        rollback=Rollback.IRREVERSIBLE,
        each="files",
        timeout=900.0,
        description="apply one file with its version row, under the advisory lock",
    )
    def apply(self, ctx: Ctx) -> StepOutcome:
        assert ctx.item is not None
        f, db = _planned_file(ctx, ctx.item), _db(ctx)
        with db.advisory_lock(f"opsbot:migrate:{ctx.params.database}"):
            applied = {m.version: m.checksum for m in db.applied_migrations()}
            if f.version in applied:
                if applied[f.version] != f.checksum:
                    raise UnsafeError(f"version {f.version} was applied from a different file")
                return Done(output={"version": f.version}, how="observed")
            if not f.transactional and f.index:
                done = _settle_concurrent_index(db, f)
                if done is not None:
                    return done
            try:
                db.apply_migration(f.version, f.checksum, f.sql, transactional=f.transactional)
            except TransientError as exc:
                raise _name_the_blocker(db, f, exc) from None
        return Done(output={"version": f.version, "statements": len(f.statements)})

    @apply.probe
    def _applied(self, ctx: Ctx) -> Observation:
        assert ctx.item is not None
        applied = {m.version: m.checksum for m in _db(ctx).applied_migrations()}
        if ctx.item in applied:
            return Done(output={"version": ctx.item}, how="observed")
        return Absent(f"version {ctx.item} has no row in opsbot_schema_migrations")

    @postcondition("every planned version is recorded with the checksum of its file")
    def all_applied(self, ctx: Ctx) -> Evidence:
        planned = ctx.intent.plan.get("observed", {}).get("pending", {})
        applied = {m.version: m.checksum for m in _db(ctx).applied_migrations()}
        missing = [v for v, c in planned.items() if applied.get(v) != c]
        return Evidence(not missing, {"missing": missing})

    @postcondition("no index a migration built concurrently is left invalid")
    def indexes_valid(self, ctx: Ctx) -> Evidence:
        db, files = _db(ctx), migration_files(ctx)
        planned = ctx.intent.plan.get("observed", {}).get("pending", {})
        invalid = [f.index for v in planned if (f := files.get(v)) and f.index and db.index_valid(f.index) is False]
        return Evidence(not invalid, {"invalid": invalid})


def _planned_file(ctx: Ctx, version: str) -> MigrationFile:
    f = migration_files(ctx).get(version)
    planned = ctx.intent.plan.get("observed", {}).get("pending", {}).get(version)
    if f is None or f.checksum != planned:
        raise UnsafeError(
            f"migration {version} changed or vanished on disk after the plan was approved",
            guidance="cancel, and request the migration again to review the new file",
        )
    return f


def _settle_concurrent_index(db: DatabasePort, f: MigrationFile) -> StepOutcome | None:
    """A CONCURRENTLY build interrupted before: a valid index only lacks its row; an invalid one is dropped (IF NOT
    EXISTS would silently skip it) once no other session is still building it."""
    assert f.index is not None
    valid = db.index_valid(f.index)
    if valid is True:
        db.apply_migration(f.version, f.checksum, "", transactional=True)  # the row alone: the index is built
        return Done(output={"version": f.version, "index": f.index}, how="observed")
    if valid is False:
        if db.index_build_in_progress(f.index):
            raise TransientError(f"another session is still building index {f.index}", delay=30.0)
        db.drop_index(f.index)
    return None


def _name_the_blocker(db: DatabasePort, f: MigrationFile, exc: TransientError) -> TransientError:
    """A lock timeout says who held the lock, so the blocked intent's guidance can name the session."""
    text = str(exc)
    if "55P03" not in text and "lock timeout" not in text.lower():
        return exc
    holders = []
    for lock in f.locks:
        if lock.relations:
            holders += db.conflicting_sessions(list(lock.relations), lock.mode)
    who = ", ".join(h.describe() for h in holders) or "a session that has since let go"
    return TransientError(f"lock timeout applying {f.version}_{f.slug}: blocked by {who}", delay=exc.delay)
