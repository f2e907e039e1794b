from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from idp_common.auth import Principal
from idp_common.pagination import PageParams
from panel_svc.models import Submission
from panel_svc.submissions.repository import SubmissionRepository

WITH_ATTEMPTS = selectinload(Submission.attempts)


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
        submission_id, WITH_ATTEMPTS
    )
