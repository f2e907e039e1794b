"""The submission reconciler asks again, under a new event id, for the submissions
operation-svc has said nothing of for resend_after (ten times that for those awaiting
approval): not the recent ones, not the finished."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from idp_common.events import SubmissionCreated
from panel_svc.models import Panel, Submission, messaging
from panel_svc.submissions.reconciler import SubmissionReconciler
from tests.clock import ManualClock
from tests.harness import migrated_database


def resent_submissions() -> float:
    counted = REGISTRY.get_sample_value("idp_reconciler_resent_total", {"kind": "submission"})
    return counted or 0.0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_silent_submissions_are_asked_for_again(backend: str, tmp_path: Path) -> None:
    clock = ManualClock()
    async with migrated_database(backend, tmp_path, "panel") as db:
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

            def waiting(status: str, news_seconds_ago: float) -> Submission:
                submission_id = uuid.uuid4()
                request = SubmissionCreated(
                    submission_id=submission_id,
                    panel_id=panel.id,
                    panel_slug="p",
                    operation_template="t",
                    submitted_by="bob",
                    parameters={"token": "sealed:v1:abc"},
                )
                return Submission(
                    id=submission_id,
                    tenant="acme",
                    panel_id=panel.id,
                    submitted_by="bob",
                    data={"token": "***"},
                    status=status,
                    execution_request=request.model_dump(mode="json"),
                    updated_at=clock.now() - timedelta(seconds=news_seconds_ago),
                )

            silent, recent, done, awaiting, long_awaiting = (
                waiting("pending", 90),
                waiting("running", 10),
                waiting("succeeded", 90),
                waiting("awaiting_approval", 90),
                # Its rejection (or its run's end) was lost: no other news would come.
                waiting("awaiting_approval", 601),
            )
            session.add_all([silent, recent, done, awaiting, long_awaiting])
        reconciler = SubmissionReconciler(db, resend_after_seconds=60, clock=clock)
        counted_before = resent_submissions()
        await reconciler.run_once()
        # The approval's periodic question is no message lost: no alert should count it.
        assert resent_submissions() - counted_before == 1
        await reconciler.run_once()  # asked again now: not again before resend_after
        async with db.snapshot() as session:
            sent = [
                json.loads(body) for body in await session.scalars(select(messaging.outbox.c.body))
            ]
        assert [event["data"]["submission_id"] for event in sent] == [
            str(silent.id),
            str(long_awaiting.id),
        ]
        assert sent[0]["type"] == "panel.submission.created"
        assert sent[0]["data"]["parameters"] == {"token": "sealed:v1:abc"}  # as first asked
        clock.advance(61)
        await reconciler.run_once()
        async with db.snapshot() as session:
            sent = [
                json.loads(body) for body in await session.scalars(select(messaging.outbox.c.body))
            ]
        assert sorted(event["data"]["submission_id"] for event in sent) == sorted(
            [str(silent.id), str(long_awaiting.id), str(silent.id), str(recent.id)]
        )
        assert len({event["id"] for event in sent}) == 4  # each ask its own event
