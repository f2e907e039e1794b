"""The transactional outbox: events are rows written in the business transaction; the commit
hands them to the relay in memory, which publishes them at once, and a periodic sweep of the
table catches what a crash or an outage left.

An event that carries a whole state (a submission's status) may be marked ``Superseding``:
while it is unsent, a newer row with the same key makes it redundant, and the relay deletes
it unsent. One marked ``wait`` (a state that is not final) is held up to ``SUPERSEDE_WAIT``
for such a newer row: a short run's "pending", "running" and end then cost one message, not
three. Only the rows the relay holds in memory are merged; the sweep sends every row."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import and_, delete, event, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from idp_common.db import Database, after_commit, insert_at_commit, new_id, utcnow
from idp_common.loops import PeriodicLoop
from idp_common.messaging.envelope import Event
from idp_common.messaging.publisher import (
    OutgoingMessage,
    Publisher,
    checked_body,
    messaging_attributes,
    missing_queue,
)
from idp_common.messaging.tables import MessagingTables
from idp_common.messaging.topology import MAX_BATCH_SIZE, QUEUES, QueueSpec
from idp_common.messaging.trace_context import current_trace_carrier

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
_PENDING = "idp.outbox_pending"
# Rows the relay keeps in memory at most (a broker outage must not grow it without end).
MAX_HELD_ROWS = 1000
# Younger rows are left to the process that committed them, which holds them in memory.
SWEEP_AFTER = timedelta(seconds=5)
# How long a superseding row that is not final waits for a newer one (from the oldest row
# of its key), by default: a status shows that much later, far below the console's polling
# period.
SUPERSEDE_WAIT = timedelta(milliseconds=100)
# How long the rows the broker has taken wait for another transaction to delete them in
# (``Database.ride_on_writes``) before the relay deletes them in one of its own. Until then a
# crash sends them again (consumers are idempotent), as it did between a send and its delete.
DELETE_WITHIN = timedelta(milliseconds=200)
# Rows one transaction deletes at most.
MAX_DELETED = 500

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
OUTBOX_SUPERSEDED = Counter(
    "idp_outbox_superseded_total",
    "Outbox events deleted unsent: a newer event carried the same state, further on.",
    ["queue"],
)


@dataclass(frozen=True, slots=True)
class Superseding:
    """A state-carrying event's key (its subject): a newer row with the same key, while this
    one is unsent, carries all it says. ``wait``: not a final state, so worth holding back
    for a newer one (``SUPERSEDE_WAIT``)."""

    key: str
    wait: bool


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
    supersede: Superseding | None = None  # kept in memory only: the sweep sends every row

    def columns(self) -> dict[str, Any]:
        """The row as the outbox table stores it."""
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name != "supersede"
        }


def outbox_row(queue: QueueSpec, event: Event, supersede: Superseding | None = None) -> OutboxRow:
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
        new_id(),
        queue.name,
        event.id,
        event.type,
        checked_body(event),
        carrier,
        utcnow(),
        0,
        supersede,
    )


def add_outbox_row(session: AsyncSession, tables: MessagingTables, row: OutboxRow) -> None:
    """Write ``row`` in the session's transaction (at its commit); it leaves after commit."""
    insert_at_commit(session, tables.outbox, row.columns())
    session.info.setdefault(_PENDING, []).append(row)


def add_event(
    session: AsyncSession,
    tables: MessagingTables,
    queue: QueueSpec,
    event: Event,
    supersede: Superseding | None = None,
) -> None:
    """Write ``event`` for ``queue`` in the session's transaction; it leaves after commit."""
    add_outbox_row(session, tables, outbox_row(queue, event, supersede))


class OutboxRelay(PeriodicLoop):
    """Publishes committed outbox rows and deletes them once the broker has them.

    A commit hands its rows to the relay in memory and wakes it, so they are sent without
    being read back (a row is held until the broker accepted or refused it, and beyond
    ``MAX_HELD_ROWS`` rows are left in the table only). The rows the broker took (and those
    superseded) are deleted by the next transaction that writes anyway, or within
    ``DELETE_WITHIN`` by the relay: their own transaction took SQLite's write turn when the
    worker's claim needed it, and cost operation-svc 4.5 to 5.1 ms of CPU per execution in the
    burst of `make bench` where this way costs 3.7 (two runs each, same machine). The table
    is swept for the rest: at start every row (what a crash left), then every
    ``poll_seconds`` the rows older than ``SWEEP_AFTER``, so that another replica's fresh
    rows are left to it."""

    def __init__(
        self,
        db: Database,
        tables: MessagingTables,
        publisher: Publisher,
        *,
        poll_seconds: float = 1.0,
        max_backoff_seconds: float = 10.0,
        supersede_wait: timedelta = SUPERSEDE_WAIT,
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
        # Rows whose table row is to delete, with when they were sent (monotonic seconds).
        self._done: dict[uuid.UUID, float] = {}
        self._sweep_cutoff: timedelta | None = None  # the first sweep takes every row
        self._next_sweep = 0.0
        self._supersede_wait = supersede_wait
        self._waiting: asyncio.TimerHandle | None = None  # wakes the relay for waiting rows
        # The platform's queues found missing in this sweep: the rest of it passes their rows.
        self._missing: set[str] = set()
        event.listen(db.sync_session_class, "after_commit", self._after_commit)
        event.listen(db.sync_session_class, "after_rollback", self._after_rollback)
        db.ride_on_writes(self._delete_done_in)

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
            due, superseded, wait = _due_now(self._held_rows(), self._supersede_wait, utcnow())
            await self._relay(due, superseded)
            if self._done and self._deletes_due_in() <= 0:
                await self._delete_done()
            self._wake_after(wait, self._deletes_due_in() if self._done else None)
            if time.monotonic() >= self._next_sweep:
                await self._sweep(self._sweep_cutoff)
                self._sweep_cutoff = SWEEP_AFTER
                self._next_sweep = time.monotonic() + self.period_seconds
        finally:
            OUTBOX_BACKLOG.set(len(self._held))

    async def after_stop(self) -> None:
        """Send what was committed up to the stop (the consumers stop first)."""
        try:
            await self._relay(*_due_now(self._held_rows(), self._supersede_wait, None)[:2])
            await self._delete_done()
        except Exception:
            logger.warning("outbox relay could not flush at stop; the sweep sends it later")

    def _deletes_due_in(self) -> float:
        """Seconds until the oldest row to delete is due for a transaction of the relay's."""
        return next(iter(self._done.values())) + DELETE_WITHIN.total_seconds() - time.monotonic()

    def _delete_done_in(self, session: Session) -> None:
        """Delete the rows done with in ``session``'s transaction (they are forgotten once
        it commits; kept for another one if it rolls back)."""
        ids = list(itertools.islice(self._done, MAX_DELETED))
        if ids:
            session.execute(delete(self.table).where(self.table.c.id.in_(ids)))
            after_commit(session, partial(self._forget_done, ids))

    def _forget_done(self, ids: list[uuid.UUID]) -> None:
        for row_id in ids:
            self._done.pop(row_id, None)

    async def _delete_done(self) -> None:
        """Delete the rows done with in transactions of the relay's own."""
        while self._done:
            async with self.db.transaction() as session:
                await session.run_sync(self._delete_done_in)

    def _held_rows(self) -> list[OutboxRow]:
        return list(self._held.values())

    def _wake_after(self, wait: timedelta | None, deletes_due_in: float | None) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None
        delays = [
            delay
            for delay in (wait.total_seconds() if wait else None, deletes_due_in)
            if delay is not None
        ]
        if delays:
            self._waiting = asyncio.get_running_loop().call_later(max(min(delays), 0), self.wake)

    async def relay_pending(self) -> int:
        """Publish every pending row of the table, whatever its age; returns how many the
        broker accepted."""
        return await self._sweep(None)

    async def _sweep(self, older_than: timedelta | None) -> int:
        """Send the table's rows (older than ``older_than``) batch after batch; returns how
        many the broker accepted."""
        await self._delete_done()  # rows sent already are not swept again
        total, after = 0, None
        self._missing = set()
        while True:
            rows, accepted = await self._sweep_batch(older_than, after)
            await self._delete_done()
            total += accepted
            if len(rows) < MAX_BATCH_SIZE:
                return total
            # On past the rows just tried: those the broker refused (a reply queue deleted
            # by its producer) would otherwise be each sweep's whole first batch, forever.
            after = (rows[-1].created_at, rows[-1].id)

    async def _sweep_batch(
        self, older_than: timedelta | None, after: tuple[datetime, uuid.UUID] | None
    ) -> tuple[Sequence[Any], int]:
        """The next batch of rows (in commit order, after ``after``) and how many of them the
        broker accepted."""
        table = self.table
        stmt = select(table).order_by(table.c.created_at, table.c.id).limit(MAX_BATCH_SIZE)
        if older_than is not None:
            stmt = stmt.where(table.c.created_at < utcnow() - older_than)
        if self._missing:
            stmt = stmt.where(table.c.queue.not_in(self._missing))
        if after is not None:
            created_at, row_id = after
            stmt = stmt.where(
                or_(
                    table.c.created_at > created_at,
                    and_(table.c.created_at == created_at, table.c.id > row_id),
                )
            )
        if self.db.is_sqlite:
            # SQLite's write lock covers the whole database: read from a snapshot, and hold
            # the lock for the deletes only, not across the broker round trip. One process
            # owns each file in the embedded default, so nothing else sends these rows.
            async with self.db.snapshot() as session:
                rows = (await session.execute(stmt)).all()
            return rows, len(await self._relay(self._left_to_sweep(rows)))
        # Row locks (SKIP LOCKED) keep the sweeps of other replicas off these rows.
        async with self.db.transaction() as session:
            rows = (await session.execute(stmt.with_for_update(skip_locked=True))).all()
            sent = self._left_to_sweep(rows)
            accepted = await self._record(session, sent, await self._send_all(sent))
            return rows, len(accepted)

    def _left_to_sweep(self, rows: Sequence[Any]) -> list[Any]:
        """``rows`` but those sent already and the superseding ones this relay holds: it
        sends those itself, the newest of each key only."""
        return [
            row
            for row in rows
            if row.id not in self._done
            and ((held := self._held.get(row.id)) is None or held.supersede is None)
        ]

    async def _relay(self, rows: Sequence[Any], superseded: Sequence[OutboxRow] = ()) -> list[Any]:
        """Send ``rows``; the accepted ones, and the ``superseded`` ones unsent, are then to
        delete; returns the sent rows. Rows the broker refused count an attempt and are left
        to the sweep; on an error (broker unreachable) nothing is recorded and the held rows
        are tried again."""
        if not rows:
            return []
        failed = await self._send_all(rows)
        sent_at = time.monotonic()
        for row in superseded:
            self._held.pop(row.id, None)
            self._done[row.id] = sent_at
            OUTBOX_SUPERSEDED.labels(row.queue).inc()
        accepted = [row for row in rows if row.id not in failed]
        for row in rows:
            self._held.pop(row.id, None)
        for row in accepted:
            self._done[row.id] = sent_at
        _observe_lag(accepted)
        if failed:
            async with self.db.transaction() as session:
                await self._count_attempts(session, rows, failed)
        return accepted

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
        """Delete the sent rows and count an attempt on the others (a sweep's rows, locked
        in ``session``); returns the sent rows."""
        accepted = [row for row in rows if row.id not in failed]
        for row in rows:
            self._held.pop(row.id, None)
        await self._count_attempts(session, rows, failed)
        if accepted:
            await session.execute(
                delete(self.table).where(self.table.c.id.in_([row.id for row in accepted]))
            )
        _observe_lag(accepted)
        return accepted

    async def _count_attempts(
        self, session: AsyncSession, rows: Sequence[Any], failed: dict[uuid.UUID, str]
    ) -> None:
        """Count an attempt on the rows the broker refused (the sweep sends them again), but
        delete the replies whose queue is gone."""
        for row in rows:
            if row.id not in failed:
                continue
            if failed[row.id] == missing_queue(row.queue):
                if row.queue not in _TOPOLOGY:
                    logger.warning(
                        "reply dropped: its queue was deleted", extra={"queue": row.queue}
                    )
                    await session.execute(delete(self.table).where(self.table.c.id == row.id))
                    continue
                self._missing.add(row.queue)
            await session.execute(
                update(self.table)
                .where(self.table.c.id == row.id)
                .values(attempts=row.attempts + 1, last_error=failed[row.id])
            )

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


# The platform's own queues are waited for (a topology not created yet); any other queue an
# outbox writes to is a reply queue, which its producer may delete: nobody is left to read
# what was meant for it, and anyone could otherwise fill the table with rows sent forever.
_TOPOLOGY = frozenset(spec.name for spec in QUEUES)


def _observe_lag(accepted: Sequence[Any]) -> None:
    now = utcnow()
    for row in accepted:
        OUTBOX_LAG.labels(row.queue).observe((now - row.created_at).total_seconds())


def _due_now(
    held: list[OutboxRow], supersede_wait: timedelta, now: datetime | None
) -> tuple[list[OutboxRow], list[OutboxRow], timedelta | None]:
    """The held rows (in commit order) to send now, those a newer row of their key
    supersedes, and how long until the first waiting row is due (None: none waits).
    ``now`` None: nothing waits (the relay is stopping)."""
    due: list[OutboxRow] = []
    superseded: list[OutboxRow] = []
    by_key: dict[str, list[OutboxRow]] = {}
    for row in held:
        if row.supersede is None:
            due.append(row)
        else:
            by_key.setdefault(row.supersede.key, []).append(row)
    wait: timedelta | None = None
    for rows in by_key.values():
        newest = rows[-1]
        assert newest.supersede is not None
        left = supersede_wait - (now - rows[0].created_at) if now is not None else None
        if newest.supersede.wait and left is not None and left > timedelta(0):
            wait = left if wait is None else min(wait, left)
            continue
        due.append(newest)
        superseded.extend(rows[:-1])
    return due, superseded, wait
