"""Idempotent consumption: an event id is processed once per consumer, in the handler's
own transaction, so a redelivered or duplicated message changes nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import Context, copy_context

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.coalescing import Coalescer
from idp_common.db import Database, insert_if_new, utcnow
from idp_common.messaging.consumer import EventHandler
from idp_common.messaging.envelope import Event
from idp_common.messaging.tables import MessagingTables
from idp_common.messaging.topology import MAX_BATCH_SIZE

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
    return await insert_if_new(session, tables.processed_events, row)


def transactional_handler(
    db: Database, tables: MessagingTables, consumer: str, handle: SessionHandler
) -> EventHandler:
    """Wrap ``handle`` in a transaction that also records the event id.

    Group commit: events that arrive while a transaction is in flight share the next one
    (on SQLite that saves ~0.7 ms of CPU per event, the cost of BEGIN and COMMIT). If a
    shared transaction fails, each of its events is retried in a transaction of its own,
    so a bad event fails alone. Each event is handled in its own consumer's context (trace
    span, tenant, request id)."""

    async def handle_one(session: AsyncSession, event: Event) -> None:
        if not await record_processed(session, tables, consumer, event.id):
            DUPLICATES.labels(consumer).inc()
            logger.info("duplicate event skipped", extra={"event_id": event.id})
            return
        await handle(session, event)

    async def handle_in(session: AsyncSession, event: Event, context: Context) -> None:
        await asyncio.create_task(handle_one(session, event), context=context)

    async def handle_alone(event: Event, context: Context) -> Exception | None:
        try:
            async with db.transaction() as session:
                await handle_in(session, event, context)
        except Exception as exc:
            return exc
        return None

    async def handle_together(batch: list[tuple[Event, Context]]) -> list[Exception | None]:
        if len(batch) == 1:
            return [await handle_alone(*batch[0])]
        try:
            async with db.transaction() as session:
                for event, context in batch:
                    await handle_in(session, event, context)
        except Exception:
            logger.info("a shared transaction failed; handling its events one by one")
            return [await handle_alone(event, context) for event, context in batch]
        return [None] * len(batch)

    together = Coalescer(handle_together, max_items=MAX_BATCH_SIZE)

    async def run(event: Event) -> None:
        if (failure := await together.submit((event, copy_context()))) is not None:
            raise failure

    return run
