from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from idp_common.db import TenantRecord, new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class DataSource(TenantRecord, Base):
    __tablename__ = "data_sources"
    __table_args__ = (UniqueConstraint("tenant", "slug"),)

    slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    source_type: Mapped[str] = mapped_column(String(20))
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    ttl_seconds: Mapped[int] = mapped_column(Integer, default=300)
    created_by: Mapped[str] = mapped_column(String(200))
