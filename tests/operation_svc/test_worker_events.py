"""Worker events handled as a group: one statement per table, each event on its own terms."""

from __future__ import annotations

import uuid
from contextvars import copy_context
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from idp_common.db import utcnow
from idp_common.events import ExecutionFinished, ExecutionLog, LogLine
from idp_common.messaging.inbox import Received, handle_each
from operation_svc.executions.tasks import WorkerReports
from operation_svc.models import AuditEntry, Execution, OperationTemplate, messaging
from operation_svc.models import ExecutionLog as ExecutionLogRow
from tests.harness import migrated_database


def running(tenant: str) -> Execution:
    now = utcnow()
    return Execution(
        id=uuid.uuid4(),
        tenant=tenant,
        template_slug="noop",
        submitted_by="alice",
        parameters={},
        argv=["true"],
        timeout_seconds=10,
        status="running",
        worker_id="w1",
        started_at=now,
        heartbeat_at=now,
    )


def line(seq: int, message: str) -> LogLine:
    return LogLine(seq=seq, stream="stdout", message=message, timestamp=datetime.now(UTC))


def received(data: ExecutionLog | ExecutionFinished, tenant: str) -> Received:
    return Received(data.to_event(source="urn:test", tenant=tenant, subject="x"), copy_context())


def finish(execution: Execution, *lines: LogLine) -> ExecutionFinished:
    return ExecutionFinished(
        execution_id=execution.id,
        status="succeeded",
        exit_code=0,
        duration_seconds=0.01,
        output_excerpt="",
        worker_id="w1",
        last_lines=list(lines),
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_group_of_logs_and_finishes_is_applied_with_one_lookup(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path, "operation") as db:
        first, second, foreign = running("acme"), running("acme"), running("other")
        async with db.transaction() as session:
            session.add_all([first, second, foreign])
        group = [
            received(
                ExecutionLog(execution_id=first.id, lines=[line(0, "a"), line(1, "b")]), "acme"
            ),
            received(finish(first, line(2, "c")), "acme"),
            received(finish(second), "acme"),
            received(finish(foreign), "acme"),  # another tenant's execution: not found
            received(finish(running("acme")), "acme"),  # unknown execution: ignored
        ]
        lookups: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement.lstrip().startswith("SELECT") and "FROM executions" in statement:
                lookups.append(statement)

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        async with db.unit_of_work() as work:
            await handle_each(work, WorkerReports(), group)
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)

        async with db.snapshot() as session:
            found = await session.execute(select(Execution.id, Execution.status))
            statuses = dict(found.tuples().all())
            lines = (await session.scalars(select(ExecutionLogRow.message))).all()
            finished = set(
                await session.scalars(
                    select(AuditEntry.object_id).where(AuditEntry.action == "execution.finish")
                )
            )
        assert statuses == {first.id: "succeeded", second.id: "succeeded", foreign.id: "running"}
        assert sorted(lines) == ["a", "b", "c"]
        assert finished == {str(first.id), str(second.id)}
        assert len(lookups) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_finish_under_a_concurrency_limit_dispatches_the_next_waiting_run(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path, "operation") as db:
        template = OperationTemplate(
            tenant="acme",
            slug="solo",
            name="solo",
            argv=["true"],
            parameters=[],
            max_concurrency=1,
            created_by="alice",
            updated_by="alice",
        )
        done, waiting = running("acme"), running("acme")
        waiting.status, waiting.started_at, waiting.worker_id = "pending", None, None
        async with db.transaction() as session:
            session.add(template)
            await session.flush()
            for execution in (done, waiting):
                execution.template_id = template.id
            session.add_all([done, waiting])

        async with db.unit_of_work() as work:
            await handle_each(work, WorkerReports(), [received(finish(done), "acme")])

        async with db.snapshot() as session:
            dispatched = await session.scalar(
                select(Execution.dispatched_at).where(Execution.id == waiting.id)
            )
            jobs = (await session.scalars(select(messaging.outbox.c.body))).all()
        assert dispatched is not None
        assert [str(waiting.id) in body for body in jobs] == [True]
