"""SQLModel tables: the durable schema. These classes never leave `store/`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

TS = sa.DateTime(timezone=True)


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=sa.Column(TS, nullable=nullable, index=index))


class IntentRow(SQLModel, table=True):
    __tablename__ = "intents"
    __table_args__ = (
        # Only intents waiting on a check are in this index, so due-scans cost O(due rows).
        sa.Index(
            "ix_intents_due",
            "next_check_at",
            sqlite_where=sa.text("next_check_at IS NOT NULL"),
            postgresql_where=sa.text("next_check_at IS NOT NULL"),
        ),
        sa.Index("ix_intents_status_updated", "status", "updated_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    workflow: str = Field(max_length=100)
    environment: str = Field(max_length=64)
    params: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    requester: str = Field(max_length=100)
    idempotency_key: str = Field(max_length=200, unique=True)
    plan: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    plan_hash: str = Field(max_length=64)
    status: str = Field(max_length=32)
    version: int = 1
    mode: str = Field(max_length=16, default="forward")
    attempts: int = 0
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_token: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = _ts(nullable=True)
    next_check_at: datetime | None = _ts(nullable=True)
    status_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    started_at: datetime | None = _ts(nullable=True)
    # Set when an operator sends the intent back to execution: the next run needs an unexpired approval.
    reauthorize: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()))
    # W3C trace context of the request: spans of every later run, in any process, join the intent's trace.
    traceparent: str | None = Field(default=None, max_length=64)
    # The start the request asked for (`at=`); a scheduled intent's next_check_at says when it actually starts.
    not_before: datetime | None = _ts(nullable=True)
    # An approver chose Run now: its runs no longer wait for a maintenance window.
    windows_waived: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )


class StepRow(SQLModel, table=True):
    __tablename__ = "step_checkpoints"

    intent_id: str = Field(primary_key=True, foreign_key="intents.id", max_length=40)
    seq: int = Field(primary_key=True)
    name: str = Field(max_length=100)
    status: str = Field(max_length=16)
    idempotency_token: str = Field(max_length=200)
    external_ids: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    output: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    attempts: int = 1
    started_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)


class ApprovalRow(SQLModel, table=True):
    __tablename__ = "approvals"
    __table_args__ = (sa.UniqueConstraint("intent_id", "actor", "plan_hash", "decision", name="uq_approval_once"),)

    id: int | None = Field(default=None, primary_key=True)
    intent_id: str = Field(foreign_key="intents.id", index=True, max_length=40)
    actor: str = Field(max_length=100)
    plan_hash: str = Field(max_length=64)
    decision: str = Field(max_length=16)
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = _ts()
    expires_at: datetime = _ts()


class AuditRow(SQLModel, table=True):
    __tablename__ = "audit_events"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    intent_id: str | None = Field(default=None, index=True, max_length=40)
    kind: str = Field(max_length=64)
    actor: str = Field(max_length=100)
    data: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = _ts()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class ResourceLockRow(SQLModel, table=True):
    """A resource (`rds:billing-db`) held by one intent from its first run until it is over."""

    __tablename__ = "resource_locks"

    resource: str = Field(primary_key=True, max_length=200)
    intent_id: str = Field(foreign_key="intents.id", index=True, max_length=40)
    acquired_at: datetime = _ts()


class ResourceWaitRow(SQLModel, table=True):
    """An approved intent waiting for a resource another intent holds."""

    __tablename__ = "resource_waits"

    resource: str = Field(primary_key=True, max_length=200)
    intent_id: str = Field(primary_key=True, foreign_key="intents.id", index=True, max_length=40)
    since: datetime = _ts()


class AgreementRow(SQLModel, table=True):
    """One person's agreement to an operator action that needs several people (mark done by two approvers)."""

    __tablename__ = "agreements"

    intent_id: str = Field(primary_key=True, foreign_key="intents.id", max_length=40)
    action: str = Field(primary_key=True, max_length=32)
    intent_version: int = Field(primary_key=True)
    actor: str = Field(primary_key=True, max_length=100)
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = _ts()


intents = IntentRow.__table__  # type: ignore[attr-defined]
steps = StepRow.__table__  # type: ignore[attr-defined]
approvals = ApprovalRow.__table__  # type: ignore[attr-defined]
audit = AuditRow.__table__  # type: ignore[attr-defined]
resource_locks = ResourceLockRow.__table__  # type: ignore[attr-defined]
resource_waits = ResourceWaitRow.__table__  # type: ignore[attr-defined]
agreements = AgreementRow.__table__  # type: ignore[attr-defined]


class OutboxRow(SQLModel, table=True):
    """A Slack post or update waiting to be delivered; nothing reaches Slack except through here."""

    __tablename__ = "slack_outbox"
    __table_args__ = (
        sa.Index(
            "ix_outbox_pending",
            "next_attempt_at",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    intent_id: str | None = Field(default=None, max_length=40, index=True)
    channel: str = Field(max_length=40)
    kind: str = Field(max_length=24)
    payload: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    status: str = Field(max_length=16, default="pending")
    attempts: int = 0
    next_attempt_at: datetime = _ts()
    created_at: datetime = _ts()
    sent_at: datetime | None = _ts(nullable=True)
    ts: str | None = Field(default=None, max_length=40)
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))


class SlackThreadRow(SQLModel, table=True):
    """Where an intent lives in Slack: its plan message (the thread parent) and how far it was projected."""

    __tablename__ = "slack_threads"
    __table_args__ = (
        sa.Index(
            "ix_threads_unsettled",
            "intent_id",
            sqlite_where=sa.text("settled = 0"),
            postgresql_where=sa.text("settled = false"),
        ),
    )

    intent_id: str = Field(primary_key=True, foreign_key="intents.id", max_length=40)
    channel: str = Field(max_length=40)
    parent_ts: str | None = Field(default=None, max_length=40)
    projected_version: int = 0
    projected_steps: str = Field(default="", max_length=2000)
    settled: bool = False
    created_at: datetime = _ts()


class DigestRow(SQLModel, table=True):
    """One digest per channel and period, whichever process gets there first."""

    __tablename__ = "slack_digests"

    channel: str = Field(primary_key=True, max_length=40)
    period: str = Field(primary_key=True, max_length=40)
    created_at: datetime = _ts()
    owner: str = Field(max_length=100)


class SlackRequestRow(SQLModel, table=True):
    """A signed Slack request already taken in: a replay or a Slack retry of it is answered and ignored.
    Rows older than the signature window are useless (a body that old fails its signature) and are pruned."""

    __tablename__ = "slack_requests"

    key: str = Field(primary_key=True, max_length=64)
    seen_at: datetime = _ts(index=True)


outbox = OutboxRow.__table__  # type: ignore[attr-defined]
slack_threads = SlackThreadRow.__table__  # type: ignore[attr-defined]
digests = DigestRow.__table__  # type: ignore[attr-defined]
slack_requests = SlackRequestRow.__table__  # type: ignore[attr-defined]
metadata = SQLModel.metadata
