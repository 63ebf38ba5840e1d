"""The scripted PostgreSQL database: the quirks of migrations, locks, indexes and roles that workflows must meet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conformance.scripted_pg import (
    ScriptedDatabase,
    add_database,
    add_index,
    add_role,
    hold_lock,
    release_locks,
    set_replay_lag,
    set_replica_lag,
)
from conformance.world import Fault, ScriptedWorld
from workflows.errors import AlreadyExists, OutcomeUnknown, PermanentError, TransientError
from workflows.outside import AppliedMigration, DatabasePort

ADD_NOTE = "ALTER TABLE orders ADD COLUMN note text;"
CIC = "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user ON orders (user_id);"


@pytest.fixture
def world() -> ScriptedWorld:
    world = ScriptedWorld()
    add_database(world, "billing", host="billing.db.local", port=6432, dbname="billing_prod")
    return world


@pytest.fixture
def db(world: ScriptedWorld) -> DatabasePort:
    return ScriptedDatabase(world, "billing")


def test_a_transactional_migration_is_applied_with_its_row(world: ScriptedWorld, db: DatabasePort) -> None:
    """The file's statements and its version row land together, counted as one effect."""
    db.apply_migration("0001", "c1", "CREATE TABLE orders (id int); " + ADD_NOTE, transactional=True)
    assert db.applied_migrations() == [AppliedMigration("0001", "c1")]
    assert world.effects() == {"apply_migration:billing/0001": 1}


def test_a_failing_statement_leaves_neither_its_effects_nor_its_row(world: ScriptedWorld, db: DatabasePort) -> None:
    """The second CREATE TABLE fails, so the first one and the version row are rolled back with it."""
    with pytest.raises(PermanentError, match="42P07"):
        db.apply_migration("0001", "c1", "CREATE TABLE a (id int); CREATE TABLE a (id int);", transactional=True)
    assert db.applied_migrations() == []
    assert world.read()["databases"]["billing"]["tables"] == []


def test_applying_a_recorded_version_again_changes_nothing(world: ScriptedWorld, db: DatabasePort) -> None:
    """Retrying after an unknown outcome is safe: the same version and checksum is a no-op."""
    db.apply_migration("0001", "c1", "CREATE TABLE a (id int);", transactional=True)
    db.apply_migration("0001", "c1", "CREATE TABLE a (id int);", transactional=True)
    assert world.effects() == {"apply_migration:billing/0001": 1}


def test_a_changed_file_for_an_applied_version_is_refused(db: DatabasePort) -> None:
    """A checksum that differs from the recorded one means the file was edited after it ran."""
    db.apply_migration("0001", "c1", "CREATE TABLE a (id int);", transactional=True)
    with pytest.raises(PermanentError, match="checksum c1"):
        db.apply_migration("0001", "c2", "CREATE TABLE a (id bigint);", transactional=True)


def test_a_lost_answer_after_a_transactional_migration_leaves_it_applied(
    world: ScriptedWorld, db: DatabasePort
) -> None:
    """The commit happened but the answer did not arrive: the caller cannot tell, the row is there."""
    world.fail("apply_migration", Fault.LOST_ANSWER)
    with pytest.raises(OutcomeUnknown):
        db.apply_migration("0001", "c1", "CREATE TABLE a (id int);", transactional=True)
    assert db.applied_migrations() == [AppliedMigration("0001", "c1")]


def test_a_held_conflicting_lock_times_the_migration_out(world: ScriptedWorld, db: DatabasePort) -> None:
    """A session reading the table blocks ALTER TABLE until lock_timeout: transient, nothing applied."""
    hold_lock(world, "billing", "orders", "AccessShareLock")
    with pytest.raises(TransientError, match="lock timeout"):
        db.apply_migration("0002", "c2", ADD_NOTE, transactional=True)
    assert db.applied_migrations() == []
    assert world.effects() == {}


def test_the_migration_applies_once_the_locks_are_released(world: ScriptedWorld, db: DatabasePort) -> None:
    """When the holding session ends its transaction, the same migration goes through."""
    hold_lock(world, "billing", "public.orders", "RowExclusiveLock")
    with pytest.raises(TransientError):
        db.apply_migration("0002", "c2", ADD_NOTE, transactional=True)
    release_locks(world, "billing")
    db.apply_migration("0002", "c2", ADD_NOTE, transactional=True)
    assert db.applied_migrations() == [AppliedMigration("0002", "c2")]


def test_a_lock_that_does_not_conflict_does_not_block(db: DatabasePort, world: ScriptedWorld) -> None:
    """Writers (RowExclusive) do not block CREATE INDEX CONCURRENTLY (ShareUpdateExclusive)."""
    hold_lock(world, "billing", "orders", "RowExclusiveLock")
    db.apply_migration("0003", "c3", CIC, transactional=False)
    assert db.index_valid("orders_user") is True


def test_a_lock_timeout_of_a_concurrent_build_is_an_unknown_outcome(world: ScriptedWorld, db: DatabasePort) -> None:
    """A CONCURRENTLY statement may time out after its first transaction, so the caller must look before retrying."""
    hold_lock(world, "billing", "orders", "ShareLock")
    with pytest.raises(OutcomeUnknown, match="lock timeout"):
        db.apply_migration("0003", "c3", CIC, transactional=False)


def test_conflicting_sessions_names_the_holder(world: ScriptedWorld, db: DatabasePort) -> None:
    """Lock preflight finds the session, its user, application, how long and what it holds."""
    hold_lock(world, "billing", "orders", "AccessShareLock", pid=77, user="app", application="billing-api", seconds=95)
    [session] = db.conflicting_sessions(["orders"], "AccessExclusiveLock")
    assert (session.pid, session.user, session.application, session.seconds) == (77, "app", "billing-api", 95)
    assert (session.mode, session.relation) == ("AccessShareLock", "orders")
    assert db.conflicting_sessions(["orders"], "RowExclusiveLock") == []


def test_an_index_stands_for_its_table_in_lock_preflight(world: ScriptedWorld, db: DatabasePort) -> None:
    """Dropping an index locks its table, so a session on the table is reported for the index."""
    add_index(world, "billing", "orders_user", valid=True, table="orders")
    hold_lock(world, "billing", "orders", "AccessShareLock")
    assert [s.relation for s in db.conflicting_sessions(["orders_user"], "AccessExclusiveLock")] == ["orders"]


def test_long_transactions_are_found_by_age(world: ScriptedWorld, db: DatabasePort) -> None:
    """A session holding locks for 95 s is a long transaction at 60 s, not at 120 s."""
    hold_lock(world, "billing", "orders", "AccessShareLock", pid=77, seconds=95)
    assert [s.pid for s in db.long_transactions(60)] == [77]
    assert db.long_transactions(120) == []


def test_a_concurrent_index_build_applies_then_records_its_row(world: ScriptedWorld, db: DatabasePort) -> None:
    """The non-transactional path creates a valid index, then writes the version row."""
    db.apply_migration("0003", "c3", CIC, transactional=False)
    assert db.index_valid("orders_user") is True
    assert db.applied_migrations() == [AppliedMigration("0003", "c3")]
    assert world.calls()["record_migration"] == 1


def test_a_lost_answer_leaves_a_concurrent_index_invalid_and_unrecorded(world: ScriptedWorld, db: DatabasePort) -> None:
    """A build cut short after its first transaction leaves an INVALID index and no version row."""
    world.fail("apply_migration", Fault.LOST_ANSWER)
    with pytest.raises(OutcomeUnknown):
        db.apply_migration("0003", "c3", CIC, transactional=False)
    assert db.index_valid("orders_user") is False
    assert db.applied_migrations() == []


def test_a_lost_version_row_leaves_the_index_built_but_unrecorded(world: ScriptedWorld, db: DatabasePort) -> None:
    """Between the statement and its row the outcome can be lost too: the index is valid, the row is not there."""
    world.fail("record_migration", Fault.UNKNOWN)
    with pytest.raises(OutcomeUnknown):
        db.apply_migration("0003", "c3", CIC, transactional=False)
    assert db.index_valid("orders_user") is True
    assert db.applied_migrations() == []


def test_if_not_exists_silently_keeps_an_invalid_index(world: ScriptedWorld, db: DatabasePort) -> None:
    """As in PostgreSQL, IF NOT EXISTS skips an INVALID index; the version row is then refused."""
    add_index(world, "billing", "orders_user", valid=False, table="orders")
    with pytest.raises(PermanentError, match="INVALID"):
        db.apply_migration("0003", "c3", CIC, transactional=False)
    assert db.index_valid("orders_user") is False
    assert db.applied_migrations() == []


def test_dropping_the_invalid_index_lets_the_build_run_again(world: ScriptedWorld, db: DatabasePort) -> None:
    """drop_index then apply_migration is the way out of an INVALID index."""
    add_index(world, "billing", "orders_user", valid=False, table="orders")
    db.drop_index("orders_user")
    db.apply_migration("0003", "c3", CIC, transactional=False)
    assert db.index_valid("orders_user") is True
    assert world.effects()["drop_index:billing/orders_user"] == 1


def test_dropping_an_absent_index_is_no_effect(world: ScriptedWorld, db: DatabasePort) -> None:
    """DROP INDEX ... IF EXISTS on nothing succeeds and changes nothing."""
    db.drop_index("nope")
    assert world.effects() == {}


def test_a_concurrent_build_without_if_not_exists_fails_over_an_existing_index(
    world: ScriptedWorld, db: DatabasePort
) -> None:
    """Without IF NOT EXISTS the name clash is PostgreSQL's 42P07."""
    add_index(world, "billing", "orders_user", valid=True, table="orders")
    with pytest.raises(PermanentError, match="42P07"):
        db.apply_migration(
            "0003", "c3", "CREATE INDEX CONCURRENTLY orders_user ON orders (user_id)", transactional=False
        )


def test_index_build_in_progress_reports_a_seeded_build(world: ScriptedWorld, db: DatabasePort) -> None:
    """An index being built is reported as such; an unknown one is not."""
    add_index(world, "billing", "orders_user", valid=False, table="orders", building=True)
    assert db.index_build_in_progress("orders_user") is True
    assert db.index_build_in_progress("other") is False


def test_a_non_transactional_file_holds_one_statement(db: DatabasePort) -> None:
    """Two statements cannot be applied outside a transaction as one migration."""
    with pytest.raises(PermanentError, match="exactly one statement"):
        db.apply_migration("0004", "c4", CIC + " SELECT 1;", transactional=False)


def test_a_transactional_file_cannot_build_an_index_concurrently(db: DatabasePort) -> None:
    """CREATE INDEX CONCURRENTLY inside a transaction is refused before anything runs."""
    with pytest.raises(PermanentError, match="cannot run inside a transaction"):
        db.apply_migration("0004", "c4", CIC, transactional=True)


def test_set_password_changes_who_can_log_in(world: ScriptedWorld, db: DatabasePort) -> None:
    """After set_password the new password logs in and the old one does not."""
    add_role(world, "billing", "app", "old-password")
    db.set_password("app", "new-password")
    assert db.can_login("app", "new-password") and not db.can_login("app", "old-password")
    assert world.effects() == {"set_password:billing/app": 1}


def test_set_password_of_a_missing_role_is_permanent(db: DatabasePort) -> None:
    """There is no role to change."""
    with pytest.raises(PermanentError, match="does not exist"):
        db.set_password("ghost", "pw")


def test_create_clone_counts_an_effect_only_when_it_creates(world: ScriptedWorld, db: DatabasePort) -> None:
    """The second create_clone finds its clone and does nothing."""
    add_role(world, "billing", "app", "pw")
    db.create_clone("app", "app_clone")
    db.create_clone("app", "app_clone")
    assert db.role_exists("app_clone")
    assert world.effects() == {"create_clone:billing/app_clone": 1}


def test_a_clone_name_taken_by_another_role_is_not_adopted(world: ScriptedWorld, db: DatabasePort) -> None:
    """A role of that name that is not a member of the role is somebody else's."""
    add_role(world, "billing", "app", "pw")
    add_role(world, "billing", "app_clone", "theirs")
    with pytest.raises(AlreadyExists):
        db.create_clone("app", "app_clone")


def test_a_clone_logs_in_once_it_has_a_password(world: ScriptedWorld, db: DatabasePort) -> None:
    """A new clone has no password until set_password gives it one."""
    add_role(world, "billing", "app", "pw")
    db.create_clone("app", "app_clone")
    assert not db.can_login("app_clone", "")
    db.set_password("app_clone", "clone-pw")
    assert db.can_login("app_clone", "clone-pw")


def test_an_advisory_lock_refuses_a_second_session(world: ScriptedWorld) -> None:
    """While one session holds the key another is refused at once, and gets it after the release."""
    a, b = ScriptedDatabase(world, "billing"), ScriptedDatabase(world, "billing")
    with (
        a.advisory_lock("schema:billing"),
        pytest.raises(TransientError, match="holds the lock"),
        b.advisory_lock("schema:billing"),
    ):
        pass
    with b.advisory_lock("schema:billing"):
        pass


def test_an_advisory_lock_of_a_dead_process_is_free(world: ScriptedWorld, db: DatabasePort) -> None:
    """A crashed process's session is gone, and its advisory lock with it."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    world.seed(lambda state: state["databases"]["billing"]["advisory"].__setitem__("k", f"{dead.stdout.strip()}:x"))
    with db.advisory_lock("k"):
        pass


def test_replication_lag_is_reported_per_standby(world: ScriptedWorld, db: DatabasePort) -> None:
    """A primary reports its standbys' lag; it is not itself a standby."""
    set_replica_lag(world, "billing", 12.5)
    assert db.replicas_lag_seconds() == {"replica-1": 12.5}
    assert db.replication_lag_seconds() is None


def test_a_standby_reports_its_own_replay_lag(world: ScriptedWorld, db: DatabasePort) -> None:
    """A database seeded as a standby reports how far behind it replays."""
    set_replay_lag(world, "billing", 3.0)
    assert db.replication_lag_seconds() == 3.0


def test_endpoint_comes_from_the_seeded_database(db: DatabasePort) -> None:
    """Host, port and database name are what add_database was given."""
    assert db.endpoint() == ("billing.db.local", 6432, "billing_prod")


def test_an_unknown_fault_applies_nothing(world: ScriptedWorld, db: DatabasePort) -> None:
    """A call that never arrived leaves no migration behind."""
    world.fail("apply_migration", Fault.UNKNOWN)
    with pytest.raises(OutcomeUnknown):
        db.apply_migration("0001", "c1", "CREATE TABLE a (id int);", transactional=True)
    assert db.applied_migrations() == []


def test_a_recovering_process_sees_the_invalid_index(tmp_path: Path) -> None:
    """In a world kept in a file, what a lost answer left behind is there for the process that recovers."""
    world = ScriptedWorld(tmp_path / "world.json")
    add_database(world, "billing")
    world.fail("apply_migration", Fault.LOST_ANSWER)
    with pytest.raises(OutcomeUnknown):
        ScriptedDatabase(world, "billing").apply_migration("0003", "c3", CIC, transactional=False)
    assert ScriptedDatabase(ScriptedWorld(tmp_path / "world.json"), "billing").index_valid("orders_user") is False
