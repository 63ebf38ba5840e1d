"""resource locks, waits, agreements; intents.reauthorize

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resource_locks",
        sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("intent_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["intent_id"], ["intents.id"]),
        sa.PrimaryKeyConstraint("resource"),
    )
    op.create_index(op.f("ix_resource_locks_intent_id"), "resource_locks", ["intent_id"], unique=False)
    op.create_table(
        "resource_waits",
        sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("intent_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["intent_id"], ["intents.id"]),
        sa.PrimaryKeyConstraint("resource", "intent_id"),
    )
    op.create_index(op.f("ix_resource_waits_intent_id"), "resource_waits", ["intent_id"], unique=False)
    op.create_table(
        "agreements",
        sa.Column("intent_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("intent_version", sa.Integer(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["intent_id"], ["intents.id"]),
        sa.PrimaryKeyConstraint("intent_id", "action", "intent_version", "actor"),
    )
    with op.batch_alter_table("intents") as batch:
        batch.add_column(sa.Column("reauthorize", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("intents") as batch:
        batch.drop_column("reauthorize")
    op.drop_table("agreements")
    op.drop_index(op.f("ix_resource_waits_intent_id"), table_name="resource_waits")
    op.drop_table("resource_waits")
    op.drop_index(op.f("ix_resource_locks_intent_id"), table_name="resource_locks")
    op.drop_table("resource_locks")
