"""Idempotent consumption: an event id is processed once per consumer, in the handler's
own transaction, so a redelivered or duplicated message changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import Database, insert_ignoring_conflicts, utcnow
from idp_common.messaging.consumer import EventHandler
from idp_common.messaging.envelope import Event
from idp_common.messaging.tables import MessagingTables

logger = logging.getLogger(__name__)
DUPLICATES = Counter(
    "idp_duplicate_events_total", "Events delivered again and skipped.", ["consumer"]
)

SessionHandler = Callable[[AsyncSession, Event], Awaitable[None]]


async def record_processed(
    session: AsyncSession, tables: MessagingTables, consumer: str, event_id: str
) -> bool:
    """True the first time ``consumer`` sees ``event_id``; False for a duplicate."""
    row = {"consumer": consumer, "event_id": event_id, "processed_at": utcnow()}
    return await insert_ignoring_conflicts(session, tables.processed_events, [row]) == 1


def transactional_handler(
    db: Database, tables: MessagingTables, consumer: str, handle: SessionHandler
) -> EventHandler:
    """Wrap ``handle`` in one transaction that also records the event id."""

    async def run(event: Event) -> None:
        async with db.transaction() as session:
            if not await record_processed(session, tables, consumer, event.id):
                DUPLICATES.labels(consumer).inc()
                logger.info("duplicate event skipped", extra={"event_id": event.id})
                return
            await handle(session, event)

    return run
