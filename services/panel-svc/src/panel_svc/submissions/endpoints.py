from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from idp_common.auth import Operator, Viewer, caller_credentials
from idp_common.dependencies import SessionDep
from idp_common.events import ExecutionStatus
from idp_common.idempotency import REPLAYED_HEADER, IdempotencyKey
from idp_common.pagination import Page, PageParamsDep
from idp_common.rate_limit import SubmissionRateLimit
from idp_common.schemas import Reference
from panel_svc.datasources import OptionsLookup
from panel_svc.submissions import service
from panel_svc.submissions.intake import SubmissionIntake, SubmissionRequest
from panel_svc.submissions.schemas import SubmissionDetailOut, SubmissionIn, SubmissionOut

router = APIRouter(prefix="/api/v1", tags=["submissions"])


@router.post(
    "/panels/{panel_id}/submissions",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[SubmissionRateLimit],
)
async def submit(
    panel_id: Reference,
    payload: SubmissionIn,
    request: Request,
    response: Response,
    principal: Operator,
    idempotency_key: IdempotencyKey = None,
) -> SubmissionOut:
    """Submit the panel's form; the operation runs asynchronously (poll the submission).
    With an Idempotency-Key, repeating the same request returns the original submission;
    the same key with another body is a 409."""
    lookup = OptionsLookup(request.app.state.datasources, caller_credentials(request))
    intake: SubmissionIntake = request.app.state.submission_intake
    submission, created = await intake.create(
        principal, SubmissionRequest(panel_id, payload, lookup), idempotency_key
    )
    if not created:
        response.headers[REPLAYED_HEADER] = "true"
    return SubmissionOut.model_validate(submission)


@router.get("/submissions/{submission_id}")
async def get_submission(
    submission_id: uuid.UUID, session: SessionDep, principal: Viewer
) -> SubmissionDetailOut:
    """A submission with the status, exit code and output of its latest execution, and
    every attempt (a retry is a new attempt, which the submission then follows)."""
    return SubmissionDetailOut.model_validate(
        await service.get_submission(session, principal, submission_id)
    )


@router.get("/submissions")
async def list_submissions(
    session: SessionDep,
    principal: Viewer,
    page: PageParamsDep,
    panel_id: Annotated[
        str | None, Query(max_length=100, description="The panel's id or its slug.")
    ] = None,
    submitted_by: Annotated[str | None, Query(max_length=200)] = None,
    status_filter: Annotated[ExecutionStatus | None, Query(alias="status")] = None,
) -> Page[SubmissionOut]:
    """The tenant's submissions, newest first; per panel, per user, per status."""
    rows, cursor = await service.list_submissions(
        session,
        principal,
        page,
        panel=panel_id,
        submitted_by=submitted_by,
        status=status_filter,
    )
    return Page(items=[SubmissionOut.model_validate(row) for row in rows], next_cursor=cursor)
