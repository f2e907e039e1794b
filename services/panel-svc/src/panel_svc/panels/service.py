from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.auth import Principal
from idp_common.errors import Conflict
from idp_common.pagination import PageParams, paginate
from panel_svc.fields.types import json_schema
from panel_svc.models import Panel, PanelField
from panel_svc.panels.repository import WITH_FIELDS, PanelRepository
from panel_svc.panels.schemas import PanelIn, PanelSchemaOut

WIDGETS = {
    "text": "text",
    "textarea": "textarea",
    "secret": "password",
    "email": "email",
    "url": "url",
    "number": "number",
    "integer": "number",
    "boolean": "checkbox",
    "select": "select",
    "multiselect": "multiselect",
    "date": "date",
    "datetime": "datetime",
}


async def create_panel(session: AsyncSession, principal: Principal, data: PanelIn) -> Panel:
    panels = PanelRepository(session, principal.tenant)
    if await panels.get_by_slug(data.slug) is not None:
        raise Conflict(f"A panel with slug {data.slug!r} already exists.")
    panel = panels.add(
        Panel(
            tenant=principal.tenant,
            slug=data.slug,
            title=data.title,
            description=data.description,
            is_active=data.is_active,
            operation_template=data.operation_template,
            created_by=principal.subject,
            fields=[
                PanelField(**field.model_dump(), order=index)
                for index, field in enumerate(data.fields)
            ],
        )
    )
    await session.flush()
    return panel


async def get_panel(session: AsyncSession, principal: Principal, panel_id: uuid.UUID) -> Panel:
    return await PanelRepository(session, principal.tenant).get_or_404(panel_id, WITH_FIELDS)


async def list_panels(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[Panel], str | None]:
    stmt = PanelRepository(session, principal.tenant).scoped(WITH_FIELDS)
    rows, cursor = await paginate(session, stmt, Panel, page)
    return list(rows), cursor


def panel_schema(panel: Panel) -> PanelSchemaOut:
    """The form as JSON Schema (draft 2020-12) plus the UI hints a renderer needs."""
    properties = {
        field.name: json_schema(
            field.rules(), title=field.label, description=field.help_text, default=field.default
        )
        for field in panel.fields
    }
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": panel.title,
        "description": panel.description,
        "type": "object",
        "properties": properties,
        "required": [field.name for field in panel.fields if field.is_required],
        "additionalProperties": False,
    }
    ui = {
        "order": [field.name for field in panel.fields],
        "fields": {
            field.name: {
                "widget": WIDGETS.get(field.field_type, field.field_type),
                "help": field.help_text,
                "depends_on": field.depends_on,
                "options_url": (
                    f"/api/v1/panels/{panel.id}/fields/{field.name}/options"
                    if field.data_source
                    else None
                ),
                "options": field.options,
            }
            for field in panel.fields
        },
    }
    return PanelSchemaOut(schema=schema, ui=ui)
