"""Schema migrations through Alembic, configured in code so the CLI needs no alembic.ini."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


@dataclass(frozen=True)
class SchemaState:
    """Where a store's schema stands against the migrations this code ships."""

    current: tuple[str, ...]  # the revisions stamped in the store; empty when it was never migrated
    heads: tuple[str, ...]  # where this code's migrations end
    unknown: tuple[str, ...]  # stamped revisions this code does not have (a newer release migrated the store)

    @property
    def at_head(self) -> bool:
        return set(self.current) == set(self.heads)


def code_heads() -> tuple[str, ...]:
    """The head revisions of the migrations in this package."""
    return tuple(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def schema_state(url: str, connect_timeout: float = 5.0) -> SchemaState:
    """Read the store's revision without changing anything (a SQLite file is opened read-only, never created).

    Raises SQLAlchemy's DBAPIError (or sqlite3.Error) when the store cannot be reached within `connect_timeout`.
    """
    engine = _read_only_engine(url, connect_timeout)
    try:
        with engine.connect() as conn:
            current = tuple(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    scripts = ScriptDirectory.from_config(alembic_config(url))
    unknown = []
    for revision in current:
        try:
            scripts.get_revision(revision)
        except CommandError:
            unknown.append(revision)
    return SchemaState(current, tuple(scripts.get_heads()), tuple(unknown))


def _read_only_engine(url: str, connect_timeout: float) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:"):
            raise sqlite3.OperationalError("an in-memory SQLite store has no schema to check")
        target = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
        return sa.create_engine(
            "sqlite://", creator=lambda: sqlite3.connect(target, uri=True, timeout=connect_timeout), poolclass=NullPool
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    seconds = max(int(connect_timeout), 1)  # libpq counts whole seconds
    connect_args = {"connect_timeout": seconds, "options": f"-c statement_timeout={seconds * 1000}"}
    return sa.create_engine(parsed, connect_args=connect_args, poolclass=NullPool)
