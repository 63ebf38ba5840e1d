"""Engines for the intent store: SQLite (embedded default) or PostgreSQL (production)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine whose transactions take write locks up front on SQLite and wait, bounded, for them."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 15, "check_same_thread": False}, **kwargs)
        _sqlite_transactions(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    connect_args = {"connect_timeout": 10, "options": "-c lock_timeout=10000 -c statement_timeout=30000"}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def _sqlite_transactions(engine: sa.Engine) -> None:
    # pysqlite's own BEGIN is deferred, which turns read-then-write into SQLITE_BUSY; take the lock at BEGIN.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=15000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
