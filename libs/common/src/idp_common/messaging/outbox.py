"""The transactional outbox: events are rows written in the business transaction; the commit
hands them to the relay in memory, which publishes them at once, and a periodic sweep of the
table catches what a crash or an outage left."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import delete, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from idp_common.db import Database, insert_at_commit, new_id, utcnow
from idp_common.loops import PeriodicLoop
from idp_common.messaging.envelope import Event
from idp_common.messaging.publisher import (
    OutgoingMessage,
    Publisher,
    checked_body,
    messaging_attributes,
)
from idp_common.messaging.tables import MessagingTables
from idp_common.messaging.topology import MAX_BATCH_SIZE, QueueSpec
from idp_common.messaging.trace_context import current_trace_carrier

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
_PENDING = "idp.outbox_pending"
# Rows the relay keeps in memory at most (a broker outage must not grow it without end).
MAX_HELD_ROWS = 1000
# Younger rows are left to the process that committed them, which holds them in memory.
SWEEP_AFTER = timedelta(seconds=5)

OUTBOX_LAG = Histogram(
    "idp_outbox_publish_lag_seconds",
    "Time from the commit of an outbox event to its acceptance by the broker.",
    ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
OUTBOX_BACKLOG = Gauge(
    "idp_outbox_backlog",
    "Outbox events committed and not yet accepted by the broker (held by the relay).",
)
OUTBOX_FAILURES = Counter(
    "idp_outbox_publish_failures_total", "Outbox events the broker did not accept.", ["queue"]
)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An outbox row: written at commit, then handed to the relay, which sends it as it is."""

    id: uuid.UUID
    queue: str
    event_id: str
    event_type: str
    body: str
    trace_carrier: dict[str, str]
    created_at: datetime
    attempts: int


def outbox_row(queue: QueueSpec, event: Event) -> OutboxRow:
    """``event`` as an outbox row for ``queue``, carrying the current trace context (the
    publish span's) to the consumer."""
    with tracer.start_as_current_span(
        f"{queue.name} publish",
        kind=SpanKind.PRODUCER,
        attributes=messaging_attributes(queue.name, "publish")
        | {"cloudevents.event_type": event.type},
    ):
        carrier = current_trace_carrier()
    return OutboxRow(
        new_id(), queue.name, event.id, event.type, checked_body(event), carrier, utcnow(), 0
    )


def add_outbox_row(session: AsyncSession, tables: MessagingTables, row: OutboxRow) -> None:
    """Write ``row`` in the session's transaction (at its commit); it leaves after commit."""
    insert_at_commit(session, tables.outbox, dataclasses.asdict(row))
    session.info.setdefault(_PENDING, []).append(row)


def add_event(
    session: AsyncSession, tables: MessagingTables, queue: QueueSpec, event: Event
) -> None:
    """Write ``event`` for ``queue`` in the session's transaction; it leaves after commit."""
    add_outbox_row(session, tables, outbox_row(queue, event))


class OutboxRelay(PeriodicLoop):
    """Publishes committed outbox rows and deletes them once the broker has them.

    A commit hands its rows to the relay in memory and wakes it, so they are sent without
    being read back (a row is held until the broker accepted or refused it, and beyond
    ``MAX_HELD_ROWS`` rows are left in the table only). The table is swept for the rest: at
    start every row (what a crash left), then every ``poll_seconds`` the rows older than
    ``SWEEP_AFTER``, so that another replica's fresh rows are left to it."""

    def __init__(
        self,
        db: Database,
        tables: MessagingTables,
        publisher: Publisher,
        *,
        poll_seconds: float = 1.0,
        max_backoff_seconds: float = 10.0,
    ) -> None:
        super().__init__(
            poll_seconds,
            min_backoff_seconds=poll_seconds,
            max_backoff_seconds=max_backoff_seconds,
        )
        self.db = db
        self.table = tables.outbox
        self.publisher = publisher
        self._held: dict[uuid.UUID, OutboxRow] = {}
        self._sweep_cutoff: timedelta | None = None  # the first sweep takes every row
        self._next_sweep = 0.0
        event.listen(db.sync_session_class, "after_commit", self._after_commit)
        event.listen(db.sync_session_class, "after_rollback", self._after_rollback)

    def _after_commit(self, session: Session) -> None:
        rows: list[OutboxRow] = session.info.pop(_PENDING, [])
        for row in rows[: max(MAX_HELD_ROWS - len(self._held), 0)]:
            self._held[row.id] = row
        if rows:
            self.wake()

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(_PENDING, None)

    async def run_once(self) -> None:
        try:
            await self._relay(list(self._held.values()))
            if time.monotonic() >= self._next_sweep:
                await self._sweep(self._sweep_cutoff)
                self._sweep_cutoff = SWEEP_AFTER
                self._next_sweep = time.monotonic() + self.period_seconds
        finally:
            OUTBOX_BACKLOG.set(len(self._held))

    async def after_stop(self) -> None:
        """Send what was committed up to the stop (the consumers stop first)."""
        try:
            await self._relay(list(self._held.values()))
        except Exception:
            logger.warning("outbox relay could not flush at stop; the sweep sends it later")

    async def relay_pending(self) -> int:
        """Publish every pending row of the table, whatever its age; returns how many the
        broker accepted."""
        return await self._sweep(None)

    async def _sweep(self, older_than: timedelta | None) -> int:
        """Send the table's rows (older than ``older_than``) batch after batch; returns how
        many the broker accepted."""
        total = 0
        while True:
            selected, accepted = await self._sweep_batch(older_than)
            total += accepted
            if selected < MAX_BATCH_SIZE or not accepted:
                return total

    async def _sweep_batch(self, older_than: timedelta | None) -> tuple[int, int]:
        stmt = select(self.table).order_by(self.table.c.created_at).limit(MAX_BATCH_SIZE)
        if older_than is not None:
            stmt = stmt.where(self.table.c.created_at < utcnow() - older_than)
        if self.db.is_sqlite:
            # SQLite's write lock covers the whole database: read from a snapshot, and hold
            # the lock for the deletes only, not across the broker round trip. One process
            # owns each file in the embedded default, so nothing else sends these rows.
            async with self.db.snapshot() as session:
                rows = (await session.execute(stmt)).all()
            return len(rows), len(await self._relay(rows))
        # Row locks (SKIP LOCKED) keep the sweeps of other replicas off these rows.
        async with self.db.transaction() as session:
            rows = (await session.execute(stmt.with_for_update(skip_locked=True))).all()
            accepted = await self._record(session, rows, await self._send_all(rows))
            return len(rows), len(accepted)

    async def _relay(self, rows: Sequence[Any]) -> list[Any]:
        """Send ``rows``, then delete the accepted ones; returns them. Rows the broker
        refused count an attempt and are left to the sweep; on an error (broker
        unreachable) nothing is recorded and the held rows are tried again."""
        if not rows:
            return []
        failed = await self._send_all(rows)
        async with self.db.transaction() as session:
            return await self._record(session, rows, failed)

    async def _send_all(self, rows: Sequence[Any]) -> dict[uuid.UUID, str]:
        """Send the rows in batches the publisher bounds by count and bytes; returns the
        failed row ids with the reason."""
        reasons = await asyncio.gather(*(self._send(row) for row in rows))
        return {
            row.id: reason for row, reason in zip(rows, reasons, strict=True) if reason is not None
        }

    async def _record(
        self, session: AsyncSession, rows: Sequence[Any], failed: dict[uuid.UUID, str]
    ) -> list[Any]:
        """Delete the sent rows and count an attempt on the others, which the relay then
        holds no longer; returns the sent rows."""
        accepted = [row for row in rows if row.id not in failed]
        for row in rows:
            self._held.pop(row.id, None)
            if row.id in failed:
                await session.execute(
                    update(self.table)
                    .where(self.table.c.id == row.id)
                    .values(attempts=row.attempts + 1, last_error=failed[row.id])
                )
        if accepted:
            await session.execute(
                delete(self.table).where(self.table.c.id.in_([row.id for row in accepted]))
            )
        now = utcnow()
        for row in accepted:
            OUTBOX_LAG.labels(row.queue).observe((now - row.created_at).total_seconds())
        return accepted

    async def _send(self, row: Any) -> str | None:
        message = OutgoingMessage(row.body, row.trace_carrier)
        try:
            reason = await self.publisher.send(row.queue, message)
        except Exception:
            OUTBOX_FAILURES.labels(row.queue).inc()
            raise
        if reason is not None:
            OUTBOX_FAILURES.labels(row.queue).inc()
            logger.error(
                "broker refused an outbox event", extra={"queue": row.queue, "reason": reason}
            )
        return reason
