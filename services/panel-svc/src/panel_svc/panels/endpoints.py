from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from idp_common.auth import Admin, Viewer, caller_credentials
from idp_common.db import Database
from idp_common.dependencies import SessionDep
from idp_common.errors import NotFound
from idp_common.pagination import Page, PageParamsDep
from idp_common.schemas import Reference
from panel_svc.datasources import DatasourceClient
from panel_svc.fields.types import CHOICE_TYPES
from panel_svc.panels import service
from panel_svc.panels.references import PanelReferences
from panel_svc.panels.schemas import FieldIn, PanelIn, PanelOut, PanelSchemaOut, PanelUpdate
from panel_svc.submissions.validation import sent_to_source

router = APIRouter(prefix="/api/v1/panels", tags=["panels"])


def _references(request: Request) -> PanelReferences:
    references: PanelReferences = request.app.state.references
    return references


def _keep_sources_by_id(fields: list[FieldIn], sources: list[uuid.UUID | None]) -> None:
    """A field names its data source by id or slug; the panel keeps its id (a slug may
    change)."""
    for field, source in zip(fields, sources, strict=True):
        field.data_source = source


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_panel(
    data: PanelIn, request: Request, session: SessionDep, principal: Admin
) -> PanelOut:
    """Publish a panel (a self-service form) bound to an operation template. The template
    must exist and take the panel's fields, and every data source must exist."""
    # Checked before the transaction's first statement: its write turn is not held while
    # the other services answer.
    credentials = caller_credentials(request)
    sources = await _references(request).check(data.operation_template, data.fields, credentials)
    _keep_sources_by_id(data.fields, sources)
    panel = await service.create_panel(session, principal, data)
    return PanelOut.model_validate(panel)


@router.get("")
async def list_panels(
    session: SessionDep,
    principal: Viewer,
    page: PageParamsDep,
    active: bool | None = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    search: Annotated[str | None, Query(max_length=200, description="In the title.")] = None,
) -> Page[PanelOut]:
    """The tenant's panels, newest first; filter by active, category, or title search."""
    panels, cursor = await service.list_panels(
        session, principal, page, active=active, category=category, search=search
    )
    return Page(items=[PanelOut.model_validate(p) for p in panels], next_cursor=cursor)


@router.get("/{panel_id}")
async def get_panel(panel_id: Reference, session: SessionDep, principal: Viewer) -> PanelOut:
    """One panel with its fields."""
    return PanelOut.model_validate(await service.get_panel(session, principal, panel_id))


@router.patch("/{panel_id}")
async def update_panel(
    panel_id: Reference,
    data: PanelUpdate,
    request: Request,
    session: SessionDep,
    principal: Admin,
) -> PanelOut:
    """Change a panel; ``fields``, when given, replaces all its fields. A new template or new
    fields are checked like a new panel's."""
    if data.operation_template is not None or data.fields is not None:
        db: Database = request.app.state.db
        async with db.snapshot(limited=False) as snapshot:
            current = await service.get_panel(snapshot, principal, panel_id)
        sources = await _references(request).check(
            data.operation_template or current.operation_template,
            data.fields if data.fields is not None else current.fields,
            caller_credentials(request),
        )
        if data.fields is not None:
            _keep_sources_by_id(data.fields, sources)
    return PanelOut.model_validate(await service.update_panel(session, principal, panel_id, data))


@router.delete("/{panel_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_panel(panel_id: Reference, session: SessionDep, principal: Admin) -> Response:
    """Retire a panel (its submissions are kept)."""
    await service.delete_panel(session, principal, panel_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{panel_id}/schema", response_model_by_alias=True)
async def get_panel_schema(
    panel_id: Reference, session: SessionDep, principal: Viewer
) -> PanelSchemaOut:
    """The form as JSON Schema (draft 2020-12) with UI hints (order, widgets, dependencies),
    ready for any JSON Schema form renderer. A field's ``pattern`` is RE2 syntax, as the
    submission is checked with RE2 (linear time), anchored at both ends: evaluate it with an
    RE2 engine (the console uses RE2's JavaScript port), or leave it to the submission's
    answer, rather than with a backtracking engine, which reads some of it otherwise and can
    take minutes on a few dozen characters."""
    return service.panel_schema(await service.get_panel(session, principal, panel_id))


@router.get("/{panel_id}/fields/{field_name}/options")
async def field_options(
    panel_id: Reference, field_name: str, request: Request, session: SessionDep, principal: Viewer
) -> dict[str, Any]:
    """The options of a select field now; pass the other fields' values as query parameters
    (only the ones the field depends on are used)."""
    panel = await service.get_panel(session, principal, panel_id)
    field = next((f for f in panel.fields if f.name == field_name), None)
    if field is None or field.field_type not in CHOICE_TYPES:
        raise NotFound(f"Panel {panel.slug!r} has no select field {field_name!r}.")
    if field.data_source is None:
        return {
            "options": field.options,
            "cached": True,
            "fetched_at": panel.updated_at,
            "stale": False,
        }
    sent = sent_to_source(field, panel.fields)
    dependent = {name: request.query_params.get(name) for name in sent}
    client: DatasourceClient = request.app.state.datasources
    return await client.resolve(field.data_source, dependent, caller_credentials(request))
