from __future__ import annotations

import logging
import uuid
from typing import cast

from sqlalchemy import String, Table, Uuid, bindparam, func, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.auth import Principal
from idp_common.events import SubmissionUpdated
from idp_common.messaging.inbox import Received
from idp_common.pagination import PageParams, paginate
from panel_svc.models import Submission
from panel_svc.submissions.repository import SubmissionRepository

logger = logging.getLogger(__name__)


async def list_submissions(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    panel_id: uuid.UUID | None,
    submitted_by: str | None,
    status: str | None,
) -> tuple[list[Submission], str | None]:
    stmt = SubmissionRepository(session, principal.tenant).scoped()
    if panel_id is not None:
        stmt = stmt.where(Submission.panel_id == panel_id)
    if submitted_by is not None:
        stmt = stmt.where(Submission.submitted_by == submitted_by)
    if status is not None:
        stmt = stmt.where(Submission.status == status)
    rows, cursor = await paginate(session, stmt, Submission, page)
    return list(rows), cursor


async def get_submission(
    session: AsyncSession, principal: Principal, submission_id: uuid.UUID
) -> Submission:
    return await SubmissionRepository(session, principal.tenant).get_or_404(submission_id)


# Built once: a group's updates run as one executemany, in the order they arrived. A
# submission never moves back, and a finished one stays finished: an update to "pending"
# replaces only "pending", any other one "pending" or "running".
_SUBMISSIONS = cast(Table, Submission.__table__)
_MIRROR = (
    update(_SUBMISSIONS)
    .where(
        _SUBMISSIONS.c.id == bindparam("of_submission"),
        _SUBMISSIONS.c.tenant == bindparam("of_tenant"),
        (_SUBMISSIONS.c.status == "pending")
        | (
            (bindparam("to_status", type_=String) != "pending")
            & (_SUBMISSIONS.c.status == "running")
        ),
    )
    .values(
        status=bindparam("to_status"),
        exit_code=bindparam("to_exit_code"),
        output=bindparam("to_output"),
        error=bindparam("to_error"),
        execution_id=func.coalesce(
            bindparam("to_execution_id", type_=Uuid), _SUBMISSIONS.c.execution_id
        ),
    )
)


async def apply_updates(session: AsyncSession, group: list[Received]) -> None:
    """Mirror the executions' statuses with one conditional UPDATE for the whole group, so
    updates arriving out of order (or handled concurrently by two replicas) never move a
    submission back. An update without an execution id keeps the one recorded."""
    rows = []
    for received in group:
        mirrored = SubmissionUpdated.from_event(received.event)
        rows.append(
            {
                "of_submission": mirrored.submission_id,
                "of_tenant": received.event.tenant,
                "to_status": mirrored.status,
                "to_exit_code": mirrored.exit_code,
                "to_output": mirrored.output,
                "to_error": mirrored.error,
                "to_execution_id": mirrored.execution_id,
            }
        )
    result = await session.execute(_MIRROR, rows)
    changed = int(result.rowcount)  # type: ignore[attr-defined]
    if 0 <= changed < len(rows):  # asyncpg does not count the rows of an executemany (-1)
        logger.info(
            "%d of %d submission updates ignored: unknown submissions, or already further",
            len(rows) - changed,
            len(rows),
        )
