from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from sse_starlette import EventSourceResponse

from idp_common.auth import Operator, ServiceCaller, Viewer
from idp_common.dependencies import SessionDep
from idp_common.events import INT32_MAX, ExecutionFinished, ExecutionStatus
from idp_common.idempotency import REPLAYED_HEADER, IdempotencyKey
from idp_common.pagination import Page, PageParamsDep
from idp_common.rate_limit import ExecutionRateLimit
from idp_common.schemas import UtcTimestamp
from operation_svc.executions import service, worker_protocol
from operation_svc.executions.intake import ExecutionIntake, ExecutionRequest
from operation_svc.executions.log_stream import LiveStreams, log_events
from operation_svc.executions.repository import ExecutionRepository
from operation_svc.executions.schemas import (
    ClaimIn,
    ClaimOut,
    ExecutionIn,
    ExecutionOut,
    HeartbeatIn,
    HeartbeatOut,
    LogLineOut,
    LogPage,
    RecordedOut,
    WorkerLogIn,
)

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])
AfterSeq = Annotated[int, Query(ge=-1, le=INT32_MAX, description="Lines after this seq.")]


@router.post("", status_code=status.HTTP_202_ACCEPTED, dependencies=[ExecutionRateLimit])
async def create_execution(
    body: ExecutionIn,
    request: Request,
    principal: Operator,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ExecutionOut:
    """Run a template with parameters. With an Idempotency-Key, repeating the same request
    returns the original execution; the same key with another body is a 409. Values of
    secret parameters are sealed to the workers' key at once and shown as ***."""
    intake: ExecutionIntake = request.app.state.execution_intake
    execution, created = await intake.create(principal, ExecutionRequest(body), idempotency_key)
    if not created:
        response.headers[REPLAYED_HEADER] = "true"
    return ExecutionOut.model_validate(execution)


@router.get("")
async def list_executions(
    session: SessionDep,
    principal: Viewer,
    page: PageParamsDep,
    status_filter: Annotated[ExecutionStatus | None, Query(alias="status")] = None,
    template: Annotated[
        str | None, Query(max_length=100, description="The template's id or its slug.")
    ] = None,
    submitted_by: Annotated[str | None, Query(max_length=200)] = None,
    since: UtcTimestamp | None = None,
) -> Page[ExecutionOut]:
    """The tenant's executions, newest first, filtered by status, template, submitter, time."""
    executions, cursor = await service.list_executions(
        session,
        principal,
        page,
        status=status_filter,
        template=template,
        submitted_by=submitted_by,
        since=since,
    )
    return Page(items=[ExecutionOut.model_validate(e) for e in executions], next_cursor=cursor)


@router.get("/{execution_id}")
async def get_execution(
    execution_id: uuid.UUID, session: SessionDep, principal: Viewer
) -> ExecutionOut:
    """An execution: status, rendered argv, exit code, output excerpt and timestamps."""
    return ExecutionOut.model_validate(
        await service.get_execution(session, principal, execution_id)
    )


@router.get("/{execution_id}/logs")
async def get_logs(
    execution_id: uuid.UUID,
    session: SessionDep,
    principal: Viewer,
    after_seq: AfterSeq = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> LogPage:
    """Log lines in order, after ``after_seq``."""
    await service.get_execution(session, principal, execution_id)
    lines = await ExecutionRepository(session, principal.tenant).logs_after(
        execution_id, after_seq, limit
    )
    return LogPage(
        items=[LogLineOut.model_validate(line) for line in lines],
        next_after_seq=lines[-1].seq if len(lines) == limit else None,
    )


@router.get("/{execution_id}/logs/stream")
async def stream_logs(
    execution_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Viewer,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=-1, le=INT32_MAX)] = None,
    after_seq: AfterSeq = -1,
) -> EventSourceResponse:
    """Live log lines as Server-Sent Events; reconnect with Last-Event-ID to resume."""
    await service.get_execution(session, principal, execution_id)
    start = last_event_id if last_event_id is not None else after_seq
    streams: LiveStreams = request.app.state.live_streams
    return streams.open(principal, log_events(request.app.state.db, principal, execution_id, start))


@router.post("/{execution_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_execution(
    execution_id: uuid.UUID, session: SessionDep, principal: Operator
) -> ExecutionOut:
    """Cancel: a pending execution at once, one awaiting approval at once (by its requester
    or an admin); a running one within about a second."""
    return ExecutionOut.model_validate(await service.cancel(session, principal, execution_id))


@router.post(
    "/{execution_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[ExecutionRateLimit],
)
async def retry_execution(
    execution_id: uuid.UUID, session: SessionDep, principal: Operator
) -> ExecutionOut:
    """Run a finished execution again: same template version and parameters, linked."""
    return ExecutionOut.model_validate(await service.retry(session, principal, execution_id))


workers_router = APIRouter(prefix="/api/v1/workers", tags=["workers"])


@workers_router.post("/claims")
async def claim(body: ClaimIn, session: SessionDep, _caller: ServiceCaller) -> ClaimOut:
    """Used by executor workers before running jobs: moves the pending executions among
    ``execution_ids`` to running for ``worker_id``. The others (claimed by someone else,
    finished, unknown) are left out of ``claimed`` and must not be run."""
    claimed = await worker_protocol.claim(
        session, body.execution_ids, body.worker_id, body.claim_id
    )
    return ClaimOut(claimed=claimed)


@workers_router.post("/logs")
async def store_log(body: WorkerLogIn, session: SessionDep, _caller: ServiceCaller) -> RecordedOut:
    """Used by executor workers when the broker would not take a log batch: stores the lines
    of an execution that ``worker_id`` holds, each once by its ``seq``."""
    return RecordedOut(recorded=await worker_protocol.store_log(session, body.worker_id, body))


@workers_router.post("/finishes")
async def finish(
    body: ExecutionFinished, session: SessionDep, _caller: ServiceCaller
) -> RecordedOut:
    """Used by executor workers when the broker would not take a run's finish: records the
    end of an execution that ``worker_id`` holds, as the finish event would have."""
    return RecordedOut(recorded=await worker_protocol.finish(session, body))


@workers_router.post("/heartbeat")
async def heartbeat(body: HeartbeatIn, session: SessionDep, _caller: ServiceCaller) -> HeartbeatOut:
    """Used by executor workers, about every half second: keeps their executions alive (also
    the ones whose end they have reported and operation-svc has not recorded yet) and answers
    which ones to stop (cancelled, or no longer theirs) and which have ended."""
    return await worker_protocol.heartbeat(session, body.worker_id, body.execution_ids)
