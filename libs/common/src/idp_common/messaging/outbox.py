"""The transactional outbox: events are rows written in the business transaction and
published by a relay that a commit wakes at once (a timer only catches what a crash left)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram
from sqlalchemy import delete, event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from idp_common.db import Database, new_id, utcnow
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

OUTBOX_LAG = Histogram(
    "idp_outbox_publish_lag_seconds",
    "Time from the commit of an outbox event to its acceptance by the broker.",
    ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
OUTBOX_FAILURES = Counter(
    "idp_outbox_publish_failures_total", "Outbox events the broker did not accept.", ["queue"]
)


async def add_event(
    session: AsyncSession, tables: MessagingTables, queue: QueueSpec, event: Event
) -> None:
    """Write ``event`` for ``queue`` in the session's transaction; it leaves after commit."""
    with tracer.start_as_current_span(
        f"{queue.name} publish",
        kind=SpanKind.PRODUCER,
        attributes=messaging_attributes(queue.name, "publish")
        | {"cloudevents.event_type": event.type},
    ):
        carrier = current_trace_carrier()
    await session.execute(
        insert(tables.outbox).values(
            id=new_id(),
            queue=queue.name,
            event_id=event.id,
            event_type=event.type,
            body=checked_body(event),
            trace_carrier=carrier,
            created_at=utcnow(),
            attempts=0,
        )
    )
    session.info[_PENDING] = True


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        tables: MessagingTables,
        publisher: Publisher,
        *,
        poll_seconds: float = 1.0,
        max_backoff_seconds: float = 10.0,
    ) -> None:
        self.db = db
        self.table = tables.outbox
        self.publisher = publisher
        self.poll_seconds = poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        event.listen(db.sync_session_class, "after_commit", self._after_commit)
        event.listen(db.sync_session_class, "after_rollback", self._after_rollback)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_PENDING, False):
            self._wakeup.set()

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(_PENDING, None)

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        backoff = 0.0
        while True:
            self._wakeup.clear()
            try:
                await self.relay_pending()
                backoff = 0.0
            except Exception:
                backoff = min(max(backoff * 2, self.poll_seconds), self.max_backoff_seconds)
                logger.warning("outbox relay failed; retrying in %.1fs", backoff, exc_info=True)
            if self._stopping.is_set():
                return
            timeout = backoff or self.poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    (self._stopping if backoff else self._wakeup).wait(), timeout
                )

    async def relay_pending(self) -> int:
        """Publish pending events until none is left; returns how many were accepted."""
        total = 0
        while True:
            accepted = await self._relay_batch()
            total += accepted
            if accepted < MAX_BATCH_SIZE:
                return total

    async def _relay_batch(self) -> int:
        stmt = select(self.table).order_by(self.table.c.created_at).limit(MAX_BATCH_SIZE)
        if self.db.is_sqlite:
            # SQLite's write lock covers the whole database: read from a snapshot, and hold
            # the lock for the deletes only, not across the broker round trip. One process
            # (one relay) owns each file in the embedded default, so nothing else sends these
            # rows meanwhile.
            async with self.db.snapshot() as session:
                rows = (await session.execute(stmt)).all()
            if not rows:
                return 0
            sent = await self._send_all(rows)
            async with self.db.transaction() as session:
                accepted = await self._record(session, rows, sent)
        else:
            # Row locks (SKIP LOCKED) keep concurrent relays of other replicas off these rows.
            async with self.db.transaction() as session:
                rows = (await session.execute(stmt.with_for_update(skip_locked=True))).all()
                accepted = await self._record(session, rows, await self._send_all(rows))
        now = utcnow()
        for row in accepted:
            OUTBOX_LAG.labels(row.queue).observe((now - row.created_at).total_seconds())
        return len(accepted)

    async def _send_all(self, rows: Sequence[Any]) -> dict[str, str]:
        """Send the rows in batches the publisher bounds by count and bytes; returns the
        failed row ids with the reason."""
        reasons = await asyncio.gather(*(self._send(row) for row in rows))
        return {
            str(row.id): reason
            for row, reason in zip(rows, reasons, strict=True)
            if reason is not None
        }

    async def _record(
        self, session: AsyncSession, rows: Sequence[Any], failed: dict[str, str]
    ) -> list[Any]:
        """Delete the sent rows and count an attempt on the others; returns the sent rows."""
        accepted = [row for row in rows if str(row.id) not in failed]
        for row in rows:
            if str(row.id) in failed:
                await session.execute(
                    update(self.table)
                    .where(self.table.c.id == row.id)
                    .values(attempts=row.attempts + 1, last_error=failed[str(row.id)])
                )
        if accepted:
            await session.execute(
                delete(self.table).where(self.table.c.id.in_([row.id for row in accepted]))
            )
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
