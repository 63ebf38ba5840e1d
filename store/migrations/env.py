"""Alembic environment: migrations run against the URL the caller put in the config."""

from __future__ import annotations

from alembic import context

from store.db import make_engine
from store.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "sqlalchemy.url must be set by the caller"

engine = make_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
