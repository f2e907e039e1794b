from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from idp_common.auth import Operator, Viewer
from idp_common.dependencies import SessionDep
from panel_svc.submissions import service
from panel_svc.submissions.schemas import SubmissionIn, SubmissionOut

router = APIRouter(prefix="/api/v1", tags=["submissions"])


@router.post("/panels/{panel_id}/submissions", status_code=status.HTTP_202_ACCEPTED)
async def submit(
    panel_id: uuid.UUID, payload: SubmissionIn, session: SessionDep, principal: Operator
) -> SubmissionOut:
    """Submit the panel's form; the operation runs asynchronously (poll the submission)."""
    submission = await service.submit(session, principal, panel_id, payload)
    return SubmissionOut.model_validate(submission)


@router.get("/submissions/{submission_id}")
async def get_submission(
    submission_id: uuid.UUID, session: SessionDep, principal: Viewer
) -> SubmissionOut:
    """A submission with the status, exit code and output of its execution."""
    return SubmissionOut.model_validate(
        await service.get_submission(session, principal, submission_id)
    )
