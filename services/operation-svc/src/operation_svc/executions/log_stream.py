"""Live logs as Server-Sent Events: each line's ``seq`` is its event id, so a client that
reconnects with ``Last-Event-ID`` resumes after the last line it saw, with no gap and no
duplicate. The stream ends once the execution has ended and every line has arrived.

Streams poll the database on a shared beat (every ``POLL_SECONDS`` of the clock, not of
each stream's start), and the streams of one execution that ask for the lines after the
same one share one read: many people watching one run cost one read per beat. One caller
may hold ``log_streams_per_caller`` streams open at once (per replica)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any

from prometheus_client import Counter as CounterMetric
from prometheus_client import Gauge
from sse_starlette import EventSourceResponse, ServerSentEvent

from idp_common.api_keys import is_api_key
from idp_common.auth import Principal
from idp_common.coalescing import SharedCalls
from idp_common.db import Database, utcnow
from idp_common.errors import TooManyRequests
from idp_common.events import TERMINAL_STATUSES
from operation_svc.api_keys.service import withdrawn_key
from operation_svc.executions.repository import ExecutionRepository
from operation_svc.executions.schemas import LogLineOut
from operation_svc.models import Execution, ExecutionLog

POLL_SECONDS = 0.2
BATCH = 500
# After the end, lines still in flight get this long to arrive before the stream closes.
LATE_LINES_GRACE_SECONDS = 10.0
PING_SECONDS = 15
# How often a stream looks whether its credential may still read (a key withdrawn, a token
# expired).
WITHDRAWAL_CHECK_SECONDS = 1.0
STREAM_RETRY_AFTER_SECONDS = 5
STREAMS_OPEN = Gauge("idp_log_streams_open", "Live log streams open on this replica.")
STREAMS_REFUSED = CounterMetric(
    "idp_log_streams_refused_total",
    "Live log streams refused: their caller held OPERATION_LOG_STREAMS_PER_CALLER already.",
)
_Read = tuple[Execution, Sequence[ExecutionLog]]
_READS: SharedCalls[_Read] = SharedCalls()


async def _read(db: Database, tenant: str, execution_id: uuid.UUID, after_seq: int) -> _Read:
    """The execution and up to ``BATCH`` of its lines after ``after_seq``, on a snapshot:
    polling never takes (or waits for) SQLite's single write turn."""
    async with db.snapshot() as session:
        executions = ExecutionRepository(session, tenant)
        execution = await executions.get_or_404(execution_id)
        return execution, await executions.logs_after(execution_id, after_seq, BATCH)


async def _next_beat() -> None:
    await asyncio.sleep(POLL_SECONDS - time.monotonic() % POLL_SECONDS)


async def _withdrawn(db: Database, principal: Principal) -> str | None:
    if principal.expires_at is not None and time.time() >= principal.expires_at:
        return "its token has expired"
    if not is_api_key(principal):
        return None
    async with db.snapshot() as session:
        return await withdrawn_key(session, principal.tenant, principal.subject, utcnow())


async def log_events(
    db: Database, principal: Principal, execution_id: uuid.UUID, after_seq: int
) -> AsyncIterator[ServerSentEvent]:
    """The lines after ``after_seq`` as they come, then the end. A stream ends (an
    ``error`` event saying why) once its API key is revoked or has expired, or its token
    has expired: it was checked only when the stream opened."""
    tenant = principal.tenant
    ended_at: float | None = None
    checked_at = time.monotonic()
    while True:
        if time.monotonic() - checked_at >= WITHDRAWAL_CHECK_SECONDS:
            checked_at = time.monotonic()
            if (withdrawn := await _withdrawn(db, principal)) is not None:
                yield ServerSentEvent(event="error", data=json.dumps({"detail": withdrawn}))
                return
        # Read-only rows, shared by the streams that ask the same: none may change them.
        execution, lines = await _READS.call(
            (db, tenant, execution_id, after_seq),
            partial(_read, db, tenant, execution_id, after_seq),
        )
        for line in lines:
            after_seq = line.seq
            yield ServerSentEvent(
                id=str(line.seq),
                event="log",
                # The same model as the paged logs: one shape, one timestamp format.
                data=LogLineOut.model_validate(line).model_dump_json(),
            )
        if len(lines) == BATCH:
            continue
        if execution.status in TERMINAL_STATUSES:
            ended_at = ended_at or time.monotonic()
            complete = execution.log_lines is None or after_seq + 1 >= execution.log_lines
            if complete or time.monotonic() - ended_at > LATE_LINES_GRACE_SECONDS:
                yield ServerSentEvent(
                    event="end",
                    data=json.dumps({"status": execution.status, "exit_code": execution.exit_code}),
                )
                return
        await _next_beat()


class _ClosingStream(EventSourceResponse):
    """A stream that calls ``on_close`` once it has ended, however it ended (the client
    gone before its first event included)."""

    def __init__(self, content: AsyncIterator[ServerSentEvent], on_close: Callable[[], None]):
        super().__init__(content, ping=PING_SECONDS)
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


class LiveStreams:
    """The live log streams open in this process, counted by caller (tenant and subject):
    one caller cannot hold every connection and every poll of the service."""

    def __init__(self, per_caller: int) -> None:
        self.per_caller = per_caller
        self._open: Counter[tuple[str, str]] = Counter()

    def open(
        self, principal: Principal, events: AsyncIterator[ServerSentEvent]
    ) -> EventSourceResponse:
        caller = (principal.tenant, principal.subject)
        if self._open[caller] >= self.per_caller:
            STREAMS_REFUSED.inc()
            raise TooManyRequests(
                f"{self.per_caller} live log streams of this caller are open already: close "
                "one first (the limit per caller and replica is "
                "OPERATION_LOG_STREAMS_PER_CALLER).",
                headers={"Retry-After": str(STREAM_RETRY_AFTER_SECONDS)},
            )
        self._open[caller] += 1
        STREAMS_OPEN.inc()
        return _ClosingStream(events, partial(self._closed, caller))

    def _closed(self, caller: tuple[str, str]) -> None:
        STREAMS_OPEN.dec()
        self._open[caller] -= 1
        if not self._open[caller]:
            del self._open[caller]
