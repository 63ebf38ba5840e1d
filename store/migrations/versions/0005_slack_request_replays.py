"""the Slack requests already taken in, so a replay or a retry changes nothing twice

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_requests",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(op.f("ix_slack_requests_seen_at"), "slack_requests", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_slack_requests_seen_at"), table_name="slack_requests")
    op.drop_table("slack_requests")
