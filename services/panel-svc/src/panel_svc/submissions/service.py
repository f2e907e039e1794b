from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from idp_common.auth import Principal
from idp_common.db import utcnow
from idp_common.events import SubmissionUpdated
from idp_common.messaging.inbox import Received
from idp_common.pagination import PageParams
from panel_svc.models import Submission
from panel_svc.submissions.repository import SubmissionRepository, SubmissionUpdates

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
    submissions = SubmissionRepository(session, principal.tenant)
    return await submissions.page(
        page, submissions.listing(panel=panel, submitted_by=submitted_by, status=status)
    )


async def get_submission(
    session: AsyncSession, principal: Principal, submission_id: uuid.UUID
) -> Submission:
    return await SubmissionRepository(session, principal.tenant).get_or_404(
        submission_id, selectinload(Submission.attempts)
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
    updates = SubmissionUpdates(session)
    tenants = await updates.tenants_of([row["of_submission"] for row in rows])
    known = [row for row in rows if tenants.get(row["of_submission"]) == row["of_tenant"]]
    if len(known) < len(rows):
        logger.warning(
            "%d submission updates of unknown submissions ignored", len(rows) - len(known)
        )
    if not known:
        return
    changed = await updates.mirror(known)
    if 0 <= changed < len(known):  # asyncpg does not count the rows of an executemany (-1)
        logger.info(
            "%d of %d submission updates ignored: already further, or an older attempt",
            len(known) - changed,
            len(known),
        )
