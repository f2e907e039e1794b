from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import record_audit
from idp_common.auth import Principal
from idp_common.db import utcnow
from idp_common.pagination import PageParams
from idp_common.uniqueness import Unique, freed_slug
from panel_svc.fields.types import json_schema
from panel_svc.models import AuditEntry, Panel, PanelField
from panel_svc.panels.repository import ONE_WITH_FIELDS, WITH_FIELDS, PanelRepository
from panel_svc.panels.schemas import FieldIn, PanelIn, PanelSchemaOut, PanelUpdate
from panel_svc.submissions.validation import sent_to_source

SLUG = Unique(Panel.tenant, Panel.slug, field="slug")

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


def _fields(fields: list[FieldIn]) -> list[PanelField]:
    return [PanelField(**field.model_dump(), order=index) for index, field in enumerate(fields)]


async def create_panel(session: AsyncSession, principal: Principal, data: PanelIn) -> Panel:
    panel = PanelRepository(session, principal.tenant).add(
        Panel(
            tenant=principal.tenant,
            **data.model_dump(exclude={"fields"}),
            created_by=principal.subject,
            updated_by=principal.subject,
            fields=_fields(data.fields),
        )
    )
    async with SLUG.claimed(f"A panel with slug {data.slug!r} already exists."):
        await session.flush()
    record_audit(
        session,
        AuditEntry,
        principal,
        "panel.create",
        panel.id,
        changes=data.model_dump(mode="json"),
    )
    return panel


async def update_panel(
    session: AsyncSession, principal: Principal, panel_id: uuid.UUID | str, data: PanelUpdate
) -> Panel:
    """Changes sent at once take their turns on the panel's row: each replaces the fields
    the one before left (on PostgreSQL both deleted the old fields and inserted their own
    of the same names, a 500)."""
    panels = PanelRepository(session, principal.tenant)
    panel = await panels.get_or_404(panel_id, WITH_FIELDS, locked=True)
    changes = data.model_dump(exclude_unset=True, exclude={"fields"})
    for name, value in changes.items():
        setattr(panel, name, value)
    if data.fields is not None:
        panel.fields = []
        await session.flush()  # the old fields go first: the new ones may reuse their names
        panel.fields = _fields(data.fields)
    panel.updated_by = principal.subject
    await session.flush()
    record_audit(
        session,
        AuditEntry,
        principal,
        "panel.update",
        panel.id,
        changes=data.model_dump(mode="json", exclude_unset=True),
    )
    return panel


async def delete_panel(
    session: AsyncSession, principal: Principal, panel_id: uuid.UUID | str
) -> None:
    """Soft delete: the panel disappears (404) and takes no submissions; its submissions
    stay. Its slug is freed for a new panel."""
    panel = await get_panel(session, principal, panel_id)
    panel.deleted_at = utcnow()
    panel.slug = freed_slug(panel.slug, panel.id)
    panel.updated_by = principal.subject
    record_audit(session, AuditEntry, principal, "panel.delete", panel.id)


async def get_panel(
    session: AsyncSession, principal: Principal, panel_id: uuid.UUID | str
) -> Panel:
    return await PanelRepository(session, principal.tenant).get_or_404(panel_id, ONE_WITH_FIELDS)


async def list_panels(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    active: bool | None,
    category: str | None,
    search: str | None,
) -> tuple[list[Panel], str | None]:
    panels = PanelRepository(session, principal.tenant)
    return await panels.page(page, panels.listing(active=active, category=category, search=search))


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
                "depends_on": sent_to_source(field, panel.fields),
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
