from __future__ import annotations

import logging
import uuid
from typing import Any, cast

from sqlalchemy import ColumnElement, String, Table, Uuid, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from idp_common.auth import Principal
from idp_common.db import insert_ignoring_conflicts, utcnow
from idp_common.events import SubmissionUpdated
from idp_common.messaging.inbox import Received
from idp_common.pagination import PageParams, paginate
from idp_common.repository import as_id
from panel_svc.models import Panel, Submission, SubmissionAttempt
from panel_svc.submissions.repository import SubmissionRepository

logger = logging.getLogger(__name__)


async def list_submissions(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    panel: str | None,
    submitted_by: str | None,
    status: str | None,
) -> tuple[list[Submission], str | None]:
    """``panel`` is the panel's id (a retired panel's too) or its slug."""
    stmt = SubmissionRepository(session, principal.tenant).scoped()
    if panel is not None:
        named = Panel.slug == panel
        panel_id = as_id(panel)
        panels = select(Panel.id).where(
            Panel.tenant == principal.tenant,
            named if panel_id is None else named | (Panel.id == panel_id),
        )
        stmt = stmt.where(Submission.panel_id.in_(panels))
    if submitted_by is not None:
        stmt = stmt.where(Submission.submitted_by == submitted_by)
    if status is not None:
        stmt = stmt.where(Submission.status == status)
    rows, cursor = await paginate(session, stmt, Submission, page)
    return list(rows), cursor


async def get_submission(
    session: AsyncSession, principal: Principal, submission_id: uuid.UUID
) -> Submission:
    return await SubmissionRepository(session, principal.tenant).get_or_404(
        submission_id, selectinload(Submission.attempts)
    )


# Built once: a group's updates run as one executemany per table, in the order they
# arrived. A newer attempt (a retry's execution) takes the submission over whatever the
# older one said; within one attempt, a status never moves back and a finished one stays
# finished: an update to "pending" replaces only "pending", any other "pending" or "running".
_SUBMISSIONS = cast(Table, Submission.__table__)
_ATTEMPTS = cast(Table, SubmissionAttempt.__table__)


def _moves_forward(status: ColumnElement[str]) -> ColumnElement[bool]:
    return (status == "pending") | (
        (bindparam("to_status", type_=String) != "pending") & (status == "running")
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
_OF_TENANTS = select(Submission.id, Submission.tenant).where(
    Submission.id.in_(bindparam("ids", expanding=True))
)


async def apply_updates(session: AsyncSession, group: list[Received]) -> None:
    """Mirror the executions' statuses on their submissions and attempts with conditional
    UPDATEs for the whole group, so updates arriving out of order (or handled concurrently
    by two replicas) never move a submission or an attempt back. An update without an
    execution id keeps the one recorded."""
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for received in group:
        mirrored = SubmissionUpdated.from_event(received.event)
        rows.append(
            {
                "of_submission": mirrored.submission_id,
                "of_tenant": received.event.tenant,
                "to_status": mirrored.status,
                "to_attempt": mirrored.attempt,
                "to_exit_code": mirrored.exit_code,
                "to_output": mirrored.output,
                "to_error": mirrored.error,
                "to_execution_id": mirrored.execution_id,
                "at": now,
            }
        )
    found = await session.execute(_OF_TENANTS, {"ids": [row["of_submission"] for row in rows]})
    tenants: dict[Any, str] = dict(found.tuples().all())
    known = [row for row in rows if tenants.get(row["of_submission"]) == row["of_tenant"]]
    if len(known) < len(rows):
        logger.warning(
            "%d submission updates of unknown submissions ignored", len(rows) - len(known)
        )
    if not known:
        return
    await insert_ignoring_conflicts(
        session,
        _ATTEMPTS,
        [
            {
                "submission_id": row["of_submission"],
                "attempt": row["to_attempt"],
                "execution_id": row["to_execution_id"],
                "status": row["to_status"],
                "exit_code": row["to_exit_code"],
                "error": row["to_error"],
                "updated_at": now,
            }
            for row in known
        ],
    )
    await session.execute(_ATTEMPT, known)
    result = await session.execute(_MIRROR, known)
    changed = int(result.rowcount)  # type: ignore[attr-defined]
    if 0 <= changed < len(known):  # asyncpg does not count the rows of an executemany (-1)
        logger.info(
            "%d of %d submission updates ignored: already further, or an older attempt",
            len(known) - changed,
            len(known),
        )
