"""Runs nobody approved in time end ``expired`` at the sweep after their window (time is
the sweeper's clock); their submission is told; a late decision is a 409."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from idp_common.auth import Principal
from idp_common.errors import Conflict
from idp_common.events import ApprovalPolicy
from operation_svc.approvals import service
from operation_svc.approvals.schemas import DecisionIn
from operation_svc.approvals.sweeper import ApprovalExpirySweeper
from operation_svc.executions.lifecycle import new_execution
from operation_svc.models import AuditEntry, Execution, OperationTemplate, messaging
from operation_svc.templates.definition import TemplateDefinition
from tests.clock import ManualClock
from tests.harness import migrated_database

POLICY = ApprovalPolicy(approver_roles=["admin"], expires_after_seconds=600)


def guarded_template() -> OperationTemplate:
    return OperationTemplate(
        id=uuid.uuid4(),
        tenant="acme",
        slug="guarded",
        name="guarded",
        argv=["true"],
        parameters=[],
        timeout_seconds=10,
        approval=POLICY.model_dump(),
        created_by="root",
        updated_by="root",
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_run_nobody_approved_in_time_expires_and_takes_no_late_decision(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path, "operation") as db:
        template = guarded_template()
        definition = TemplateDefinition.of(template)
        rendered, _ = definition.plan({})
        assert rendered is not None
        waiting = new_execution(
            tenant="acme",
            template=template,
            version=1,
            definition=definition,
            rendered=rendered,
            secrets=[],
            submitted_by="alice",
            submission_id=uuid.uuid4(),
        )
        assert waiting.status == "awaiting_approval"
        async with db.transaction() as session:
            session.add(template)
            await session.flush()
            session.add(waiting)

        clock = ManualClock()
        sweeper = ApprovalExpirySweeper(db, interval_seconds=1, clock=clock)
        clock.advance(599)
        assert await sweeper.sweep() == 0
        clock.advance(2)
        assert await sweeper.sweep() == 1
        assert await sweeper.sweep() == 0

        async with db.snapshot() as session:
            expired = await session.get(Execution, waiting.id)
            told = (await session.execute(select(messaging.outbox.c.body))).scalars().all()
            audit = (await session.scalars(select(AuditEntry))).all()
        assert expired is not None
        assert (expired.status, expired.error) == ("expired", "nobody approved it in time")
        assert expired.finished_at is not None
        assert expired.dispatched_at is None
        assert [json.loads(body)["data"]["status"] for body in told] == ["expired"]
        assert [(row.action, row.actor) for row in audit] == [
            ("execution.expire", "system:approval-expiry")
        ]

        admin = Principal("root", "acme", frozenset({"admin"}))
        with pytest.raises(Conflict, match="expired"):
            async with db.transaction() as session:
                await service.decide(session, admin, waiting.id, DecisionIn(decision="approve"))
