from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.auth import Principal
from idp_common.errors import Conflict
from idp_common.pagination import PageParams, paginate
from panel_svc.models import Panel, PanelField
from panel_svc.panels.repository import WITH_FIELDS, PanelRepository
from panel_svc.panels.schemas import PanelIn


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
