from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from idp_common.db import TenantRecord, UTCDateTime, new_metadata, utcnow
from idp_common.messaging.tables import messaging_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


messaging = messaging_tables(Base.metadata)


class OperationTemplate(TenantRecord, Base):
    __tablename__ = "operation_templates"
    __table_args__ = (UniqueConstraint("tenant", "slug"),)

    slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    command_template: Mapped[str] = mapped_column(Text)
    argv: Mapped[list[str]] = mapped_column(JSON)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=300)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(200))


class Execution(TenantRecord, Base):
    __tablename__ = "executions"

    template_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("operation_templates.id"))
    template_slug: Mapped[str] = mapped_column(String(100))
    template_version: Mapped[int | None] = mapped_column(Integer)
    submission_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    submitted_by: Mapped[str] = mapped_column(String(200))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    argv: Mapped[list[str] | None] = mapped_column(JSON)
    timeout_seconds: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), index=True)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    output: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExecutionLog(Base):
    __tablename__ = "execution_logs"

    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
