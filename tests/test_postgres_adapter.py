"""The PostgreSQL adapter against the real server: timeouts, locks, classification, no DSN in errors."""

from __future__ import annotations

import threading

import psycopg
import pytest

from adapters.postgres import PgAdapter, classify_pg, database
from workflows.config import DatabaseRef
from workflows.errors import ConfigError, PermanentError, TransientError

CANARY = "CANARY-pg-41"


@pytest.fixture
def dsn(pg_url: str) -> str:
    return "postgresql://" + pg_url.split("://", 1)[1]


def test_database_dsn_comes_from_the_named_variable(dsn: str) -> None:
    """The config names a variable; a missing one is a clear error that shows no value."""
    adapter = database(DatabaseRef(dsn_env="BILLING_DSN"), "billing", {"BILLING_DSN": dsn})
    assert adapter.fetch_value("SELECT 41 + 1") == 42
    with pytest.raises(ConfigError, match=r"\$BILLING_DSN"):
        database(DatabaseRef(dsn_env="BILLING_DSN"), "billing", {})


def test_the_adapter_factory_finds_databases_by_their_config_name(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workflows ask for a database by its name in the environment; the factory reads its variable."""
    from adapters.aws import BotoAdapters
    from workflows.config import Environment

    monkeypatch.setenv("BILLING_DSN", dsn)
    env = Environment(databases={"billing": DatabaseRef(dsn_env="BILLING_DSN")})
    assert BotoAdapters().database(env, "billing").fetch_value("SELECT 1") == 1
    with pytest.raises(ConfigError, match="no database 'ledger'"):
        BotoAdapters().database(env, "ledger")


def test_lock_timeout_is_transient(dsn: str) -> None:
    """A statement waiting on a lock past lock_timeout fails as transient, not as a hang."""
    holder = psycopg.connect(dsn)
    holder.execute("CREATE TABLE IF NOT EXISTS pg_adapter_t (id int)")
    holder.commit()
    holder.execute("LOCK TABLE pg_adapter_t IN ACCESS EXCLUSIVE MODE")
    try:
        adapter = PgAdapter(dsn, "billing", lock_timeout_ms=200)
        with pytest.raises(TransientError, match="55P03"):
            adapter.fetch_value("SELECT count(*) FROM pg_adapter_t")
    finally:
        holder.rollback()
        holder.close()


def test_statement_timeout_is_transient(dsn: str) -> None:
    """A statement over statement_timeout is cancelled by the server and classified transient."""
    with pytest.raises(TransientError, match="57014"):
        PgAdapter(dsn, "billing", statement_timeout_ms=100).fetch_value("SELECT pg_sleep(2)")


def test_bad_sql_is_permanent(dsn: str) -> None:
    """A syntax error is permanent: retrying cannot help."""
    with pytest.raises(PermanentError, match="42601"):
        PgAdapter(dsn, "billing").fetch_value("SELEC 1")


def test_advisory_lock_excludes_a_second_operation(dsn: str) -> None:
    """While one operation holds a named lock, another is refused at once instead of queueing behind it."""
    a, b = PgAdapter(dsn, "billing"), PgAdapter(dsn, "billing")
    inside = threading.Event()
    with a.advisory_lock("schema:billing"):
        inside.set()
        with pytest.raises(TransientError, match="holds the lock"), b.advisory_lock("schema:billing"):
            pass
    with b.advisory_lock("schema:billing"):
        assert inside.is_set()


def test_unreachable_database_is_transient_and_hides_the_password() -> None:
    """A refused connection is transient, and its message carries no credentials."""
    adapter = PgAdapter(f"postgresql://ops:{CANARY}@127.0.0.1:1/nowhere", "billing")
    with pytest.raises(TransientError) as info:
        adapter.fetch_value("SELECT 1")
    assert CANARY not in str(info.value)


def test_classification_scrubs_dsns_from_messages() -> None:
    """Whatever the server says, a DSN inside the message is masked."""
    err = classify_pg(psycopg.OperationalError(f"could not connect to postgresql://u:{CANARY}@h/db"), "connect")
    assert isinstance(err, TransientError) and CANARY not in str(err)
