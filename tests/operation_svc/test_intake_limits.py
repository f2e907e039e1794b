"""A create is planned on a snapshot and written later: a concurrency limit set in between
is honored in the write, never bypassed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from idp_common.auth import Principal
from idp_common.db import utcnow
from idp_common.errors import ValidationFailed
from idp_common.sealing import load_public_key, new_keypair
from operation_svc.executions.intake import ExecutionIntake, ExecutionRequest
from operation_svc.executions.schemas import ExecutionIn
from operation_svc.models import (
    Execution,
    OperationTemplate,
    messaging,
)
from tests.harness import migrated_database
from tests.operation_svc.oversized_jobs import add_with_oversized_secrets

ALICE = Principal("alice", "acme", frozenset({"operator"}), frozenset())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def deploy_template() -> OperationTemplate:
    return OperationTemplate(
        tenant="acme",
        slug="deploy",
        name="deploy",
        argv=["true"],
        parameters=[],
        created_by="alice",
        updated_by="alice",
    )


async def test_a_limit_set_between_the_snapshot_and_the_write_is_honored(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path, "operation") as db:
        template = deploy_template()
        async with db.transaction() as session:
            session.add(template)
            await session.flush()
            session.add(  # one run holds what will be the only slot
                Execution(
                    tenant="acme",
                    template_id=template.id,
                    template_slug="deploy",
                    submitted_by="alice",
                    parameters={},
                    timeout_seconds=30,
                    status="running",
                    attempt=1,
                    started_at=utcnow(),
                )
            )
        intake = ExecutionIntake(db, load_public_key(new_keypair()[0]))
        request = ExecutionRequest(ExecutionIn(template="deploy"))
        async with db.snapshot() as session:  # the snapshot sees no limit: a job is planned
            target = await intake.target(session, ALICE, request)
        planned = await intake.build(target, ALICE, request, None, "digest")
        assert planned.job is not None
        async with db.transaction() as session:  # an admin sets the limit meanwhile
            await session.execute(
                update(OperationTemplate)
                .values(max_concurrency=1)
                .where(OperationTemplate.id == template.id)
            )
        async with db.unit_of_work() as work:
            await intake.write(work, [planned])
        async with db.snapshot() as session:
            created = await session.get(Execution, planned.execution.id)
            jobs = (await session.execute(select(messaging.outbox))).all()
        assert created is not None
        assert created.status == "pending"
        assert created.dispatched_at is None  # waits for the slot
        assert [row for row in jobs if row.queue.endswith("operation-jobs")] == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_job_no_message_can_hold_is_a_422_before_anything_is_written(
    backend: str, tmp_path: Path
) -> None:
    """45 secret references of 500 emoji each make the job of a run with no values past
    256 KiB: its outbox row was a MessageTooLarge, a 500 (and a schedule's failed turn)."""
    async with migrated_database(backend, tmp_path, "operation") as db:
        async with db.transaction() as session:
            template = deploy_template()
            await add_with_oversized_secrets(session, [template])
        intake = ExecutionIntake(db, load_public_key(new_keypair()[0]))
        request = ExecutionRequest(ExecutionIn(template="deploy"))
        async with db.snapshot() as session:
            target = await intake.target(session, ALICE, request)
        with pytest.raises(ValidationFailed) as refused:
            await intake.build(target, ALICE, request, None, "digest")
        assert [(e["field"], e["code"]) for e in refused.value.errors or []] == [
            ("parameters", "too_large")
        ]
