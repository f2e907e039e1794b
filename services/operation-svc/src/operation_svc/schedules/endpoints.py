"""Schedules: admins manage them, viewers read them, their runs and their next fire times."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from idp_common.auth import Admin, Viewer, caller_credentials
from idp_common.clock import Clock
from idp_common.dependencies import SessionDep
from idp_common.pagination import Page, PageParamsDep
from operation_svc.config import OperationSettings
from operation_svc.schedules import service
from operation_svc.schedules.panels import PanelClient
from operation_svc.schedules.schemas import (
    ScheduleIn,
    ScheduleOut,
    SchedulePreview,
    ScheduleRunOut,
    ScheduleUpdate,
)

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])


def _settings(request: Request) -> OperationSettings:
    settings: OperationSettings = request.app.state.settings
    return settings


def _panels(request: Request) -> PanelClient:
    panels: PanelClient = request.app.state.panels
    return panels


def _now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock.now()


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_schedule(
    data: ScheduleIn, request: Request, session: SessionDep, principal: Admin
) -> ScheduleOut:
    """Run a template with these parameters (or submit a panel with this form data) at
    each slot of ``cron`` (in ``timezone``) or every ``interval_seconds``, as the caller
    (their roles and groups are recorded and the access rules checked again at each fire).
    DST: a daily 02:30 in a zone that springs forward fires at 03:00 local that day; on the
    fall-back day it fires once, at the first 02:30."""
    schedule = await service.create_schedule(
        session,
        principal,
        data,
        _settings(request),
        _now(request),
        panels=_panels(request),
        credentials=caller_credentials(request),
    )
    return ScheduleOut.model_validate(schedule)


@router.get("")
async def list_schedules(
    session: SessionDep, principal: Viewer, page: PageParamsDep
) -> Page[ScheduleOut]:
    """The tenant's schedules, newest first."""
    schedules, cursor = await service.list_schedules(session, principal, page)
    return Page(items=[ScheduleOut.model_validate(s) for s in schedules], next_cursor=cursor)


@router.get("/{schedule_id}")
async def get_schedule(
    schedule_id: uuid.UUID, session: SessionDep, principal: Viewer
) -> ScheduleOut:
    return ScheduleOut.model_validate(await service.get_schedule(session, principal, schedule_id))


@router.patch("/{schedule_id}")
async def update_schedule(
    schedule_id: uuid.UUID,
    data: ScheduleUpdate,
    request: Request,
    session: SessionDep,
    principal: Admin,
) -> ScheduleOut:
    """Change a schedule. A new timing counts from now; a new target (template, panel) or
    new parameters or data make the caller its owner."""
    # Before the transaction, which has not begun (its first statement begins it).
    panel = await service.panel_of_change(
        request.app.state.db,
        principal,
        schedule_id,
        data,
        _panels(request),
        caller_credentials(request),
    )
    schedule = await service.update_schedule(
        session, principal, schedule_id, data, _settings(request), _now(request), panel=panel
    )
    return ScheduleOut.model_validate(schedule)


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_schedule(
    schedule_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    """Retire a schedule (its runs and executions are kept)."""
    await service.delete_schedule(session, principal, schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{schedule_id}/pause")
async def pause_schedule(
    schedule_id: uuid.UUID, session: SessionDep, principal: Admin
) -> ScheduleOut:
    """Stop firing until resumed."""
    return ScheduleOut.model_validate(await service.pause_schedule(session, principal, schedule_id))


@router.post("/{schedule_id}/resume")
async def resume_schedule(
    schedule_id: uuid.UUID, request: Request, session: SessionDep, principal: Admin
) -> ScheduleOut:
    """Fire again from the next slot on; a 409 while its owner may not run its template
    (or submit its panel)."""
    await service.check_panel_owner(request.app.state.db, principal, schedule_id, _panels(request))
    return ScheduleOut.model_validate(
        await service.resume_schedule(session, principal, schedule_id, _now(request))
    )


@router.get("/{schedule_id}/runs")
async def list_runs(
    schedule_id: uuid.UUID, session: SessionDep, principal: Viewer, page: PageParamsDep
) -> Page[ScheduleRunOut]:
    """What became of each slot, newest first: fired (the execution and its status; a
    panel schedule's submission and its latest execution), queued, or skipped (the
    reason)."""
    runs, cursor = await service.list_runs(session, principal, schedule_id, page)
    items = [
        ScheduleRunOut.model_validate(run).model_copy(
            update={"execution_id": execution_id, "execution_status": status}
        )
        for run, execution_id, status in runs
    ]
    return Page(items=items, next_cursor=cursor)


@router.get("/{schedule_id}/preview")
async def preview(
    schedule_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Viewer,
    count: Annotated[int, Query(ge=1, le=100)] = 10,
) -> SchedulePreview:
    """The next fire times, in UTC and in the schedule's timezone."""
    return await service.preview(session, principal, schedule_id, count, _now(request))
