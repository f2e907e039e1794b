from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from idp_common.audit import AuditRecord
from idp_common.db import TenantRecord, new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class AuditEntry(AuditRecord, Base):
    __tablename__ = "audit_log"


class DataSource(TenantRecord, Base):
    __tablename__ = "data_sources"
    __table_args__ = (UniqueConstraint("tenant", "slug"),)

    slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    source_type: Mapped[str] = mapped_column(String(20))
    options: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    endpoint_url: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(10), default="GET")
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    query: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    body: Mapped[Any] = mapped_column(JSON, nullable=True)
    auth_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    items_path: Mapped[str] = mapped_column(String(500), default="@")
    value_expr: Mapped[str] = mapped_column(String(500), default="@")
    label_expr: Mapped[str | None] = mapped_column(String(500))
    ttl_seconds: Mapped[int] = mapped_column(Integer, default=300)
    timeout_seconds: Mapped[float] = mapped_column(default=5.0)
    max_options: Mapped[int] = mapped_column(Integer, default=500)
    cache_generation: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(200))
