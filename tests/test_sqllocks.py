"""The statement-to-lock map used by migration preflight, PostgreSQL's conflict table, and statement splitting."""

from __future__ import annotations

import itertools

import pytest

from workflows.sqllocks import (
    CONFLICTS,
    MODES,
    StatementLock,
    conflicts,
    index_name,
    is_transaction_control,
    lock_for,
    migration_problem,
    split_statements,
)

AS, RS, RX, SUE, S, SRX, X, AX = MODES

LOCKS: list[tuple[str, StatementLock]] = [
    ("CREATE TABLE orders (id bigint PRIMARY KEY)", StatementLock(AX, ("orders",), "CREATE TABLE")),
    (
        "CREATE TABLE IF NOT EXISTS app.lines (order_id bigint REFERENCES orders (id))",
        StatementLock(SRX, ("app.lines", "orders"), "CREATE TABLE"),
    ),
    ("CREATE TABLE m_2024 PARTITION OF m FOR VALUES IN (2024)", StatementLock(AX, ("m_2024", "m"), "CREATE TABLE")),
    ("ALTER TABLE orders ADD COLUMN note text", StatementLock(AX, ("orders",), "ALTER TABLE")),
    ("ALTER TABLE ONLY orders RENAME COLUMN note TO memo", StatementLock(AX, ("orders",), "ALTER TABLE")),
    ("ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk", StatementLock(SUE, ("orders",), "ALTER TABLE")),
    ("ALTER TABLE orders ALTER COLUMN note SET STATISTICS 500", StatementLock(SUE, ("orders",), "ALTER TABLE")),
    (
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
        StatementLock(SRX, ("orders", "users"), "ALTER TABLE"),
    ),
    ("ALTER TABLE orders DISABLE TRIGGER audit", StatementLock(SRX, ("orders",), "ALTER TABLE")),
    (
        "ALTER TABLE orders VALIDATE CONSTRAINT c, ADD COLUMN x int",
        StatementLock(AX, ("orders",), "ALTER TABLE"),
    ),
    ("CREATE INDEX orders_user ON orders (user_id)", StatementLock(S, ("orders",), "CREATE INDEX")),
    (
        "CREATE UNIQUE INDEX ON ONLY public.orders USING btree (id)",
        StatementLock(S, ("public.orders",), "CREATE INDEX"),
    ),
    (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user ON orders (user_id)",
        StatementLock(SUE, ("orders",), "CREATE INDEX CONCURRENTLY", transactional=False),
    ),
    ("DROP TABLE IF EXISTS a, app.b CASCADE", StatementLock(AX, ("a", "app.b"), "DROP TABLE")),
    ("TRUNCATE TABLE ONLY a, b RESTART IDENTITY", StatementLock(AX, ("a", "b"), "TRUNCATE")),
    ("DROP INDEX orders_user", StatementLock(AX, ("orders_user",), "DROP INDEX")),
    (
        "DROP INDEX CONCURRENTLY IF EXISTS orders_user",
        StatementLock(SUE, ("orders_user",), "DROP INDEX CONCURRENTLY", transactional=False),
    ),
    ("REINDEX INDEX orders_user", StatementLock(AX, ("orders_user",), "REINDEX")),
    (
        "REINDEX TABLE CONCURRENTLY orders",
        StatementLock(SUE, ("orders",), "REINDEX CONCURRENTLY", transactional=False),
    ),
    ("INSERT INTO orders (id) VALUES (1)", StatementLock(RX, ("orders",), "INSERT")),
    ("UPDATE orders SET note = '' WHERE id = 1", StatementLock(RX, ("orders",), "UPDATE")),
    ("DELETE FROM orders WHERE id = 1", StatementLock(RX, ("orders",), "DELETE")),
    ("SELECT count(*) FROM orders JOIN users ON true", StatementLock(AS, ("orders", "users"), "SELECT")),
    ("SELECT * FROM orders FOR UPDATE", StatementLock(RS, ("orders",), "SELECT")),
    (
        "CREATE TRIGGER audit AFTER INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit()",
        StatementLock(SRX, ("orders",), "CREATE TRIGGER"),
    ),
    ("VACUUM (ANALYZE) orders", StatementLock(SUE, ("orders",), "VACUUM", transactional=False)),
    ("VACUUM FULL orders", StatementLock(AX, ("orders",), "VACUUM FULL", transactional=False)),
    ("ANALYZE orders", StatementLock(SUE, ("orders",), "ANALYZE")),
    ("LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE", StatementLock(SRX, ("orders",), "LOCK TABLE")),
    ("LOCK orders", StatementLock(AX, ("orders",), "LOCK TABLE")),
    ("GRANT SELECT ON orders TO reporting", StatementLock(AX, (), "UNKNOWN")),
]


@pytest.mark.parametrize(("statement", "expected"), LOCKS, ids=[s for s, _ in LOCKS])
def test_each_kind_of_statement_maps_to_its_documented_lock(statement: str, expected: StatementLock) -> None:
    """Every statement kind the map knows reports the mode, relations and transactionality the manual gives."""
    assert lock_for(statement) == expected


def test_relation_names_are_canonical_sql() -> None:
    """Unquoted names fold to lower case, needless quotes go, and quotes that matter stay."""
    assert lock_for('ALTER TABLE App."Orders" ADD x int').relations == ('app."Orders"',)
    assert lock_for('DROP TABLE "orders"').relations == ("orders",)


def test_comments_before_a_statement_do_not_hide_its_kind() -> None:
    """A leading comment is skipped when reading what the statement is."""
    assert lock_for("-- add a column\n/* ticket 42 */ ALTER TABLE t ADD c int").kind == "ALTER TABLE"


def test_a_column_reference_in_a_new_column_is_reported_at_the_stronger_lock() -> None:
    """ADD COLUMN ... REFERENCES locks two tables differently; both are reported at the stronger mode, to be safe."""
    assert lock_for("ALTER TABLE lines ADD COLUMN user_id int REFERENCES users") == StatementLock(
        AX, ("lines", "users"), "ALTER TABLE"
    )


def test_the_conflict_table_is_symmetric() -> None:
    """If a blocks b then b blocks a, as in the manual's table."""
    for a, b in itertools.product(MODES, MODES):
        assert conflicts(a, b) == conflicts(b, a)


@pytest.mark.parametrize(
    ("mode", "conflicting"),
    [
        (AS, {AX}),
        (RS, {X, AX}),
        (RX, {S, SRX, X, AX}),
        (SUE, {SUE, S, SRX, X, AX}),
        (S, {RX, SUE, SRX, X, AX}),
        (SRX, {RX, SUE, S, SRX, X, AX}),
        (X, {RS, RX, SUE, S, SRX, X, AX}),
        (AX, set(MODES)),
    ],
)
def test_each_mode_conflicts_with_what_the_manual_lists(mode: str, conflicting: set[str]) -> None:
    """Each row of table 13.2 ("Conflicting Lock Modes") of the PostgreSQL manual."""
    assert CONFLICTS[mode] == conflicting
    assert {other for other in MODES if conflicts(mode, other)} == conflicting


def test_spot_checks_of_the_conflict_table() -> None:
    """A reader only waits for AccessExclusive; SUE excludes itself; Share does not exclude Share."""
    assert conflicts(AS, AX) and not conflicts(AS, X)
    assert conflicts(SUE, SUE)
    assert not conflicts(S, S)
    assert not conflicts(RX, RX)


def test_an_unknown_mode_is_refused() -> None:
    """A misspelt mode is an error, not a silent 'no conflict'."""
    with pytest.raises(ValueError, match="AccessExclusive"):
        conflicts("AccessExclusive", AS)


SPLITS: list[tuple[str, list[str]]] = [
    ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
    ("SELECT 1; SELECT 2", ["SELECT 1", "SELECT 2"]),
    ("INSERT INTO t VALUES ('a;b', 'it''s; fine')", ["INSERT INTO t VALUES ('a;b', 'it''s; fine')"]),
    ("SELECT E'a\\';b'; SELECT 2", ["SELECT E'a\\';b'", "SELECT 2"]),
    ('SELECT 1 AS "odd;name"; SELECT 2', ['SELECT 1 AS "odd;name"', "SELECT 2"]),
    (
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; SELECT 2",
        ["CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", "SELECT 2"],
    ),
    (
        "DO $body$ BEGIN RAISE NOTICE '$$;'; END $body$; SELECT 2",
        ["DO $body$ BEGIN RAISE NOTICE '$$;'; END $body$", "SELECT 2"],
    ),
    ("SELECT 1; -- a comment; with a semicolon\nSELECT 2", ["SELECT 1", "SELECT 2"]),
    ("SELECT 1; /* a; /* nested; */ comment; */ SELECT 2", ["SELECT 1", "SELECT 2"]),
    ("-- only a comment;\n/* and another */;;  ;", []),
    ("", []),
    ("SELECT $1::int; SELECT 2", ["SELECT $1::int", "SELECT 2"]),
    (
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;",
        ["CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END"],
    ),
]


@pytest.mark.parametrize(("sql", "expected"), SPLITS, ids=[f"split-{i}" for i in range(len(SPLITS))])
def test_split_statements_ignores_semicolons_that_do_not_end_a_statement(sql: str, expected: list[str]) -> None:
    """Quotes, dollar quotes, comments and BEGIN ATOMIC bodies keep their semicolons; empty statements go."""
    assert split_statements(sql) == expected


def test_semicolons_inside_parentheses_do_not_split() -> None:
    """As in psql, a rule's parenthesised action list stays one statement."""
    assert split_statements("CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b); SELECT 2") == [
        "CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b)",
        "SELECT 2",
    ]


def test_index_name_is_read_from_create_index() -> None:
    """The index a CREATE INDEX makes is named, in canonical form; other statements name none."""
    assert index_name('CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Orders_Id" ON orders (id)') == '"Orders_Id"'
    assert index_name("CREATE INDEX ON orders (id)") is None
    assert index_name("ALTER TABLE orders ADD c int") is None


def test_transaction_control_is_recognised() -> None:
    """BEGIN, COMMIT and their kin are transaction control; a function body's BEGIN is not a statement of its own."""
    assert all(map(is_transaction_control, ["BEGIN", "commit", "START TRANSACTION", "PREPARE TRANSACTION 'x'"]))
    assert not is_transaction_control("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$")


def test_a_transactional_migration_may_not_hold_a_concurrent_index_build() -> None:
    """CREATE INDEX CONCURRENTLY cannot run in a transaction block, so such a file is refused up front."""
    problem = migration_problem(["CREATE INDEX CONCURRENTLY i ON t (x)"], transactional=True)
    assert problem is not None and "CREATE INDEX CONCURRENTLY" in problem.message


def test_a_non_transactional_migration_holds_one_statement() -> None:
    """Two statements cannot run non-transactionally as one migration."""
    assert migration_problem(["SELECT 1", "SELECT 2"], transactional=False) is not None
    assert migration_problem(["CREATE INDEX CONCURRENTLY i ON t (x)"], transactional=False) is None


def test_a_migration_may_not_control_its_own_transaction() -> None:
    """BEGIN/COMMIT in a file would end the transaction opsbot opened for it."""
    assert migration_problem(["BEGIN", "ALTER TABLE t ADD c int", "COMMIT"], transactional=True) is not None
