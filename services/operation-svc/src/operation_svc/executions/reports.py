"""What a worker reports of a run it holds: its output lines and its end. Reports come
through the broker; a finish the broker would not take comes over HTTP instead, and either
copy, or both, records the same end once."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import record_audit
from idp_common.db import insert_at_commit_ignoring_conflicts
from idp_common.events import ExecutionFinished, LogLine
from operation_svc.executions.lifecycle import record_ended, tell_requesters
from operation_svc.executions.state import transition
from operation_svc.models import AuditEntry, Execution
from operation_svc.models import ExecutionLog as ExecutionLogRow

_LOG_LINES = cast(Table, ExecutionLogRow.__table__)


def store_lines(session: AsyncSession, execution: Execution, lines: list[LogLine]) -> None:
    """Keep the lines, each once by its ``seq`` (a report received twice adds nothing)."""
    for line in lines:
        row = {"execution_id": execution.id, **line.model_dump()}
        insert_at_commit_ignoring_conflicts(session, _LOG_LINES, row)


def record_finish(session: AsyncSession, execution: Execution, finished: ExecutionFinished) -> bool:
    """Record the end a worker reported; False if the execution had already ended."""
    if not transition(execution, finished.status):
        return False
    execution.exit_code = finished.exit_code
    execution.log_lines = finished.log_lines
    execution.output_bytes = finished.output_bytes
    execution.output_truncated = finished.output_truncated
    execution.output = finished.output_excerpt
    execution.error = finished.error
    tell_requesters(session, execution)
    record_ended(session, execution)
    record_audit(
        session,
        AuditEntry,
        finished.worker_id,
        "execution.finish",
        execution.id,
        tenant=execution.tenant,
        changes={"status": execution.status, "exit_code": execution.exit_code},
    )
    return True
