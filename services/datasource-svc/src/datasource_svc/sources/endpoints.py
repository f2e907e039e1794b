from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from datasource_svc.config import DatasourceSettings
from datasource_svc.sources import service
from datasource_svc.sources.resolver import OptionsResolver
from datasource_svc.sources.schemas import (
    DataSourceIn,
    DataSourceOut,
    DataSourceUpdate,
    ResolveIn,
    ResolveOut,
    TestOut,
)
from idp_common.auth import Admin, Viewer
from idp_common.dependencies import ReadSessionDep, SessionDep
from idp_common.pagination import Page, PageParamsDep
from idp_common.rate_limit import ResolveRateLimit
from idp_common.schemas import Reference
from idp_common.secret_values import SecretStoreSettings

router = APIRouter(prefix="/api/v1/datasources", tags=["datasources"])


def _resolver(request: Request) -> OptionsResolver:
    resolver: OptionsResolver = request.app.state.resolver
    return resolver


def _secret_store(request: Request) -> SecretStoreSettings:
    settings: DatasourceSettings = request.app.state.settings
    return settings.secret_store


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_data_source(
    data: DataSourceIn, request: Request, session: SessionDep, principal: Admin
) -> DataSourceOut:
    """Define a data source that fills a dynamic field's options."""
    source = await service.create_data_source(
        session, principal, data, _resolver(request), _secret_store(request)
    )
    return DataSourceOut.model_validate(source)


@router.get("")
async def list_data_sources(
    session: SessionDep, principal: Viewer, page: PageParamsDep
) -> Page[DataSourceOut]:
    """The tenant's data sources, newest first."""
    sources, cursor = await service.list_data_sources(session, principal, page)
    return Page(items=[DataSourceOut.model_validate(s) for s in sources], next_cursor=cursor)


@router.get("/{source_id}")
async def get_data_source(
    source_id: Reference, session: SessionDep, principal: Viewer
) -> DataSourceOut:
    """One data source."""
    source = await service.get_data_source(session, principal, source_id)
    return DataSourceOut.model_validate(source)


@router.patch("/{source_id}")
async def update_data_source(
    source_id: Reference,
    data: DataSourceUpdate,
    request: Request,
    session: SessionDep,
    principal: Admin,
) -> DataSourceOut:
    """Change a data source: omitted attributes keep their value and the result is checked
    like a new source. Options cached for the old definition are never served again."""
    source = await service.update_data_source(
        session, principal, source_id, data, _resolver(request), _secret_store(request)
    )
    return DataSourceOut.model_validate(source)


@router.delete("/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_data_source(
    source_id: Reference, session: SessionDep, principal: Admin
) -> Response:
    """Remove a data source."""
    await service.delete_data_source(session, principal, source_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{source_id}/resolve", dependencies=[ResolveRateLimit])
async def resolve(
    source_id: Reference,
    body: ResolveIn,
    request: Request,
    session: ReadSessionDep,
    principal: Viewer,
) -> ResolveOut:
    """The options for these dependent values: from the cache when fresh, else from the
    upstream (one call however many ask at once); the last good options, marked stale, when
    the upstream fails."""
    return await service.resolve(session, principal, source_id, body.values, _resolver(request))


@router.post("/{source_id}/refresh", status_code=status.HTTP_204_NO_CONTENT)
async def refresh(source_id: Reference, session: SessionDep, principal: Admin) -> Response:
    """Forget the cached options: the next resolve asks the upstream again."""
    await service.refresh(session, principal, source_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{source_id}/test")
async def test_source(
    source_id: Reference,
    body: ResolveIn,
    request: Request,
    session: ReadSessionDep,
    principal: Admin,
) -> TestOut:
    """Run the source once, bypassing the cache, and show the raw response excerpt and the
    mapped options, so authors can debug their JMESPath."""
    return await service.test_source(session, principal, source_id, body.values, _resolver(request))
