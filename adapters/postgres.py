"""PostgreSQL as workflows need it: short transactions under timeouts, advisory locks, SQLSTATE classification.

A database is named in the config by the environment variable holding its DSN; the DSN is read here, at the
boundary, and never appears in an error, a log line or the audit log. Passwords reach the server only as SCRAM
verifiers computed here (as psql's \\password sends them), and login checks send them only in the SCRAM exchange.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import stringprep
import unicodedata
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Identifier, Literal

from workflows import sqllocks
from workflows.config import DatabaseRef
from workflows.errors import AlreadyExists, ConfigError, OutcomeUnknown, PermanentError, TransientError
from workflows.outside import AppliedMigration, PgSession
from workflows.redaction import redact_text
from workflows.sqllocks import CONFLICTS, MODES, conflicts, index_name, lock_for
from workflows.telemetry import span

log = structlog.get_logger(__name__)

# SQLSTATEs where trying again later is the right answer, and what to call them.
_TRANSIENT = {
    "40001": "serialization failure",
    "40P01": "deadlock",
    "55P03": "lock timeout",  # lock_timeout expired (or NOWAIT): another session holds a conflicting lock
    "53300": "too many connections",
    "57014": "statement timeout",  # or a cancel request
}
# The connection went away: class 08, or the server shutting down, crashing or starting up.
_CONNECTION_LOST = ("08", "57P01", "57P02", "57P03")
# What the server says when it refuses a login (28P01, 28000): libpq keeps no SQLSTATE for errors while connecting.
_LOGIN_REFUSED = re.compile(
    r'authentication failed for user "|no pg_hba\.conf entry|is not permitted to log in|role ".*" does not exist'
)

_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS opsbot_schema_migrations (
    version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"""
_LOCK_SPACE = 0x6F707362  # "opsb": opsbot's advisory locks use the two-key form, apart from the application's
_SCRAM_ITERATIONS = 4096


def classify_pg(exc: BaseException, what: str, *, in_flight: bool = False) -> Exception:
    """Map a psycopg error onto the step contract, with the message scrubbed of credentials.

    `in_flight`: the error may have interrupted a commit (COMMIT itself, or an autocommit statement with effects), so
    a lost connection leaves the outcome unknown instead of certainly not applied.
    """
    sqlstate = getattr(exc, "sqlstate", None) or ""
    text = str(exc).strip()
    message = redact_text(text.splitlines()[0] if text else type(exc).__name__)
    lost = sqlstate.startswith(_CONNECTION_LOST) or (
        not sqlstate and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    )
    if lost and in_flight:
        return OutcomeUnknown(f"{what}: the connection was lost before the server answered ({message})")
    if lost:
        return TransientError(f"{what}: cannot reach the database ({sqlstate or 'no SQLSTATE'}: {message})")
    if sqlstate in _TRANSIENT:
        return TransientError(f"{what}: {_TRANSIENT[sqlstate]} ({sqlstate}): {message}")
    return PermanentError(
        f"{what}: {sqlstate} {message}".strip(), guidance="check the statement and the database's state"
    )


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class PgAdapter:
    """One database (its admin DSN). Each call opens its own connection and keeps its transactions short."""

    def __init__(self, dsn: str, name: str, statement_timeout_ms: int = 30_000, lock_timeout_ms: int = 5_000) -> None:
        try:
            self._conninfo: dict[str, Any] = {"application_name": "opsbot", "connect_timeout": 10}
            self._conninfo.update(conninfo_to_dict(dsn))
        except psycopg.Error:
            raise ConfigError(f"the DSN of database {name!r} is not a valid connection string") from None
        self.name = name
        self.statement_timeout_ms, self.lock_timeout_ms = int(statement_timeout_ms), int(lock_timeout_ms)

    # connections ----------------------------------------------------------------------------------------------
    def _connect(self, what: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(**self._conninfo, autocommit=autocommit)
        except psycopg.Error as exc:
            raise classify_pg(exc, what) from None

    @contextmanager
    def _session(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        """An autocommit connection, never left in an open transaction; its errors classified."""
        with self._span(what):
            conn = self._connect(what)
            try:
                with conn:
                    yield conn
            except psycopg.Error as exc:
                raise classify_pg(exc, what) from None

    def _span(self, what: str) -> AbstractContextManager[Any]:
        return span(f"postgresql {what}", attributes={"db.system": "postgresql", "db.name": self.name})

    def _set_timeouts(self, conn: psycopg.Connection[Any]) -> None:
        """Session-level timeouts, for statements that cannot run inside a transaction block."""
        conn.execute(f"SET lock_timeout = {self.lock_timeout_ms}")
        conn.execute(f"SET statement_timeout = {self.statement_timeout_ms}")

    @contextmanager
    def transaction(self, what: str = "transaction") -> Iterator[psycopg.Cursor[Any]]:
        """A short transaction; the timeouts bound how long it can block application traffic.

        A connection lost while committing is OutcomeUnknown: the transaction may or may not have committed.
        """
        with self._span(what), self._connect(what, autocommit=False) as conn:
            try:
                with conn.cursor() as cur:
                    cur.execute(f"SET LOCAL statement_timeout = {self.statement_timeout_ms}")
                    cur.execute(f"SET LOCAL lock_timeout = {self.lock_timeout_ms}")
                    yield cur
            except psycopg.Error as exc:
                raise classify_pg(exc, what) from None
            try:
                conn.commit()
            except psycopg.Error as exc:
                raise classify_pg(exc, what, in_flight=True) from None

    def fetch_value(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self.transaction("query") as cur:
            cur.execute(sql, params)  # workflows pass literal, parameterised SQL
            row = cur.fetchone()
        return row[0] if row else None

    @contextmanager
    def advisory_lock(self, key: str) -> Iterator[None]:
        """An operation-wide lock, held for the block; another operation holding it is a transient refusal."""
        lock = (_LOCK_SPACE, _signed32(zlib.crc32(key.encode())))
        with self._session(f"advisory lock {key!r} on {self.name}") as conn:
            # A server-side idle_session_timeout (PostgreSQL 14+) would end the session and free the lock unseen.
            conn.execute(
                "SELECT set_config('idle_session_timeout', '0', false)"
                " WHERE current_setting('idle_session_timeout', true) IS NOT NULL"
            )
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", lock).fetchone()
            if not (row and row[0]):
                raise TransientError(f"another operation holds the lock {key!r} on {self.name}")
            try:
                yield
            finally:
                with suppress(psycopg.Error):  # closing the session frees it anyway
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)", lock)

    # replication ------------------------------------------------------------------------------------------------
    def replication_lag_seconds(self) -> float | None:
        """Replay lag on a standby (None on a primary)."""
        value = self.fetch_value(
            "SELECT CASE WHEN pg_is_in_recovery() THEN EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
        )
        return float(value) if value is not None else None

    def replicas_lag_seconds(self) -> dict[str, float]:
        """Each standby's replay_lag. NULL means 0 only for a streaming standby that has replayed all it was sent
        (PostgreSQL clears the lag columns of an idle, caught-up standby); otherwise the lag is unknown, which is a
        TransientError naming the standby. Standbys sharing an application_name report the largest lag."""
        with self.transaction(f"replication status of {self.name}") as cur:
            cur.execute(
                "SELECT application_name, state, EXTRACT(EPOCH FROM replay_lag)::float8,"
                " coalesce(replay_lsn >= sent_lsn, false) FROM pg_stat_replication"
            )
            rows = cur.fetchall()
        lags: dict[str, float] = {}
        for standby, state, lag, caught_up in rows:
            if lag is None and not (state == "streaming" and caught_up):
                raise TransientError(f"standby {standby!r} of {self.name} is {state} and its lag is not measured yet")
            lags[standby] = max(lags.get(standby, 0.0), float(lag or 0.0))
        return lags

    # migrations -----------------------------------------------------------------------------------------------
    def applied_migrations(self) -> list[AppliedMigration]:
        with self.transaction(f"applied migrations of {self.name}") as cur:
            cur.execute("SELECT to_regclass('opsbot_schema_migrations') IS NOT NULL")
            if not _one(cur):
                return []
            cur.execute("SELECT version, checksum FROM opsbot_schema_migrations ORDER BY version")
            return [AppliedMigration(version, checksum) for version, checksum in cur.fetchall()]

    def apply_migration(self, version: str, checksum: str, sql: str, *, transactional: bool) -> None:
        """Apply a migration file (see DatabasePort); a version already applied with this checksum is a no-op."""
        what = f"migration {version} on {self.name}"
        statements = _checked_statements(sql, transactional=transactional, what=what)
        with self.transaction(what) as cur:
            done = _already_applied(cur, version, checksum, what)
            if transactional and not done:
                for number, statement in enumerate(statements, 1):
                    try:
                        cur.execute(statement)
                    except psycopg.Error as exc:  # rolls the whole file back
                        where = f"{what}, statement {number} ({lock_for(statement).kind})"
                        raise classify_pg(exc, where) from None
                _record(cur, version, checksum)
        if done:
            return
        if not transactional:
            self._run_alone(statements[0], what)
            with self.transaction(what) as cur:
                _refuse_invalid_index(cur, statements[0], what)
                _record(cur, version, checksum)
        log.info("pg.migration.applied", database=self.name, version=version, transactional=transactional)

    def _run_alone(self, statement: str, what: str) -> None:
        """One statement in autocommit, under session-level timeouts; it is its own commit."""
        with self._session(what) as conn:
            self._set_timeouts(conn)
            try:
                conn.execute(statement)
            except psycopg.Error as exc:
                error = classify_pg(exc, what, in_flight=True)
                lock = lock_for(statement)
                if isinstance(error, TransientError) and not lock.transactional and "CONCURRENTLY" in lock.kind:
                    # Cut short after its first transaction, such a statement leaves an INVALID index behind.
                    raise OutcomeUnknown(f"{error}; it may have left an INVALID index: check index_valid") from None
                raise error from None

    def index_valid(self, name: str) -> bool | None:
        """pg_index.indisvalid of the index `name` resolves to on the search path (SQL syntax: `app."Idx"`)."""
        with self.transaction(f"index {name} on {self.name}") as cur:
            cur.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,))
            row = cur.fetchone()
        return bool(row[0]) if row else None

    def index_build_in_progress(self, name: str) -> bool:
        """Whether a backend of this database is building or rebuilding the index now.

        Matched on index_relid, which is known once the index is in pg_class: from the first transaction of
        CREATE INDEX CONCURRENTLY on. A plain CREATE INDEX reports index_relid 0 and its index stays invisible to
        other sessions until it commits, so nothing ties it to a name: it is not reported.
        """
        with self.transaction(f"index builds on {self.name}") as cur:
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p"
                " WHERE p.index_relid = to_regclass(%s) AND p.datname = current_database())",
                (name,),
            )
            return bool(_one(cur))

    def drop_index(self, name: str) -> None:
        """DROP INDEX CONCURRENTLY IF EXISTS, in autocommit under the timeouts (idempotent: safe to retry)."""
        what = f"drop index {name} on {self.name}"
        with self._session(what) as conn:
            found = conn.execute(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.oid = to_regclass(%s) AND c.relkind IN ('i', 'I')",
                (name,),
            ).fetchone()
            if found is None:
                return
            self._set_timeouts(conn)
            conn.execute(SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(Identifier(*found)))
        log.info("pg.index.dropped", database=self.name, index=name)

    # sessions -------------------------------------------------------------------------------------------------
    def conflicting_sessions(self, relations: list[str], mode: str) -> list[PgSession]:
        """Other backends holding a granted lock on one of `relations` that conflicts with `mode`, longest first.

        An index stands for its table too (dropping it locks both). One entry per backend and relation, with the
        strongest mode it holds there.
        """
        if mode not in CONFLICTS:
            raise PermanentError(f"{mode!r} is not a table lock mode", guidance=f"use one of {', '.join(MODES)}")
        with self.transaction(f"lock preflight on {self.name}") as cur:
            cur.execute(_HOLDERS, (relations,))
            rows = cur.fetchall()
        strongest: dict[tuple[int, str], PgSession] = {}
        for pid, user, application, state, seconds, held, relation in rows:
            if held not in CONFLICTS or not conflicts(held, mode):
                continue
            known = strongest.get((pid, relation))
            if known is None or MODES.index(held) > MODES.index(known.mode):
                strongest[(pid, relation)] = PgSession(pid, user, application, state, seconds, held, relation)
        return sorted(strongest.values(), key=lambda s: (-s.seconds, s.pid, s.relation))

    def long_transactions(self, min_seconds: float) -> list[PgSession]:
        """Other backends of this database whose transaction has been open for at least `min_seconds`, oldest first."""
        with self.transaction(f"long transactions on {self.name}") as cur:
            cur.execute(
                "SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), coalesce(state, ''),"
                " EXTRACT(EPOCH FROM now() - xact_start)::float8 FROM pg_stat_activity"
                " WHERE xact_start IS NOT NULL AND datname = current_database() AND pid <> pg_backend_pid()"
                " AND now() - xact_start >= make_interval(secs => %s) ORDER BY xact_start",
                (min_seconds,),
            )
            return [PgSession(*row) for row in cur.fetchall()]

    # roles and passwords ----------------------------------------------------------------------------------------
    def role_exists(self, role: str) -> bool:
        with self.transaction(f"role {role} on {self.name}") as cur:
            cur.execute("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)", (role,))
            return bool(_one(cur))

    def create_clone(self, role: str, clone: str) -> None:
        """CREATE ROLE clone LOGIN, GRANT role TO clone, in one transaction.

        A clone that exists as a member of `role` is left as it is; one that exists otherwise is not ours to adopt
        (AlreadyExists).
        """
        what = f"clone {clone} of {role} on {self.name}"
        with self.transaction(what) as cur:
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(clone)s),"
                " EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
                " JOIN pg_roles c ON c.oid = m.member"
                " WHERE r.rolname = %(role)s AND c.rolname = %(clone)s)",
                {"role": role, "clone": clone},
            )
            exists, member = cur.fetchone() or (False, False)
            if exists and not member:
                raise AlreadyExists(
                    f"{what}: role {clone} exists and is not a member of {role}",
                    guidance="choose another clone name; a role opsbot did not make is not adopted",
                )
            if not exists:
                cur.execute(SQL("CREATE ROLE {} LOGIN").format(Identifier(clone)))
                cur.execute(SQL("GRANT {} TO {}").format(Identifier(role), Identifier(clone)))
        if not exists:
            log.info("pg.role.clone_created", database=self.name, role=role, clone=clone)

    def set_password(self, role: str, password: str) -> None:
        """ALTER ROLE ... PASSWORD with a SCRAM-SHA-256 verifier: the server never sees the password itself."""
        statement = SQL("ALTER ROLE {} PASSWORD {}").format(Identifier(role), Literal(_scram(password)))
        with self.transaction(f"password of {role} on {self.name}") as cur:
            cur.execute(statement)
        log.info("pg.role.password_set", database=self.name, role=role)

    def can_login(self, role: str, password: str) -> bool:
        """A fresh connection as `role` to the admin DSN's host, port and database; a refused login is False."""
        params = {k: v for k, v in self._conninfo.items() if k not in ("user", "password", "passfile")}
        params.update(user=role, password=password, connect_timeout=5)
        try:
            with psycopg.connect(**params, autocommit=True):
                return True
        except psycopg.Error as exc:
            if exc.sqlstate in ("28P01", "28000") or _LOGIN_REFUSED.search(str(exc)):
                return False
            raise classify_pg(exc, f"login check for {role} on {self.name}") from None

    def endpoint(self) -> tuple[str, int, str]:
        """(host, port, dbname) from the DSN; of a multi-host DSN, the first host."""
        params = self._conninfo
        host = str(params.get("host") or params.get("hostaddr") or "").split(",")[0]
        port = str(params.get("port") or "5432").split(",")[0]
        if not host or host.startswith("/") or not port.isdigit():
            raise PermanentError(
                f"the DSN of {self.name} names no TCP host and port", guidance="give host= and port= in the DSN"
            )
        return host, int(port), str(params.get("dbname") or params.get("user") or "postgres")


_HOLDERS = """
WITH named AS (
    SELECT to_regclass(name) AS oid FROM unnest(%s::text[]) AS name
), targets AS (
    SELECT oid FROM named WHERE oid IS NOT NULL
    UNION SELECT i.indrelid FROM pg_index i JOIN named ON i.indexrelid = named.oid
)
SELECT l.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''), coalesce(a.state, ''),
       EXTRACT(EPOCH FROM now() - coalesce(a.xact_start, a.state_change, now()))::float8,
       l.mode, l.relation::regclass::text
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.relation IN (SELECT oid FROM targets)
"""


def _one(cur: psycopg.Cursor[Any]) -> Any:
    row = cur.fetchone()
    return row[0] if row else None


def _signed32(value: int) -> int:
    return (value ^ 0x80000000) - 0x80000000


def _checked_statements(text: str, *, transactional: bool, what: str) -> list[str]:
    """The file's statements, refused when they cannot run the way the migration is marked to run."""
    statements = sqllocks.split_statements(text)
    problem = sqllocks.migration_problem(statements, transactional=transactional)
    if problem is not None:
        raise PermanentError(f"{what}: {problem.message}", guidance=problem.guidance)
    return statements


def _already_applied(cur: psycopg.Cursor[Any], version: str, checksum: str, what: str) -> bool:
    """Ensure the migrations table; whether `version` is recorded (with another checksum: PermanentError)."""
    cur.execute(_MIGRATIONS_TABLE)
    cur.execute("SELECT checksum FROM opsbot_schema_migrations WHERE version = %s", (version,))
    recorded = _one(cur)
    if recorded is not None and recorded != checksum:
        raise PermanentError(
            f"{what}: already applied with checksum {recorded}, the file now has {checksum}",
            guidance="an applied migration must not change: revert the edit and write a new migration",
        )
    return recorded is not None


def _record(cur: psycopg.Cursor[Any], version: str, checksum: str) -> None:
    cur.execute("INSERT INTO opsbot_schema_migrations (version, checksum) VALUES (%s, %s)", (version, checksum))


def _refuse_invalid_index(cur: psycopg.Cursor[Any], statement: str, what: str) -> None:
    """Refuse to record a CREATE INDEX whose index is INVALID (IF NOT EXISTS skips an earlier, broken build)."""
    name = index_name(statement)
    if name is None:
        return
    cur.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,))
    if _one(cur) is False:
        raise PermanentError(
            f"{what}: index {name} exists but is INVALID (an earlier build was cut short)",
            guidance=f"drop the index {name} (DROP INDEX CONCURRENTLY) and apply the migration again",
        )


def _scram(password: str) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802, RFC 7677), with a fresh salt."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password), salt, _SCRAM_ITERATIONS)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = [base64.b64encode(part).decode() for part in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64[0]}${b64[1]}:{b64[2]}"


_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21,
    stringprep.in_table_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,
)


def _saslprep(password: str) -> bytes:
    """SASLprep (RFC 4013) as PostgreSQL's pg_saslprep applies it; where it gives up, the password's own bytes."""
    raw = password.encode()
    if password.isascii():
        return raw
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
    # PostgreSQL checks the mapped string, not the normalized one, for prohibited and bidirectional characters.
    if not mapped or any(check(c) for c in mapped for check in _PROHIBITED):
        return raw
    rtl = [stringprep.in_table_d1(c) for c in mapped]
    if any(rtl) and (any(stringprep.in_table_d2(c) for c in mapped) or not (rtl[0] and rtl[-1])):
        return raw
    return unicodedata.normalize("NFKC", mapped).encode()


def database(ref: DatabaseRef, name: str, environ: dict[str, str] | None = None) -> PgAdapter:
    """The adapter for a configured database, its DSN read from the variable the config names."""
    dsn = (environ if environ is not None else dict(os.environ)).get(ref.dsn_env)
    if not dsn:
        raise ConfigError(f"database {name!r} needs its DSN in ${ref.dsn_env}, which is not set")
    if dsn.startswith("postgresql+psycopg://"):
        dsn = "postgresql://" + dsn.removeprefix("postgresql+psycopg://")
    return PgAdapter(
        dsn,
        name,
        statement_timeout_ms=_ms(ref.statement_timeout_seconds),
        lock_timeout_ms=_ms(ref.lock_timeout_seconds),
    )
