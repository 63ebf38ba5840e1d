"""The durable intent store (SQLModel schema, Alembic migrations, SQL implementation)."""
