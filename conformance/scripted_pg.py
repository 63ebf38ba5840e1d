"""A scripted PostgreSQL database over the scripted world, with the quirks workflows meet in PostgreSQL.

Each database keeps its migrations (version -> checksum), the tables and indexes its migrations made, its roles and
their passwords (stored as given: the world is test tooling), the sessions holding table locks, and its advisory
locks. A statement whose lock conflicts with a held one fails as PostgreSQL would after lock_timeout. A
non-transactional migration runs as two calls, the statement then its version row, and a CREATE INDEX CONCURRENTLY
whose answer is lost leaves its index INVALID; `CREATE INDEX CONCURRENTLY IF NOT EXISTS` then skips it silently.
"""

from __future__ import annotations

import copy
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from conformance.world import ScriptedWorld, State
from workflows import sqllocks
from workflows.errors import AlreadyExists, OutcomeUnknown, PermanentError, TransientError
from workflows.outside import AppliedMigration, PgSession

Db = dict[str, Any]
_IF_NOT_EXISTS = re.compile(r"\bIF\s+NOT\s+EXISTS\b", re.IGNORECASE)
_IF_EXISTS = re.compile(r"\bIF\s+EXISTS\b", re.IGNORECASE)


def _new(name: str, host: str = "db.scripted.local", port: int = 5432, dbname: str | None = None) -> Db:
    return {
        "host": host,
        "port": port,
        "dbname": dbname or name,
        "values": {},  # fetch_value: SQL text -> value
        "lag": None,  # replication_lag_seconds: None on a primary
        "standbys": {},  # replicas_lag_seconds: application_name -> seconds
        "migrations": {},
        "tables": [],
        "indexes": {},  # name -> {"valid", "table", "building"}
        "roles": {},  # name -> {"password", "login", "member_of"}
        "locks": [],  # {"relation", "mode", "pid", "user", "application", "seconds"}
        "advisory": {},  # key -> "<os pid>:<session id>"
    }


def _db(state: State, name: str) -> Db:
    found: Db = state.setdefault("databases", {}).setdefault(name, _new(name))
    return found


def _rel(name: str) -> str:
    """A relation name as the world files it (the default schema left out)."""
    return name.removeprefix("public.")


def _count_effect(state: State, method: str, target: str) -> None:
    """Count a side effect that only some calls of a method have (the world counts every successful call)."""
    key = f"{method}:{target}"
    state["effects"][key] = state["effects"].get(key, 0) + 1


# seeding -----------------------------------------------------------------------------------------------------------


def add_database(
    world: ScriptedWorld, name: str, *, host: str = "db.scripted.local", port: int = 5432, dbname: str | None = None
) -> None:
    """Seed an empty database (dbname defaults to its config name)."""
    world.seed(lambda state: state.setdefault("databases", {}).__setitem__(name, _new(name, host, port, dbname)))


def add_role(world: ScriptedWorld, db: str, role: str, password: str | None = None) -> None:
    """Seed a login role with that password (None: none set, so no login)."""
    world.seed(lambda state: _db(state, db)["roles"].__setitem__(role, _role(password)))


def _role(password: str | None, member_of: list[str] | None = None) -> dict[str, Any]:
    return {"password": password, "login": True, "member_of": list(member_of or [])}


def add_index(
    world: ScriptedWorld, db: str, name: str, valid: bool, *, table: str = "", building: bool = False
) -> None:
    """Seed an index, perhaps INVALID (what a failed CREATE INDEX CONCURRENTLY leaves), perhaps being built."""
    entry = {"valid": valid, "table": _rel(table), "building": building}
    world.seed(lambda state: _db(state, db)["indexes"].__setitem__(_rel(name), entry))


def hold_lock(
    world: ScriptedWorld,
    db: str,
    relation: str,
    mode: str,
    *,
    pid: int = 4242,
    user: str = "app",
    application: str = "billing-api",
    seconds: float = 95.0,
) -> None:
    """Seed a session idle in a transaction that holds `mode` on `relation` (until release_locks)."""
    sqllocks.conflicts(mode, mode)  # a mode PostgreSQL does not have is a mistake in the test
    lock = {"relation": _rel(relation), "mode": mode, "pid": pid, "user": user, "application": application}
    world.seed(lambda state: _db(state, db)["locks"].append({**lock, "seconds": seconds}))


def release_locks(world: ScriptedWorld, db: str) -> None:
    """The sessions holding locks commit: every lock seeded with hold_lock is gone."""
    world.seed(lambda state: _db(state, db)["locks"].clear())


def set_replica_lag(world: ScriptedWorld, db: str, seconds: float | None, *, standby: str = "replica-1") -> None:
    """A standby of `db` replaying `seconds` behind, as replicas_lag_seconds reports it (None: no such standby)."""

    def apply(state: State) -> None:
        standbys = _db(state, db)["standbys"]
        if seconds is None:
            standbys.pop(standby, None)
        else:
            standbys[standby] = float(seconds)

    world.seed(apply)


def set_replay_lag(world: ScriptedWorld, db: str, seconds: float | None) -> None:
    """Make `db` itself a standby `seconds` behind its primary, for replication_lag_seconds (None: a primary)."""
    world.seed(lambda state: _db(state, db).__setitem__("lag", seconds))


def set_value(world: ScriptedWorld, db: str, sql: str, value: Any) -> None:
    """What fetch_value returns for exactly this SQL text."""
    world.seed(lambda state: _db(state, db)["values"].__setitem__(sql, value))


# the adapter --------------------------------------------------------------------------------------------------------


class ScriptedDatabase:
    """DatabasePort over the scripted world."""

    def __init__(self, world: ScriptedWorld, name: str) -> None:
        self.world, self.name = world, name

    def fetch_value(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.world.call(
            "fetch_value", self.name, lambda state: _db(state, self.name)["values"].get(sql), effect=False
        )

    @contextmanager
    def advisory_lock(self, key: str) -> Iterator[None]:
        """Held by a session of this process; a lock whose holding process has died is free, as its session is."""
        session = f"{os.getpid()}:{uuid.uuid4().hex}"

        def take(state: State) -> None:
            held = _db(state, self.name)["advisory"]
            if key in held and _alive(held[key]):
                raise TransientError(f"another operation holds the lock {key!r} on {self.name}")
            held[key] = session

        def release(state: State) -> None:
            held = _db(state, self.name)["advisory"]
            if held.get(key) == session:
                del held[key]

        self.world.call("advisory_lock", f"{self.name}/{key}", take, effect=False)
        try:
            yield
        finally:
            self.world.seed(release)  # closing the session frees the lock, whatever else fails

    def replication_lag_seconds(self) -> float | None:
        def apply(state: State) -> float | None:
            lag = _db(state, self.name)["lag"]
            return float(lag) if lag is not None else None

        return self.world.call("replication_lag_seconds", self.name, apply, effect=False)

    def replicas_lag_seconds(self) -> dict[str, float]:
        def apply(state: State) -> dict[str, float]:
            return dict(_db(state, self.name)["standbys"])

        return self.world.call("replicas_lag_seconds", self.name, apply, effect=False)

    # migrations -------------------------------------------------------------------------------------------------
    def applied_migrations(self) -> list[AppliedMigration]:
        def apply(state: State) -> list[AppliedMigration]:
            return [AppliedMigration(v, c) for v, c in sorted(_db(state, self.name)["migrations"].items())]

        return self.world.call("applied_migrations", self.name, apply, effect=False)

    def apply_migration(self, version: str, checksum: str, sql: str, *, transactional: bool) -> None:
        what = f"migration {version} on {self.name}"
        target = f"{self.name}/{version}"
        statements = sqllocks.split_statements(sql)
        problem = sqllocks.migration_problem(statements, transactional=transactional)
        if problem is not None:
            raise PermanentError(f"{what}: {problem.message}", guidance=problem.guidance)
        created: list[str] = []  # the index a CONCURRENTLY build made, should its answer be lost

        def run(state: State) -> bool:
            db = _db(state, self.name)
            if _recorded(db, version, checksum, what):
                return False
            work = copy.deepcopy({"tables": db["tables"], "indexes": db["indexes"]})
            for number, statement in enumerate(statements, 1):
                where = what if not transactional else f"{what}, statement {number}"
                _execute(db, work, statement, where, transactional=transactional, created=created)
            db.update(work)
            if transactional:
                db["migrations"][version] = checksum
            _count_effect(state, "apply_migration", target)
            return True

        try:
            applied = self.world.call("apply_migration", target, run, effect=False)
        except OutcomeUnknown:
            if created:  # the build was cut short after its first transaction: the index stays INVALID
                self.world.seed(lambda state: _db(state, self.name)["indexes"][created[0]].__setitem__("valid", False))
            raise
        if applied and not transactional:
            self.world.call(
                "record_migration",
                target,
                lambda state: _record(state, self.name, version, checksum, statements[0], what),
                effect=False,
            )

    def index_valid(self, name: str) -> bool | None:
        def apply(state: State) -> bool | None:
            index = _db(state, self.name)["indexes"].get(_rel(name))
            return None if index is None else bool(index["valid"])

        return self.world.call("index_valid", self.name, apply, effect=False)

    def index_build_in_progress(self, name: str) -> bool:
        def apply(state: State) -> bool:
            return bool(_db(state, self.name)["indexes"].get(_rel(name), {}).get("building", False))

        return self.world.call("index_build_in_progress", self.name, apply, effect=False)

    def drop_index(self, name: str) -> None:
        target = f"{self.name}/{_rel(name)}"

        def apply(state: State) -> None:
            if _db(state, self.name)["indexes"].pop(_rel(name), None) is not None:
                _count_effect(state, "drop_index", target)

        self.world.call("drop_index", target, apply, effect=False)

    # sessions ---------------------------------------------------------------------------------------------------
    def conflicting_sessions(self, relations: list[str], mode: str) -> list[PgSession]:
        if mode not in sqllocks.CONFLICTS:
            raise PermanentError(
                f"{mode!r} is not a table lock mode", guidance=f"use one of {', '.join(sqllocks.MODES)}"
            )

        def apply(state: State) -> list[PgSession]:
            db = _db(state, self.name)
            strongest: dict[tuple[int, str], PgSession] = {}
            for lock in _blocking(db, relations, mode):
                known = strongest.get((lock["pid"], lock["relation"]))
                if known is None or sqllocks.MODES.index(lock["mode"]) > sqllocks.MODES.index(known.mode):
                    strongest[(lock["pid"], lock["relation"])] = _session(lock, lock["mode"], lock["relation"])
            return sorted(strongest.values(), key=lambda s: (-s.seconds, s.pid, s.relation))

        return self.world.call("conflicting_sessions", self.name, apply, effect=False)

    def long_transactions(self, min_seconds: float) -> list[PgSession]:
        def apply(state: State) -> list[PgSession]:
            sessions = {lock["pid"]: _session(lock) for lock in _db(state, self.name)["locks"]}
            return sorted((s for s in sessions.values() if s.seconds >= min_seconds), key=lambda s: -s.seconds)

        return self.world.call("long_transactions", self.name, apply, effect=False)

    # roles and passwords ----------------------------------------------------------------------------------------
    def role_exists(self, role: str) -> bool:
        return self.world.call(
            "role_exists", self.name, lambda state: role in _db(state, self.name)["roles"], effect=False
        )

    def create_clone(self, role: str, clone: str) -> None:
        target = f"{self.name}/{clone}"
        what = f"clone {clone} of {role} on {self.name}"

        def apply(state: State) -> None:
            roles = _db(state, self.name)["roles"]
            if role not in roles:
                raise PermanentError(f'{what}: 42704 role "{role}" does not exist', guidance="check the role name")
            if clone in roles:
                if role in roles[clone]["member_of"]:
                    return
                raise AlreadyExists(
                    f"{what}: role {clone} exists and is not a member of {role}",
                    guidance="choose another clone name; a role opsbot did not make is not adopted",
                )
            roles[clone] = _role(None, [role])
            _count_effect(state, "create_clone", target)

        self.world.call("create_clone", target, apply, effect=False)

    def set_password(self, role: str, password: str) -> None:
        def apply(state: State) -> None:
            roles = _db(state, self.name)["roles"]
            if role not in roles:
                raise PermanentError(f'password of {role} on {self.name}: 42704 role "{role}" does not exist')
            roles[role]["password"] = password

        self.world.call("set_password", f"{self.name}/{role}", apply, effect=True)

    def can_login(self, role: str, password: str) -> bool:
        def apply(state: State) -> bool:
            found = _db(state, self.name)["roles"].get(role)
            return (
                found is not None and found["login"] and found["password"] is not None and found["password"] == password
            )

        return self.world.call("can_login", f"{self.name}/{role}", apply, effect=False)

    def endpoint(self) -> tuple[str, int, str]:
        def apply(state: State) -> tuple[str, int, str]:
            db = _db(state, self.name)
            return str(db["host"]), int(db["port"]), str(db["dbname"])

        return self.world.call("endpoint", self.name, apply, effect=False)


# statements ---------------------------------------------------------------------------------------------------------


def _alive(session: str) -> bool:
    """Whether the process that opened an advisory-lock session still runs (its death ends the session)."""
    try:
        os.kill(int(session.split(":", 1)[0]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recorded(db: Db, version: str, checksum: str, what: str) -> bool:
    recorded = db["migrations"].get(version)
    if recorded is not None and recorded != checksum:
        raise PermanentError(
            f"{what}: already applied with checksum {recorded}, the file now has {checksum}",
            guidance="an applied migration must not change: revert the edit and write a new migration",
        )
    return recorded is not None


def _record(state: State, name: str, version: str, checksum: str, statement: str, what: str) -> None:
    """The version row of a non-transactional migration, refused over an INVALID index (as the adapter does)."""
    db = _db(state, name)
    index = sqllocks.index_name(statement)
    if index is not None and db["indexes"].get(_rel(index), {}).get("valid") is False:
        raise PermanentError(
            f"{what}: index {index} exists but is INVALID (an earlier build was cut short)",
            guidance=f"drop the index {index} (DROP INDEX CONCURRENTLY) and apply the migration again",
        )
    db["migrations"][version] = checksum


def _blocking(db: Db, relations: list[str] | tuple[str, ...], mode: str) -> list[dict[str, Any]]:
    """Held locks on these relations (an index standing for its table too) that conflict with `mode`."""
    names = {_rel(r) for r in relations}
    names |= {db["indexes"][n]["table"] for n in names if n in db["indexes"] and db["indexes"][n]["table"]}
    return [lock for lock in db["locks"] if lock["relation"] in names and sqllocks.conflicts(lock["mode"], mode)]


def _session(lock: dict[str, Any], mode: str = "", relation: str = "") -> PgSession:
    return PgSession(
        lock["pid"], lock["user"], lock["application"], "idle in transaction", lock["seconds"], mode, relation
    )


def _execute(db: Db, work: Db, statement: str, where: str, *, transactional: bool, created: list[str]) -> None:
    """One statement against the working copy of the schema; a held conflicting lock times it out."""
    lock = sqllocks.lock_for(statement)
    if _blocking(db, lock.relations, lock.mode):
        message = f"{where}: lock timeout (55P03): canceling statement due to lock timeout"
        if not transactional and "CONCURRENTLY" in lock.kind and not lock.transactional:
            raise OutcomeUnknown(f"{message}; it may have left an INVALID index: check index_valid")
        raise TransientError(message)
    tables, indexes = work["tables"], work["indexes"]
    if lock.kind in ("CREATE INDEX", "CREATE INDEX CONCURRENTLY") and (name := sqllocks.index_name(statement)):
        name = _rel(name)
        if name in indexes or name in tables:
            if _IF_NOT_EXISTS.search(statement):
                return  # even over an INVALID index: PostgreSQL only checks the name
            raise PermanentError(f'{where}: 42P07 relation "{name}" already exists')
        indexes[name] = {"valid": True, "table": _rel(lock.relations[0]) if lock.relations else "", "building": False}
        if lock.kind == "CREATE INDEX CONCURRENTLY":
            created.append(name)
    elif lock.kind in ("DROP INDEX", "DROP INDEX CONCURRENTLY"):
        for name in map(_rel, lock.relations):
            if indexes.pop(name, None) is None and not _IF_EXISTS.search(statement):
                raise PermanentError(f'{where}: 42704 index "{name}" does not exist')
    elif lock.kind == "CREATE TABLE" and lock.relations:
        name = _rel(lock.relations[0])
        if name in tables or name in indexes:
            if _IF_NOT_EXISTS.search(statement):
                return
            raise PermanentError(f'{where}: 42P07 relation "{name}" already exists')
        tables.append(name)
    elif lock.kind == "DROP TABLE":
        for name in map(_rel, lock.relations):
            if name in tables:
                tables.remove(name)
            elif not _IF_EXISTS.search(statement):
                raise PermanentError(f'{where}: 42P01 table "{name}" does not exist')
