"""A group of submissions becomes executions together: rejected, queued at once, or waiting
for a slot of a template with a concurrency limit."""

from __future__ import annotations

import dataclasses
import json
import uuid
from contextvars import copy_context
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp_common.events import SubmissionCreated
from idp_common.messaging.inbox import Received, handle_each
from operation_svc.executions.tasks import SubmissionsToExecutions
from operation_svc.models import (
    Execution,
    OperationTemplate,
    messaging,
)
from tests.harness import migrated_database
from tests.operation_svc.oversized_jobs import add_with_oversized_secrets


def template(slug: str, max_concurrency: int | None = None) -> OperationTemplate:
    return OperationTemplate(
        tenant="acme",
        slug=slug,
        name=slug,
        argv=["true"],
        parameters=[],
        max_concurrency=max_concurrency,
        created_by="alice",
        updated_by="alice",
    )


def submitted(slug: str, tenant: str = "acme") -> Received:
    data = SubmissionCreated(
        submission_id=uuid.uuid4(),
        panel_id=uuid.uuid4(),
        panel_slug="p",
        operation_template=slug,
        submitted_by="bob",
        submitter_roles=["operator"],
        parameters={},
    )
    event = data.to_event(source="urn:test", tenant=tenant, subject=str(data.submission_id))
    return Received(event, copy_context())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_group_is_rejected_queued_or_left_waiting_each_on_its_own_terms(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path, "operation") as db:
        async with db.transaction() as session:
            session.add_all([template("open"), template("solo", max_concurrency=1)])
        group = [
            submitted("missing"),
            submitted("open"),
            submitted("open", tenant="other"),  # another tenant has no such template
            submitted("solo"),
            submitted("solo"),
        ]

        async with db.unit_of_work() as work:
            await handle_each(work, SubmissionsToExecutions(), group)

        async with db.snapshot() as session:
            executions = (await session.scalars(select(Execution))).all()
            outbox = (await session.execute(select(messaging.outbox))).all()
        by_submission = {execution.submission_id: execution for execution in executions}
        missing, open_, foreign, first_solo, second_solo = (
            by_submission[uuid.UUID(received.event.subject or "")] for received in group
        )
        assert (missing.status, foreign.status) == ("rejected", "rejected")
        assert "no such operation template" in (missing.error or "")
        assert open_.status == first_solo.status == second_solo.status == "pending"
        assert open_.dispatched_at is not None
        assert first_solo.dispatched_at is not None  # the limit's one slot
        assert second_solo.dispatched_at is None  # waits for it
        jobs = [row for row in outbox if row.queue.endswith("operation-jobs")]
        told = [json.loads(row.body)["data"] for row in outbox if row not in jobs]
        assert sorted(json.loads(row.body)["data"]["execution_id"] for row in jobs) == sorted(
            [str(open_.id), str(first_solo.id)]
        )
        assert sorted(update["status"] for update in told) == ["pending"] * 3 + ["rejected"] * 2


def asked_again(original: Received, tenant: str | None = None) -> Received:
    """The same submission asked for again under another event id (a reconciler's resend)."""
    event = original.event
    again = dataclasses.replace(event, id=str(uuid.uuid4()), tenant=tenant or event.tenant)
    return Received(again, copy_context())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_submission_asked_for_again_gets_no_second_execution(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path, "operation") as db:
        async with db.transaction() as session:
            session.add(template("open"))
        first, other = submitted("open"), submitted("open")
        first_id, other_id = str(first.event.subject), str(other.event.subject)
        async with db.unit_of_work() as work:  # twice in one group, and once more later
            await handle_each(work, SubmissionsToExecutions(), [first, asked_again(first), other])
        async with db.unit_of_work() as work:
            await handle_each(work, SubmissionsToExecutions(), [asked_again(first)])
        async with db.snapshot() as session:
            executions = (await session.scalars(select(Execution))).all()
            outbox = (await session.execute(select(messaging.outbox))).all()
        assert sorted(str(e.submission_id) for e in executions) == sorted([first_id, other_id])
        jobs = [row for row in outbox if row.queue.endswith("operation-jobs")]
        told = [json.loads(row.body)["data"] for row in outbox if row not in jobs]
        assert len(jobs) == 2  # one run each
        assert sorted(update["submission_id"] for update in told) == sorted(
            [first_id] * 3 + [other_id]
        )  # told every time it asked


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_another_tenant_cannot_take_over_a_submission_by_its_id(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path, "operation") as db:
        async with db.transaction() as session:
            session.add(template("open"))
        first = submitted("open")
        async with db.unit_of_work() as work:
            await handle_each(work, SubmissionsToExecutions(), [first])
        with pytest.raises(IntegrityError):  # refused, so it ends in the DLQ
            async with db.unit_of_work() as work:
                await handle_each(
                    work, SubmissionsToExecutions(), [asked_again(first, tenant="other")]
                )
        async with db.snapshot() as session:
            executions = (await session.scalars(select(Execution))).all()
        assert [e.tenant for e in executions] == ["acme"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_job_no_message_can_hold_rejects_its_execution_with_the_reason(
    backend: str, tmp_path: Path
) -> None:
    """The values and what they render are bounded where a run is asked for; a template's
    secret references are not: 45 of 500 emoji each make a job past 256 KiB. Such a job
    failed the transaction, so the submission was delivered again until dead-lettered."""
    async with migrated_database(backend, tmp_path, "operation") as db:
        async with db.transaction() as session:
            open_, solo = template("open"), template("solo", max_concurrency=1)
            await add_with_oversized_secrets(session, [open_, solo])
        group = [submitted("open"), submitted("solo")]
        async with db.unit_of_work() as work:
            await handle_each(work, SubmissionsToExecutions(), group)
        async with db.snapshot() as session:
            executions = (await session.scalars(select(Execution))).all()
            outbox = (await session.execute(select(messaging.outbox))).all()
        assert [(e.status, e.dispatched_at) for e in executions] == [("rejected", None)] * 2
        for execution in executions:
            assert (execution.error or "").startswith("too_large: its job cannot be queued: ")
            assert "more than a queue message holds (262144)" in (execution.error or "")
        assert not [row for row in outbox if row.queue.endswith("operation-jobs")]
        told = [json.loads(row.body)["data"] for row in outbox]
        statuses: dict[str, set[str]] = {}
        for update in told:
            statuses.setdefault(update["submission_id"], set()).add(update["status"])
        # The one waiting for its template's slot was told "pending" first.
        assert sorted(map(sorted, statuses.values())) == [["pending", "rejected"], ["rejected"]]
