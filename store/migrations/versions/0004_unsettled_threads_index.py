"""a partial index over the Slack threads not yet at rest

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_threads_unsettled",
        "slack_threads",
        ["intent_id"],
        unique=False,
        sqlite_where=sa.text("settled = 0"),
        postgresql_where=sa.text("settled = false"),
    )


def downgrade() -> None:
    op.drop_index("ix_threads_unsettled", table_name="slack_threads")
