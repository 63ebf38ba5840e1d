"""The PostgreSQL adapter against real servers: timeouts, classification, migrations, lock preflight and passwords."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from structlog.testing import capture_logs

from adapters.postgres import PgAdapter, classify_pg, database
from workflows.config import DatabaseRef
from workflows.errors import AlreadyExists, ConfigError, OutcomeUnknown, PermanentError, TransientError
from workflows.outside import AppliedMigration

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


@pytest.mark.parametrize(
    ("sqlstate", "expected", "named"),
    [
        ("40001", TransientError, "serialization failure"),
        ("40P01", TransientError, "deadlock"),
        ("55P03", TransientError, "lock timeout"),
        ("53300", TransientError, "too many connections"),
        ("57014", TransientError, "statement timeout"),
        ("08006", TransientError, "cannot reach"),
        ("57P01", TransientError, "cannot reach"),
        ("23505", PermanentError, "23505"),
        ("42P01", PermanentError, "42P01"),
    ],
)
def test_sqlstates_map_onto_the_step_contract(sqlstate: str, expected: type[Exception], named: str) -> None:
    """Each SQLSTATE class lands on the retry contract the executor reads, and the message says which it was."""
    error = classify_pg(psycopg.errors.lookup(sqlstate)("the server said so"), "query")
    assert type(error) is expected and named in str(error)


def test_a_connection_lost_while_committing_is_an_unknown_outcome() -> None:
    """The commit may or may not have happened, so the caller must observe before anything else."""
    assert isinstance(
        classify_pg(psycopg.OperationalError("server closed the connection"), "c", in_flight=True), OutcomeUnknown
    )
    assert isinstance(classify_pg(psycopg.errors.lookup("08006")("gone"), "c", in_flight=True), OutcomeUnknown)


def test_a_failed_definite_commit_is_not_unknown() -> None:
    """A serialization failure at COMMIT is a definite rollback: transient, not unknown."""
    assert type(classify_pg(psycopg.errors.lookup("40001")("no"), "c", in_flight=True)) is TransientError


def _terminate_when_running(dsn: str, query: str) -> threading.Thread:
    """Terminate, from another session, the backend running `query` (make it unique) as soon as it shows up."""

    def terminate() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for _ in range(100):
                row = conn.execute("SELECT pid FROM pg_stat_activity WHERE query = %s", (query,)).fetchone()
                if row:
                    conn.execute("SELECT pg_terminate_backend(%s)", row)
                    return
                time.sleep(0.05)

    killer = threading.Thread(target=terminate)
    killer.start()
    return killer


def test_a_session_killed_inside_a_transaction_is_transient(dsn: str) -> None:
    """A transaction cut off before COMMIT certainly did not commit: it is safe to try again."""
    query = f"SELECT pg_sleep(5) AS t_{uuid.uuid4().hex}"
    killer = _terminate_when_running(dsn, query)
    with pytest.raises(TransientError):
        PgAdapter(dsn, "billing").fetch_value(query)
    killer.join()


def test_a_session_killed_while_a_statement_commits_itself_is_an_unknown_outcome(schema_dsn: str) -> None:
    """A non-transactional statement is its own commit: cut off, its outcome is unknown."""
    query = f"SELECT pg_sleep(5) AS t_{uuid.uuid4().hex}"
    killer = _terminate_when_running(schema_dsn, query)
    with pytest.raises(OutcomeUnknown):
        _adapter(schema_dsn).apply_migration("0009", "c9", query, transactional=False)
    killer.join()


# --- migrations, indexes and lock preflight, each test in a schema of its own ---------------------------------------


@pytest.fixture
def schema_dsn(dsn: str) -> Iterator[str]:
    """A DSN whose search_path is a fresh schema, so each test has its own tables and migrations table."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield make_conninfo(dsn, options=f"-csearch_path={schema}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _adapter(dsn: str, **timeouts: float) -> PgAdapter:
    """The adapter as the app builds it, from a DatabaseRef with these timeouts."""
    return database(DatabaseRef(dsn_env="BILLING_DSN", **timeouts), "billing", {"BILLING_DSN": dsn})


def _run(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _orders(dsn: str) -> None:
    _run(dsn, "CREATE TABLE orders (id int, user_id int)", "INSERT INTO orders VALUES (1, 1), (2, 1)")


def test_applied_migrations_is_empty_before_the_first_and_creates_nothing(schema_dsn: str) -> None:
    """Reading the migrations of a fresh database does not create the migrations table."""
    adapter = _adapter(schema_dsn)
    assert adapter.applied_migrations() == []
    assert adapter.fetch_value("SELECT to_regclass('opsbot_schema_migrations')") is None


def test_a_transactional_migration_is_applied_with_its_row(schema_dsn: str) -> None:
    """The statements and the version row commit together."""
    adapter = _adapter(schema_dsn)
    adapter.apply_migration("0001", "c1", "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);", transactional=True)
    assert adapter.applied_migrations() == [AppliedMigration("0001", "c1")]
    assert adapter.fetch_value("SELECT count(*) FROM a") == 1


def test_a_failing_statement_leaves_neither_its_effects_nor_its_row(schema_dsn: str) -> None:
    """The third statement fails, so the table the first created and the version row are rolled back."""
    adapter = _adapter(schema_dsn)
    with pytest.raises(PermanentError, match=r"statement 3 .*22012"):
        adapter.apply_migration(
            "0001", "c1", "CREATE TABLE a (id int); INSERT INTO a VALUES (1); SELECT 1 / 0;", transactional=True
        )
    assert adapter.fetch_value("SELECT to_regclass('a')") is None
    assert adapter.applied_migrations() == []


def test_the_ref_statement_timeout_bounds_each_migration_statement(schema_dsn: str) -> None:
    """statement_timeout_seconds from the config cancels a statement that runs too long."""
    with pytest.raises(TransientError, match="57014"):
        _adapter(schema_dsn, statement_timeout_seconds=0.2).apply_migration(
            "0001", "c1", "SELECT pg_sleep(2)", transactional=True
        )


def test_a_concurrent_index_build_is_applied_then_recorded(schema_dsn: str) -> None:
    """CREATE INDEX CONCURRENTLY runs in autocommit, then its version row is written."""
    _orders(schema_dsn)
    adapter = _adapter(schema_dsn)
    adapter.apply_migration(
        "0002", "c2", "CREATE INDEX CONCURRENTLY orders_user ON orders (user_id);", transactional=False
    )
    assert adapter.index_valid("orders_user") is True
    assert adapter.applied_migrations() == [AppliedMigration("0002", "c2")]


def _invalid_index(dsn: str) -> None:
    """A unique index over duplicate values: the concurrent build fails and leaves the index INVALID."""
    _run(dsn, "CREATE TABLE dup (v int)", "INSERT INTO dup VALUES (1), (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        _run(dsn, "CREATE UNIQUE INDEX CONCURRENTLY dup_v ON dup (v)")


def test_index_valid_tells_valid_invalid_and_absent(schema_dsn: str) -> None:
    """indisvalid is reported for an index that exists, None for one that does not."""
    _orders(schema_dsn)
    _run(schema_dsn, "CREATE INDEX orders_id ON orders (id)")
    _invalid_index(schema_dsn)
    adapter = _adapter(schema_dsn)
    assert (adapter.index_valid("orders_id"), adapter.index_valid("dup_v"), adapter.index_valid("nope")) == (
        True,
        False,
        None,
    )


def test_if_not_exists_over_an_invalid_index_is_not_recorded_as_applied(schema_dsn: str) -> None:
    """PostgreSQL skips the INVALID index silently; the adapter refuses to record the migration over it."""
    _invalid_index(schema_dsn)
    _run(schema_dsn, "DELETE FROM dup")
    adapter = _adapter(schema_dsn)
    with pytest.raises(PermanentError, match="INVALID"):
        adapter.apply_migration(
            "0003", "c3", "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS dup_v ON dup (v)", transactional=False
        )
    assert adapter.applied_migrations() == []


def test_drop_index_removes_an_invalid_index(schema_dsn: str) -> None:
    """drop_index clears the way for the build to run again; dropping it twice is harmless."""
    _invalid_index(schema_dsn)
    adapter = _adapter(schema_dsn)
    adapter.drop_index("dup_v")
    adapter.drop_index("dup_v")
    assert adapter.index_valid("dup_v") is None


@pytest.fixture
def reader(schema_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A session of billing-api that read `orders` and sits idle in its transaction, holding AccessShareLock."""
    _orders(schema_dsn)
    conn = psycopg.connect(schema_dsn, application_name="billing-api")
    conn.execute("SELECT count(*) FROM orders")
    yield conn
    conn.rollback()
    conn.close()


def test_a_reader_idle_in_transaction_times_a_migration_out(schema_dsn: str, reader: psycopg.Connection[Any]) -> None:
    """ALTER TABLE waits for the reader only as long as lock_timeout, then fails as a transient lock timeout."""
    adapter = _adapter(schema_dsn, lock_timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(TransientError, match="lock timeout"):
        adapter.apply_migration("0004", "c4", "ALTER TABLE orders ADD COLUMN note text;", transactional=True)
    assert time.monotonic() - started < 3
    assert adapter.applied_migrations() == []


def test_conflicting_sessions_names_the_reader(schema_dsn: str, reader: psycopg.Connection[Any]) -> None:
    """Lock preflight reports the reader's pid, user, application, state and lock."""
    adapter = _adapter(schema_dsn)
    [session] = adapter.conflicting_sessions(["orders"], "AccessExclusiveLock")
    user = reader.execute("SELECT current_user").fetchone()
    assert (session.pid, session.user, session.application) == (
        reader.info.backend_pid,
        user and user[0],
        "billing-api",
    )
    assert (session.state, session.mode, session.relation) == ("idle in transaction", "AccessShareLock", "orders")


def test_a_reader_does_not_conflict_with_a_concurrent_index_build(
    schema_dsn: str, reader: psycopg.Connection[Any]
) -> None:
    """AccessShareLock does not conflict with ShareUpdateExclusiveLock."""
    assert _adapter(schema_dsn).conflicting_sessions(["orders"], "ShareUpdateExclusiveLock") == []


def test_long_transactions_finds_the_reader(schema_dsn: str, reader: psycopg.Connection[Any]) -> None:
    """The reader's transaction, older than the threshold, is found; the adapter's own session is not."""
    time.sleep(0.3)
    found = _adapter(schema_dsn).long_transactions(0.2)
    assert reader.info.backend_pid in [s.pid for s in found]
    assert all(s.application != "opsbot" for s in found)


def test_long_transactions_leaves_out_other_databases(schema_dsn: str, pg_server_url: str) -> None:
    """A transaction open in another database of the server is none of this database's business."""
    other = psycopg.connect("postgresql://" + pg_server_url.split("://", 1)[1])
    try:
        other.execute("SELECT 1")
        time.sleep(0.3)
        assert other.info.backend_pid not in [s.pid for s in _adapter(schema_dsn).long_transactions(0.2)]
    finally:
        other.rollback()
        other.close()


@pytest.fixture
def writer(schema_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A session that wrote to `orders` and has not committed (a concurrent index build waits for it)."""
    _orders(schema_dsn)
    conn = psycopg.connect(schema_dsn, application_name="billing-api")
    conn.execute("INSERT INTO orders VALUES (3, 2)")
    yield conn
    conn.rollback()
    conn.close()


def test_a_concurrent_build_that_times_out_is_an_unknown_outcome(
    schema_dsn: str, writer: psycopg.Connection[Any]
) -> None:
    """Timed out while waiting for a writer, the build leaves an INVALID index: the outcome is not 'nothing'."""
    adapter = _adapter(schema_dsn, lock_timeout_seconds=0.5)
    with pytest.raises(OutcomeUnknown, match="lock timeout"):
        adapter.apply_migration("0005", "c5", "CREATE INDEX CONCURRENTLY orders_id ON orders (id)", transactional=False)
    assert adapter.index_valid("orders_id") is False


def test_index_build_in_progress_sees_a_concurrent_build(schema_dsn: str, writer: psycopg.Connection[Any]) -> None:
    """While the build waits for the writer it is in progress; once done it is not."""
    adapter = _adapter(schema_dsn, lock_timeout_seconds=10)
    build = threading.Thread(
        target=adapter.apply_migration,
        args=("0006", "c6", "CREATE INDEX CONCURRENTLY orders_id ON orders (id)"),
        kwargs={"transactional": False},
    )
    build.start()
    deadline = time.monotonic() + 5
    while not adapter.index_build_in_progress("orders_id") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert adapter.index_build_in_progress("orders_id")
    writer.commit()
    build.join(10)
    assert not adapter.index_build_in_progress("orders_id")
    assert adapter.index_valid("orders_id") is True


def test_the_advisory_lock_session_is_never_in_a_transaction(dsn: str) -> None:
    """The session holding the advisory lock sits idle, not idle in transaction (which would hold back vacuum)."""
    adapter = PgAdapter(dsn, "billing")
    with adapter.advisory_lock("schema:idle"):
        state = adapter.fetch_value(
            "SELECT a.state FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.classid = %s AND l.granted AND a.datname = current_database()",
            (0x6F707362,),
        )
    assert state == "idle"


def test_a_server_without_standbys_reports_no_replica_lag(dsn: str) -> None:
    """pg_stat_replication is empty, so there is no standby to report."""
    assert PgAdapter(dsn, "billing").replicas_lag_seconds() == {}


def test_the_ref_timeouts_reach_the_adapter(dsn: str) -> None:
    """database() passes the configured timeouts on, in milliseconds."""
    adapter = _adapter(dsn, lock_timeout_seconds=0.5, statement_timeout_seconds=7)
    assert (adapter.lock_timeout_ms, adapter.statement_timeout_ms) == (500, 7000)
    assert adapter.fetch_value("SELECT current_setting('lock_timeout')") == "500ms"


# --- roles and passwords, on a cluster that really checks passwords ---------------------------------------------------


def _role(dsn: str, *statements: str) -> str:
    """A fresh role name, after running `statements` (formatted with it) as the admin."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    _run(dsn, *(s.format(role=role) for s in statements))
    return role


def test_set_password_changes_who_can_log_in(scram_pg_dsn: str) -> None:
    """The new password logs in; the old one and a wrong one do not."""
    role = _role(scram_pg_dsn, "CREATE ROLE {role} LOGIN PASSWORD 'old-password'")
    adapter = PgAdapter(scram_pg_dsn, "billing")
    assert adapter.can_login(role, "old-password")
    adapter.set_password(role, "new-password")
    assert adapter.can_login(role, "new-password")
    assert not adapter.can_login(role, "old-password")
    assert not adapter.can_login(role, "wrong")


def test_the_server_stores_the_verifier_sent(scram_pg_dsn: str) -> None:
    """What reaches pg_authid is a SCRAM-SHA-256 verifier with 4096 iterations, never the password."""
    role = _role(scram_pg_dsn, "CREATE ROLE {role} LOGIN")
    adapter = PgAdapter(scram_pg_dsn, "billing")
    adapter.set_password(role, CANARY)
    stored = adapter.fetch_value("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
    assert stored.startswith("SCRAM-SHA-256$4096:") and CANARY not in stored


def test_a_non_ascii_password_is_prepared_as_postgresql_prepares_it(scram_pg_dsn: str) -> None:
    """SASLprep maps a non-ASCII space and normalises, as the server does when the client logs in."""
    role = _role(scram_pg_dsn, "CREATE ROLE {role} LOGIN")
    adapter = PgAdapter(scram_pg_dsn, "billing")
    adapter.set_password(role, "pass\u00a0word-\u2168")
    assert adapter.can_login(role, "pass\u00a0word-\u2168")


def test_a_role_that_may_not_log_in_cannot(scram_pg_dsn: str) -> None:
    """NOLOGIN refuses the connection even with the right password: False, not an error."""
    role = _role(scram_pg_dsn, "CREATE ROLE {role} NOLOGIN")
    adapter = PgAdapter(scram_pg_dsn, "billing")
    adapter.set_password(role, "pw")
    assert not adapter.can_login(role, "pw")


def test_a_clone_logs_in_with_the_grants_of_its_role(scram_pg_dsn: str) -> None:
    """The clone made by create_clone, once given a password, can read what its role may read."""
    role = _role(
        scram_pg_dsn,
        "CREATE ROLE {role} NOLOGIN",
        "CREATE TABLE {role}_t (x int)",
        "GRANT SELECT ON {role}_t TO {role}",
    )
    adapter = PgAdapter(scram_pg_dsn, "billing")
    adapter.create_clone(role, f"{role}_clone")
    adapter.set_password(f"{role}_clone", "clone-pw")
    host, port, dbname = adapter.endpoint()
    with psycopg.connect(host=host, port=port, dbname=dbname, user=f"{role}_clone", password="clone-pw") as conn:
        assert conn.execute(f"SELECT count(*) FROM {role}_t").fetchone() == (0,)


def test_create_clone_again_is_a_no_op(scram_pg_dsn: str) -> None:
    """A clone that exists as a member of the role is left as it is."""
    role = _role(scram_pg_dsn, "CREATE ROLE {role}")
    adapter = PgAdapter(scram_pg_dsn, "billing")
    adapter.create_clone(role, f"{role}_clone")
    adapter.create_clone(role, f"{role}_clone")
    assert adapter.role_exists(f"{role}_clone")


def test_a_clone_name_taken_by_a_stranger_is_not_adopted(scram_pg_dsn: str) -> None:
    """A role of the clone's name that is not a member of the role is refused as AlreadyExists."""
    role = _role(scram_pg_dsn, "CREATE ROLE {role}", "CREATE ROLE {role}_clone")
    with pytest.raises(AlreadyExists):
        PgAdapter(scram_pg_dsn, "billing").create_clone(role, f"{role}_clone")


def test_endpoint_comes_from_the_dsn(scram_pg_dsn: str) -> None:
    """Host, port and database name are read from the admin DSN."""
    info = conninfo_to_dict(scram_pg_dsn)
    assert PgAdapter(scram_pg_dsn, "billing").endpoint() == ("127.0.0.1", int(str(info["port"])), "postgres")


def test_the_password_never_leaves_the_adapter(
    scram_pg_dsn: str, scram_pg_log: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not in a log line, an error, pg_stat_activity while ALTER ROLE waits or after, nor the server's log."""
    role = _role(scram_pg_dsn, "CREATE ROLE {role} LOGIN")
    adapter = PgAdapter(scram_pg_dsn, "billing")
    blocker = psycopg.connect(scram_pg_dsn)
    blocker.execute(f"ALTER ROLE {role} CONNECTION LIMIT 5")  # holds the role's row until rollback
    seen: list[str] = []
    with capture_logs() as events:
        setting = threading.Thread(target=adapter.set_password, args=(role, CANARY))
        setting.start()
        with psycopg.connect(scram_pg_dsn, autocommit=True) as observer:
            deadline = time.monotonic() + 5
            while not any("PASSWORD" in q for q in seen) and time.monotonic() < deadline:
                rows = observer.execute("SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid()").fetchall()
                seen += [str(query) for (query,) in rows]
            blocker.rollback()
            setting.join(10)
            seen += [str(q) for (q,) in observer.execute("SELECT query FROM pg_stat_activity").fetchall()]
        assert adapter.can_login(role, CANARY) and not adapter.can_login(role, CANARY + "x")
        with pytest.raises(PermanentError) as missing:
            adapter.set_password("no_such_role", CANARY)
    blocker.close()
    assert any("PASSWORD 'SCRAM-SHA-256$4096:" in q for q in seen)  # seen while it ran
    assert events and all(CANARY not in repr(e) for e in events)
    assert CANARY not in caplog.text
    assert CANARY not in f"{missing.value} {missing.value.guidance}"
    assert not any(CANARY in q for q in seen)
    assert CANARY not in scram_pg_log.read_text()
