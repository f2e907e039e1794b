"""A submission mirrors its execution's status: late or foreign updates never move it back,
whether they arrive one by one or together in one group."""

from __future__ import annotations

import uuid
from contextvars import copy_context
from pathlib import Path
from typing import Any

import pytest

from idp_common.db import Database
from idp_common.events import SubmissionUpdated
from idp_common.messaging.inbox import Received
from panel_svc.models import Panel, Submission
from panel_svc.submissions.service import apply_updates
from tests.harness import fresh_database, migrate


def updated(submission_id: uuid.UUID, status: str, tenant: str = "acme", **data: Any) -> Received:
    event = SubmissionUpdated(submission_id=submission_id, status=status, **data).to_event(
        source="urn:test", tenant=tenant, subject=str(submission_id)
    )
    return Received(event, copy_context())


@pytest.mark.parametrize("together", [False, True], ids=["one by one", "in one group"])
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_updates_move_a_submission_forward_only(
    backend: str, together: bool, tmp_path: Path
) -> None:
    async with fresh_database(backend, tmp_path, "panel") as url:
        await migrate(url, "panel")
        db = Database(url)
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
        execution_id = uuid.uuid4()

        async def apply(*updates: Received) -> Submission:
            for group in [list(updates)] if together else [[update] for update in updates]:
                async with db.transaction() as session:
                    await apply_updates(session, group)
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
