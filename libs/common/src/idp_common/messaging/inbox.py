"""Idempotent consumption: an event id is processed once per consumer, in the handler's
own transaction, so a redelivered or duplicated message changes nothing. Events are handled
in groups (``transactional_group_handler``), so that a handler can use one statement for
all of a group's events."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from contextvars import Context, copy_context
from dataclasses import dataclass

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import Database, insert_new, utcnow
from idp_common.group_commit import GroupCommit
from idp_common.messaging.consumer import EventHandler
from idp_common.messaging.envelope import Event
from idp_common.messaging.tables import MessagingTables
from idp_common.messaging.topology import MAX_BATCH_SIZE

logger = logging.getLogger(__name__)
DUPLICATES = Counter(
    "idp_duplicate_events_total", "Events delivered again and skipped.", ["consumer"]
)


@dataclass(frozen=True, slots=True)
class Received:
    """A consumed event and its consumer's context (trace span, tenant, request id), in
    which whatever concerns that event alone is done."""

    event: Event
    context: Context


GroupHandler = Callable[[AsyncSession, list[Received]], Awaitable[None]]


async def record_processed(
    session: AsyncSession, tables: MessagingTables, consumer: str, event_ids: Iterable[str]
) -> set[str]:
    """The ids among ``event_ids`` that ``consumer`` sees for the first time, now recorded."""
    now = utcnow()
    rows = [{"consumer": consumer, "event_id": id_, "processed_at": now} for id_ in event_ids]
    return await insert_new(session, tables.processed_events, rows, "event_id")


def transactional_group_handler(
    db: Database, tables: MessagingTables, consumer: str, handle: GroupHandler
) -> EventHandler:
    """Handle events in groups, each in one transaction that also records their ids.

    Events that arrive while a transaction is in flight share the next one (``GroupCommit``)
    and reach ``handle`` together, duplicates left out, so that it can use one statement for
    all of them; a bad event fails alone."""

    async def handle_group(session: AsyncSession, group: list[Received]) -> None:
        new = await record_processed(session, tables, consumer, (r.event.id for r in group))
        fresh = []
        for received in group:
            if received.event.id in new:
                new.discard(received.event.id)  # a second copy in the group is a duplicate
                fresh.append(received)
            else:
                DUPLICATES.labels(consumer).inc()
                extra = {"event_id": received.event.id}
                received.context.run(logger.info, "duplicate event skipped", extra=extra)
        if fresh:
            await handle(session, fresh)

    together = GroupCommit(db, handle_group, max_items=MAX_BATCH_SIZE)

    async def run(event: Event) -> None:
        await together.submit(Received(event, copy_context()))

    return run
