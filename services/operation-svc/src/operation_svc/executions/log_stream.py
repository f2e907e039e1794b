"""Live logs as Server-Sent Events: each line's ``seq`` is its event id, so a client that
reconnects with ``Last-Event-ID`` resumes after the last line it saw, with no gap and no
duplicate. The stream ends once the execution has ended and every line has arrived."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

from sse_starlette import ServerSentEvent

from idp_common.db import Database
from idp_common.events import TERMINAL_STATUSES
from operation_svc.executions.repository import ExecutionRepository
from operation_svc.executions.schemas import LogLineOut

POLL_SECONDS = 0.2
BATCH = 500
# After the end, lines still in flight get this long to arrive before the stream closes.
LATE_LINES_GRACE_SECONDS = 10.0


async def log_events(
    db: Database, tenant: str, execution_id: uuid.UUID, after_seq: int
) -> AsyncIterator[ServerSentEvent]:
    ended_at: float | None = None
    while True:
        # A snapshot: polling never takes (or waits for) SQLite's single write turn.
        async with db.snapshot() as session:
            executions = ExecutionRepository(session, tenant)
            execution = await executions.get_or_404(execution_id)
            lines = await executions.logs_after(execution_id, after_seq, BATCH)
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
        await asyncio.sleep(POLL_SECONDS)
