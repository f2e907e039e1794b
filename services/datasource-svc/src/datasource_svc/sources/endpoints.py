from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from datasource_svc.models import DataSource
from datasource_svc.sources.schemas import DataSourceIn, DataSourceOut
from idp_common.auth import Admin, Viewer
from idp_common.dependencies import SessionDep
from idp_common.errors import Conflict
from idp_common.pagination import Page, PageParamsDep, paginate
from idp_common.repository import TenantRepository

router = APIRouter(prefix="/api/v1/datasources", tags=["datasources"])


class DataSourceRepository(TenantRepository[DataSource]):
    model = DataSource


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_data_source(
    data: DataSourceIn, session: SessionDep, principal: Admin
) -> DataSourceOut:
    """Define a data source that fills a dynamic field's options."""
    sources = DataSourceRepository(session, principal.tenant)
    if await sources.get_by_slug(data.slug) is not None:
        raise Conflict(f"A data source with slug {data.slug!r} already exists.")
    source = sources.add(
        DataSource(tenant=principal.tenant, created_by=principal.subject, **data.model_dump())
    )
    await session.flush()
    return DataSourceOut.model_validate(source)


@router.get("")
async def list_data_sources(
    session: SessionDep, principal: Viewer, page: PageParamsDep
) -> Page[DataSourceOut]:
    """The tenant's data sources, newest first."""
    stmt = DataSourceRepository(session, principal.tenant).scoped()
    rows, cursor = await paginate(session, stmt, DataSource, page)
    return Page(items=[DataSourceOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/{source_id}")
async def get_data_source(
    source_id: uuid.UUID, session: SessionDep, principal: Viewer
) -> DataSourceOut:
    """One data source."""
    source = await DataSourceRepository(session, principal.tenant).get_or_404(source_id)
    return DataSourceOut.model_validate(source)
