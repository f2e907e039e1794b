"""A submission mirrors its latest execution's status: late or foreign updates never move it
back, a retry's execution (a newer attempt) takes it over, and each attempt is kept,
whether the updates arrive one by one or together in one group."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import copy_context
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from idp_common.db import Database
from idp_common.events import SubmissionUpdated
from idp_common.messaging.inbox import Received, handle_each
from panel_svc.models import Panel, Submission, SubmissionAttempt
from panel_svc.submissions.tasks import ExecutionUpdates
from tests.harness import fresh_database, migrate


def updated(submission_id: uuid.UUID, status: str, tenant: str = "acme", **data: Any) -> Received:
    event = SubmissionUpdated(submission_id=submission_id, status=status, **data).to_event(
        source="urn:test", tenant=tenant, subject=str(submission_id)
    )
    return Received(event, copy_context())


@asynccontextmanager
async def panel_database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    async with fresh_database(backend, tmp_path, "panel") as url:
        await migrate(url, "panel")
        db = Database(url)
        try:
            yield db
        finally:
            await db.dispose()


async def a_submission(db: Database) -> Submission:
    panel = Panel(
        tenant="acme",
        slug="p",
        title="p",
        operation_template="t",
        created_by="a",
        updated_by="a",
    )
    async with db.transaction() as session:
        session.add(panel)
        await session.flush()
        submission = Submission(tenant="acme", panel_id=panel.id, submitted_by="bob", data={})
        session.add(submission)
    return submission


@pytest.mark.parametrize("together", [False, True], ids=["one by one", "in one group"])
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_updates_move_a_submission_forward_only(
    backend: str, together: bool, tmp_path: Path
) -> None:
    async with fresh_database(backend, tmp_path, "panel") as url:
        await migrate(url, "panel")
        db = Database(url)
        submission = await a_submission(db)
        execution_id = uuid.uuid4()

        async def apply(*updates: Received) -> Submission:
            for group in [list(updates)] if together else [[update] for update in updates]:
                async with db.unit_of_work() as work:
                    await handle_each(work, ExecutionUpdates(), group)
            async with db.transaction() as session:
                found = await session.get(Submission, submission.id)
                assert found is not None
                return found

        shown = await apply(updated(submission.id, "pending", execution_id=execution_id))
        assert (shown.status, shown.execution_id) == ("pending", execution_id)
        shown = await apply(updated(submission.id, "succeeded", exit_code=0, output="hi"))
        assert (shown.status, shown.exit_code, shown.output) == ("succeeded", 0, "hi")
        assert shown.execution_id == execution_id  # an update without the id keeps it
        shown = await apply(
            updated(submission.id, "running"),  # arrived late
            updated(submission.id, "failed", exit_code=1),  # a finished one stays finished
            updated(submission.id, "failed", tenant="intruder"),
            updated(uuid.uuid4(), "running"),  # unknown: ignored, not an error
        )
        assert (shown.status, shown.exit_code) == ("succeeded", 0)
        await db.dispose()


@pytest.mark.parametrize("together", [False, True], ids=["one by one", "in one group"])
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_retry_takes_the_submission_over_and_every_attempt_is_kept(
    backend: str, together: bool, tmp_path: Path
) -> None:
    async with fresh_database(backend, tmp_path, "panel") as url:
        await migrate(url, "panel")
        db = Database(url)
        submission = await a_submission(db)
        first, second = uuid.uuid4(), uuid.uuid4()
        updates = [
            updated(submission.id, "running", execution_id=first),
            updated(submission.id, "cancelled", execution_id=first, error="cancelled by bob"),
            updated(submission.id, "pending", execution_id=second, attempt=2),
            updated(submission.id, "running", execution_id=second, attempt=2),
            # The first attempt's late news changes nothing but its own record.
            updated(submission.id, "failed", execution_id=first, error="late"),
            updated(submission.id, "succeeded", execution_id=second, attempt=2, exit_code=0),
            updated(submission.id, "running", execution_id=second, attempt=2),  # late
        ]
        for group in [updates] if together else [[update] for update in updates]:
            async with db.unit_of_work() as work:
                await handle_each(work, ExecutionUpdates(), group)
        async with db.snapshot() as session:
            shown = await session.get(Submission, submission.id)
            attempts = (
                await session.scalars(select(SubmissionAttempt).order_by(SubmissionAttempt.attempt))
            ).all()
        assert shown is not None
        assert (shown.status, shown.execution_id, shown.attempt) == ("succeeded", second, 2)
        assert [(a.attempt, a.execution_id, a.status) for a in attempts] == [
            (1, first, "cancelled"),
            (2, second, "succeeded"),
        ]
        await db.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_run_awaiting_approval_is_shown_then_followed_once_approved(
    backend: str, tmp_path: Path
) -> None:
    async with panel_database(backend, tmp_path) as db:
        submission = await a_submission(db)
        execution_id = uuid.uuid4()
        seen = []
        for update in (
            updated(submission.id, "awaiting_approval", execution_id=execution_id),
            updated(submission.id, "pending"),  # approved
            updated(submission.id, "running"),
            updated(submission.id, "awaiting_approval"),  # late: never moves "running" back
            updated(submission.id, "pending"),
            updated(submission.id, "expired"),  # impossible once running; kept as ended
        ):
            async with db.unit_of_work() as work:
                await handle_each(work, ExecutionUpdates(), [update])
            async with db.snapshot() as session:
                shown = await session.get(Submission, submission.id)
                assert shown is not None
                seen.append(shown.status)
        assert seen == ["awaiting_approval", "pending", "running", "running", "running", "expired"]
