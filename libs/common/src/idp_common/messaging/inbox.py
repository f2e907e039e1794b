"""Idempotent consumption: an event id is processed once per consumer, in the handler's
own transaction, so a redelivered or duplicated message changes nothing. Handlers are
written per event; the events that arrive together share a transaction
(``transactional_handler``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from contextvars import Context, copy_context
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import Database, insert_new, utcnow
from idp_common.group_commit import GroupCommit
from idp_common.messaging.consumer import EventHandler
from idp_common.messaging.envelope import Event
from idp_common.messaging.tables import MessagingTables
from idp_common.messaging.topology import MAX_BATCH_SIZE
from idp_common.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)
P = TypeVar("P")
DUPLICATES = Counter(
    "idp_duplicate_events_total", "Events delivered again and skipped.", ["consumer"]
)


@dataclass(frozen=True, slots=True)
class Received:
    """A consumed event and its consumer's context (trace span, tenant, request id), in
    which whatever concerns that event alone is done."""

    event: Event
    context: Context


class TransactionalHandler(Protocol[P]):
    """What a consumer does with each event, in a transaction that records its id.

    ``prefetch`` reads what a group of events needs (one query per kind, not per event);
    ``handle`` then does one event's work, in that event's own context (trace, tenant)."""

    async def prefetch(self, work: UnitOfWork, events: list[Event]) -> P: ...

    async def handle(self, work: UnitOfWork, event: Event, prefetched: P) -> None: ...


async def handle_each(
    work: UnitOfWork, handler: TransactionalHandler[Any], group: list[Received]
) -> None:
    """``handler``'s work for each event of ``group``, each in its own context, after one
    prefetch for them all."""
    prefetched = await handler.prefetch(work, [received.event for received in group])
    for received in group:
        handling = handler.handle(work, received.event, prefetched)
        await asyncio.create_task(handling, context=received.context)


async def record_processed(
    session: AsyncSession, tables: MessagingTables, consumer: str, event_ids: Iterable[str]
) -> set[str]:
    """The ids among ``event_ids`` that ``consumer`` sees for the first time, now recorded."""
    now = utcnow()
    rows = [{"consumer": consumer, "event_id": id_, "processed_at": now} for id_ in event_ids]
    return await insert_new(session, tables.processed_events, rows, "event_id")


def transactional_handler(
    db: Database, tables: MessagingTables, consumer: str, handler: TransactionalHandler[Any]
) -> EventHandler:
    """Handle each event once (``handler``), in a transaction that also records its id.

    Events that arrive while a transaction is in flight share the next one (``GroupCommit``),
    duplicates left out, so that their reads and writes are batched (``prefetch``, the unit
    of work); a bad event fails alone."""

    async def handle_group(work: UnitOfWork, group: list[Received]) -> None:
        ids = (received.event.id for received in group)
        new = await record_processed(work.session, tables, consumer, ids)
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
            await handle_each(work, handler, fresh)

    together = GroupCommit(db, handle_group, max_items=MAX_BATCH_SIZE)

    async def run(event: Event) -> None:
        await together.submit(Received(event, copy_context()))

    return run
