"""PostgreSQL as workflows need it: short transactions under timeouts, advisory locks, SQLSTATE classification.

A database is named in the config by the environment variable holding its DSN; the DSN is read here, at the
boundary, and never appears in an error, a log line or the audit log.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from workflows.config import DatabaseRef
from workflows.errors import ConfigError, OutcomeUnknown, PermanentError, TransientError
from workflows.redaction import redact_text

# SQLSTATE classes and codes where trying again later is the right answer.
_TRANSIENT_CLASSES = ("08", "53", "57P")  # connection, insufficient resources, operator intervention / shutdown
_TRANSIENT_CODES = {"40001", "40P01", "55P03", "57014"}  # serialization, deadlock, lock timeout, statement timeout


def classify_pg(exc: BaseException, what: str) -> Exception:
    """Map a psycopg error onto the step contract, with the message scrubbed of credentials."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    message = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    if isinstance(exc, psycopg.OperationalError) and not sqlstate:
        return TransientError(f"{what}: cannot reach the database ({message})")
    if sqlstate in _TRANSIENT_CODES or sqlstate.startswith(_TRANSIENT_CLASSES):
        return TransientError(f"{what}: {sqlstate} {message}")
    if isinstance(exc, pg_errors.QueryCanceled | psycopg.InterfaceError):
        return OutcomeUnknown(f"{what}: {message}")
    return PermanentError(
        f"{what}: {sqlstate} {message}".strip(), guidance="check the statement and the database's state"
    )


class PgAdapter:
    """One database. Every call opens a short transaction with statement and lock timeouts set locally."""

    def __init__(self, dsn: str, name: str, statement_timeout_ms: int = 30_000, lock_timeout_ms: int = 5_000) -> None:
        self._dsn, self.name = dsn, name
        self.statement_timeout_ms, self.lock_timeout_ms = statement_timeout_ms, lock_timeout_ms

    @contextmanager
    def _connection(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        try:
            with psycopg.connect(self._dsn, connect_timeout=10, autocommit=True) as conn:
                yield conn
        except psycopg.Error as exc:
            raise classify_pg(exc, what) from None

    @contextmanager
    def transaction(self, what: str = "transaction") -> Iterator[psycopg.Cursor[Any]]:
        """A short transaction; the timeouts bound how long it can block application traffic."""
        with self._connection(what) as conn:
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(f"SET LOCAL statement_timeout = {int(self.statement_timeout_ms)}")
                    cur.execute(f"SET LOCAL lock_timeout = {int(self.lock_timeout_ms)}")
                    yield cur
            except psycopg.Error as exc:
                raise classify_pg(exc, what) from None

    def fetch_value(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self.transaction("query") as cur:
            cur.execute(sql, params)  # workflows pass literal, parameterised SQL
            row = cur.fetchone()
        return row[0] if row else None

    @contextmanager
    def advisory_lock(self, key: str) -> Iterator[None]:
        """An operation-wide lock, held for the block; another operation holding it is a transient refusal."""
        lock_id = zlib.crc32(key.encode())
        with self._connection(f"advisory lock {key}") as conn:
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_id,)).fetchone()[0]:  # type: ignore[index]
                raise TransientError(f"another operation holds the lock {key!r} on {self.name}")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,))

    def replication_lag_seconds(self) -> float | None:
        """Replay lag on a standby (None on a primary)."""
        value = self.fetch_value(
            "SELECT CASE WHEN pg_is_in_recovery() THEN EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
        )
        return float(value) if value is not None else None


def database(ref: DatabaseRef, name: str, environ: dict[str, str] | None = None) -> PgAdapter:
    """The adapter for a configured database, its DSN read from the variable the config names."""
    dsn = (environ if environ is not None else dict(os.environ)).get(ref.dsn_env)
    if not dsn:
        raise ConfigError(f"database {name!r} needs its DSN in ${ref.dsn_env}, which is not set")
    if dsn.startswith("postgresql+psycopg://"):
        dsn = "postgresql://" + dsn.removeprefix("postgresql+psycopg://")
    return PgAdapter(dsn, name)
