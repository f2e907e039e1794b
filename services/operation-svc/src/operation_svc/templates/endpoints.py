from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from idp_common.auth import Admin, Viewer
from idp_common.dependencies import SessionDep
from idp_common.pagination import Page, PageParamsDep
from idp_common.schemas import Reference
from operation_svc.config import OperationSettings
from operation_svc.templates import service
from operation_svc.templates.schemas import (
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateOut,
    TemplateUpdate,
)

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])


def _settings(request: Request) -> OperationSettings:
    settings: OperationSettings = request.app.state.settings
    return settings


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_template(
    data: TemplateIn, request: Request, session: SessionDep, principal: Admin
) -> TemplateOut:
    """Save an operation template; its command is split into argv and checked now."""
    template = await service.create_template(session, principal, data, _settings(request))
    return TemplateOut.model_validate(template)


@router.get("")
async def list_templates(
    session: SessionDep, principal: Viewer, page: PageParamsDep
) -> Page[TemplateOut]:
    """The tenant's operation templates, newest first."""
    templates, cursor = await service.list_templates(session, principal, page)
    return Page(items=[TemplateOut.model_validate(t) for t in templates], next_cursor=cursor)


@router.get("/{template_id}")
async def get_template(
    template_id: Reference, session: SessionDep, principal: Viewer
) -> TemplateOut:
    """One operation template (its current version)."""
    return TemplateOut.model_validate(await service.get_template(session, principal, template_id))


@router.patch("/{template_id}")
async def update_template(
    template_id: Reference,
    data: TemplateUpdate,
    request: Request,
    session: SessionDep,
    principal: Admin,
) -> TemplateOut:
    """Change a template: the change becomes a new version; running executions keep theirs."""
    template = await service.update_template(
        session, principal, template_id, data, _settings(request)
    )
    return TemplateOut.model_validate(template)


@router.delete("/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_template(
    template_id: Reference, session: SessionDep, principal: Admin
) -> Response:
    """Retire a template (its executions and versions are kept)."""
    await service.delete_template(session, principal, template_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{template_id}/preview")
async def preview(
    template_id: Reference,
    data: PreviewIn,
    request: Request,
    session: SessionDep,
    principal: Viewer,
) -> PreviewOut:
    """Render the template with these values and show the verdict (secrets as ***); nothing
    is run or queued."""
    seal_to = _settings(request).sealing.key()
    return await service.preview(session, principal, template_id, data.parameters, seal_to)
