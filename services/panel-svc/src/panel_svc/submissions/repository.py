"""Queries of submissions: the tenant's (``SubmissionRepository``) and the cross-tenant
mirror of the executions' statuses (``SubmissionMirror``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, String, Table, Uuid, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import execute_at_commit, insert_at_commit_ignoring_conflicts
from idp_common.idempotency import IdempotentRepository
from idp_common.repository import CrossTenantRepository, as_id
from panel_svc.models import Panel, Submission, SubmissionAttempt


class SubmissionRepository(IdempotentRepository[Submission]):
    model = Submission

    def listing(
        self, *, panel: str | None, submitted_by: str | None, status: str | None
    ) -> Select[tuple[Submission]]:
        """The submissions that pass the filters given; ``panel`` is the panel's id (a
        retired panel's too) or its slug."""
        stmt = self.scoped()
        if panel is not None:
            named = Panel.slug == panel
            panel_id = as_id(panel)
            panels = select(Panel.id).where(
                Panel.tenant == self.tenant,
                named if panel_id is None else named | (Panel.id == panel_id),
            )
            stmt = stmt.where(Submission.panel_id.in_(panels))
        if submitted_by is not None:
            stmt = stmt.where(Submission.submitted_by == submitted_by)
        if status is not None:
            stmt = stmt.where(Submission.status == status)
        return stmt


# Built once; at commit, a transaction's updates run as one executemany per statement, in
# the order they arrived. A newer attempt (a retry's execution) takes the submission over
# whatever the older one said; within one attempt, a status never moves back and a finished
# one stays finished: "pending" (as created here) takes any update; "awaiting_approval" any
# but itself (approved, the run is pending again); "running" only an end. (An
# "awaiting_approval" delivered after the approved run's "pending" shows until "running".)
_SUBMISSIONS = cast(Table, Submission.__table__)
_ATTEMPTS = cast(Table, SubmissionAttempt.__table__)


def _moves_forward(status: ColumnElement[str]) -> ColumnElement[bool]:
    to_status = bindparam("to_status", type_=String)
    return (
        (status == "pending")
        | ((status == "awaiting_approval") & (to_status != "awaiting_approval"))
        | ((status == "running") & (to_status != "pending") & (to_status != "awaiting_approval"))
    )


_MIRROR = (
    update(_SUBMISSIONS)
    .where(
        _SUBMISSIONS.c.id == bindparam("of_submission"),
        _SUBMISSIONS.c.tenant == bindparam("of_tenant"),
        (_SUBMISSIONS.c.attempt < bindparam("to_attempt"))
        | (
            (_SUBMISSIONS.c.attempt == bindparam("to_attempt"))
            & _moves_forward(_SUBMISSIONS.c.status)
        ),
    )
    .values(
        status=bindparam("to_status"),
        attempt=bindparam("to_attempt"),
        exit_code=bindparam("to_exit_code"),
        output=bindparam("to_output"),
        error=bindparam("to_error"),
        execution_id=func.coalesce(
            bindparam("to_execution_id", type_=Uuid), _SUBMISSIONS.c.execution_id
        ),
    )
)
_ATTEMPT = (
    update(_ATTEMPTS)
    .where(
        _ATTEMPTS.c.submission_id == bindparam("of_submission"),
        _ATTEMPTS.c.attempt == bindparam("to_attempt"),
        _moves_forward(_ATTEMPTS.c.status),
    )
    .values(
        status=bindparam("to_status"),
        exit_code=bindparam("to_exit_code"),
        error=bindparam("to_error"),
        updated_at=bindparam("at"),
        execution_id=func.coalesce(
            bindparam("to_execution_id", type_=Uuid), _ATTEMPTS.c.execution_id
        ),
    )
)
_STATES = select(
    Submission.id,
    Submission.tenant,
    Submission.status,
    Submission.attempt,
    Submission.request_event_id,
    Submission.reply_queue,
).where(Submission.id.in_(bindparam("ids", expanding=True)))


@dataclass(slots=True)
class SubmissionState:
    """Whose a submission is and what it shows, as a group of updates starts."""

    tenant: str
    status: str
    attempt: int
    request_event_id: str | None = None  # asked for by another service's event
    reply_queue: str | None = None


class SubmissionMirror(CrossTenantRepository[AsyncSession]):
    """The executions' statuses mirrored on their submissions and attempts, by submission
    id: a group of updates spans tenants (the consumer compares each update's tenant with
    its submission's)."""

    async def states_of(self, submission_ids: list[uuid.UUID]) -> dict[uuid.UUID, SubmissionState]:
        found = await self.connection.execute(_STATES, {"ids": submission_ids})
        return {
            row.id: SubmissionState(
                row.tenant, row.status, row.attempt, row.request_event_id, row.reply_queue
            )
            for row in found
        }

    def mirror_at_commit(self, update_row: dict[str, Any]) -> None:
        """Record an attempt's status (``to_*`` values of ``of_submission``) at commit: its
        attempt row is created if new, then moved forward, then the submission (conditional
        UPDATEs: an update arriving late, or handled by two replicas at once, never moves
        either back). An update without an execution id keeps the one recorded."""
        attempt = {
            "submission_id": update_row["of_submission"],
            "attempt": update_row["to_attempt"],
            "execution_id": update_row["to_execution_id"],
            "status": update_row["to_status"],
            "exit_code": update_row["to_exit_code"],
            "error": update_row["to_error"],
            "updated_at": update_row["at"],
        }
        insert_at_commit_ignoring_conflicts(self.connection, _ATTEMPTS, attempt)
        execute_at_commit(self.connection, _ATTEMPT, update_row)
        execute_at_commit(self.connection, _MIRROR, update_row)


UNSETTLED = ("pending", "running")


class UnsettledSubmissions(CrossTenantRepository[AsyncSession]):
    """Submissions of every tenant still waiting (pending or running, or awaiting approval)
    whose last news is old: the reconciler asks operation-svc about them again."""

    async def waiting_since(
        self, before: datetime, limit: int, statuses: tuple[str, ...] = UNSETTLED
    ) -> Sequence[Submission]:
        """Oldest news first, locked (another replica's reconciler skips them)."""
        stmt = (
            select(Submission)
            .where(
                Submission.status.in_(statuses),
                Submission.updated_at < before,
                Submission.execution_request.is_not(None),
            )
            .order_by(Submission.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.connection.scalars(stmt)).all()
