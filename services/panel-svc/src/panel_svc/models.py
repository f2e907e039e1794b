from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from idp_common.audit import AuditRecord
from idp_common.db import TenantRecord, UTCDateTime, new_id, new_metadata, utcnow
from idp_common.inbound import RequestedByEvent
from idp_common.messaging.tables import messaging_tables
from idp_common.request_context import current_trace_id
from panel_svc.fields.types import FieldRules


class Base(DeclarativeBase):
    metadata = new_metadata()


messaging = messaging_tables(Base.metadata)


class AuditEntry(AuditRecord, Base):
    __tablename__ = "audit_log"


class Panel(TenantRecord, Base):
    __tablename__ = "panels"
    __table_args__ = (UniqueConstraint("tenant", "slug"),)

    slug: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    operation_template: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(100), default="", index=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    # An ``idp_common.events.ApprovalPolicy`` for its submissions' runs (sent with each).
    approval: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    order: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(200))
    updated_by: Mapped[str] = mapped_column(String(200))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    fields: Mapped[list[PanelField]] = relationship(
        back_populates="panel",
        lazy="raise",
        order_by="PanelField.order",
        cascade="all, delete-orphan",
    )


class PanelField(Base):
    __tablename__ = "panel_fields"
    __table_args__ = (UniqueConstraint("panel_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    panel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("panels.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    help_text: Mapped[str] = mapped_column(Text, default="")
    field_type: Mapped[str] = mapped_column(String(20))
    is_required: Mapped[bool] = mapped_column(Boolean, default=True)
    default: Mapped[Any] = mapped_column(JSON, nullable=True)
    order: Mapped[int] = mapped_column(Integer, default=0)
    options: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    data_source: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    depends_on: Mapped[list[str]] = mapped_column(JSON, default=list)
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
    min_length: Mapped[int | None] = mapped_column(Integer)
    max_length: Mapped[int | None] = mapped_column(Integer)
    pattern: Mapped[str | None] = mapped_column(String(1000))
    allowed_values: Mapped[list[str] | None] = mapped_column(JSON)

    panel: Mapped[Panel] = relationship(back_populates="fields", lazy="raise")

    def rules(self) -> FieldRules:
        options = [option["value"] for option in self.options] if self.options else None
        return FieldRules.of(self, options)


class Submission(RequestedByEvent, TenantRecord, Base):
    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("tenant", "submitted_by", "idempotency_key"),)

    panel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("panels.id"), index=True)
    submitted_by: Mapped[str] = mapped_column(String(200), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    execution_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The attempt it mirrors: a retry's execution is a newer attempt, which it follows.
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    exit_code: Mapped[int | None] = mapped_column(Integer)
    output: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    # What it asked operation-svc for (panel.submission.created's data, secrets sealed): sent
    # again by the reconciler when nothing came back (never shown by the API).
    execution_request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The trace it was created in: people follow it in Jaeger from here.
    trace_id: Mapped[str | None] = mapped_column(String(32), default=current_trace_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    attempts: Mapped[list[SubmissionAttempt]] = relationship(
        lazy="raise", order_by="SubmissionAttempt.attempt"
    )


class SubmissionAttempt(Base):
    """One execution of a submission: the first, or a retry."""

    __tablename__ = "submission_attempts"

    submission_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("submissions.id"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    execution_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(20))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
