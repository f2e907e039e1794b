from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status

from idp_common.auth import Admin, Viewer
from idp_common.dependencies import SessionDep
from idp_common.pagination import Page, PageParamsDep
from operation_svc.templates import service
from operation_svc.templates.schemas import TemplateIn, TemplateOut

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_template(
    data: TemplateIn, request: Request, session: SessionDep, principal: Admin
) -> TemplateOut:
    """Save an operation template; its command is split into argv and checked now."""
    allowed = request.app.state.settings.allowed_executables
    return service.to_out(await service.create_template(session, principal, data, allowed))


@router.get("")
async def list_templates(
    session: SessionDep, principal: Viewer, page: PageParamsDep
) -> Page[TemplateOut]:
    """The tenant's operation templates, newest first."""
    templates, cursor = await service.list_templates(session, principal, page)
    return Page(items=[service.to_out(t) for t in templates], next_cursor=cursor)


@router.get("/{template_id}")
async def get_template(
    template_id: uuid.UUID, session: SessionDep, principal: Viewer
) -> TemplateOut:
    """One operation template."""
    return service.to_out(await service.get_template(session, principal, template_id))
