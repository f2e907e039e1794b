"""The messaging tables every DB-backed service owns: ``outbox`` and ``processed_events``."""

from __future__ import annotations

from dataclasses import dataclass

from alembic import op
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
)

from idp_common.db import UTCDateTime


@dataclass(frozen=True, slots=True)
class MessagingTables:
    outbox: Table
    processed_events: Table


def messaging_tables(metadata: MetaData) -> MessagingTables:
    outbox = Table(
        "outbox",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("queue", String(80), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("body", Text, nullable=False),
        Column("trace_carrier", JSON, nullable=False),
        Column("created_at", UTCDateTime, nullable=False, index=True),
        Column("attempts", Integer, nullable=False),
        Column("last_error", Text),
    )
    processed_events = Table(
        "processed_events",
        metadata,
        Column("consumer", String(80), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", UTCDateTime, nullable=False),
    )
    return MessagingTables(outbox=outbox, processed_events=processed_events)


def create_messaging_tables_v1() -> None:
    """Migration step shared by the services' initial revisions (frozen: never edit)."""
    op.create_table(
        "outbox",
        Column("id", Uuid, nullable=False),
        Column("queue", String(80), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("body", Text, nullable=False),
        Column("trace_carrier", JSON, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("last_error", Text, nullable=True),
        PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_table(
        "processed_events",
        Column("consumer", String(80), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("processed_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("consumer", "event_id", name="pk_processed_events"),
    )


def drop_messaging_tables_v1() -> None:
    op.drop_table("processed_events")
    op.drop_index("ix_outbox_created_at", table_name="outbox")
    op.drop_table("outbox")
