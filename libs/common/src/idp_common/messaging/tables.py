"""The messaging tables every DB-backed service owns: ``outbox`` and ``processed_events``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
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
