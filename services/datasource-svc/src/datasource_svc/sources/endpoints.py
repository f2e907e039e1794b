from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from datasource_svc.models import AuditEntry, DataSource
from datasource_svc.sources.fetch import UpstreamFailed, placeholders
from datasource_svc.sources.resolver import OptionsResolver
from datasource_svc.sources.schemas import (
    DataSourceIn,
    DataSourceOut,
    DataSourceUpdate,
    Option,
    ResolveIn,
    ResolveOut,
    TestOut,
)
from idp_common.audit import record_audit
from idp_common.auth import Admin, Viewer
from idp_common.dependencies import ReadSessionDep, SessionDep
from idp_common.errors import Conflict, ProblemError, ValidationFailed, field_error
from idp_common.outbound import internal_literal_host
from idp_common.pagination import Page, PageParamsDep, page_of
from idp_common.rate_limit import ResolveRateLimit
from idp_common.repository import TenantRepository
from idp_common.schemas import Reference
from idp_common.secret_values import refuse_unconfined

router = APIRouter(prefix="/api/v1/datasources", tags=["datasources"])


class BadGateway(ProblemError):
    status_code, title, slug = 502, "Bad Gateway", "upstream-error"


class GatewayTimeout(ProblemError):
    status_code, title, slug = 504, "Gateway Timeout", "upstream-timeout"


class DataSourceRepository(TenantRepository[DataSource]):
    model = DataSource


def _resolver(request: Request) -> OptionsResolver:
    resolver: OptionsResolver = request.app.state.resolver
    return resolver


def _refuse_unconfined_secret(definition: DataSourceIn, request: Request, tenant: str) -> None:
    if definition.auth_config is not None:
        reference = definition.auth_config.secret
        store = request.app.state.settings.secret_store
        refuse_unconfined(
            store, tenant, reference.provider, reference.key, "auth_config.secret.key"
        )


def _refuse_internal_endpoint(definition: DataSourceIn, request: Request) -> None:
    internal = internal_literal_host(definition.endpoint_url or "")
    allowed = {host.lower() for host in _resolver(request).allowed_hosts}
    if internal and internal not in allowed:
        message = f"{internal} is not public; add it to DATASOURCE_OUTBOUND_ALLOWED_HOSTS"
        raise ValidationFailed(
            "The endpoint is an internal address.",
            errors=[field_error("endpoint_url", message, "internal_address")],
        )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_data_source(
    data: DataSourceIn, request: Request, session: SessionDep, principal: Admin
) -> DataSourceOut:
    """Define a data source that fills a dynamic field's options."""
    _refuse_internal_endpoint(data, request)
    _refuse_unconfined_secret(data, request, principal.tenant)
    sources = DataSourceRepository(session, principal.tenant)
    if await sources.get_by_slug(data.slug) is not None:
        raise Conflict(f"A data source with slug {data.slug!r} already exists.")
    fields = data.model_dump(exclude_none=True)
    source = sources.add(
        DataSource(tenant=principal.tenant, created_by=principal.subject, **fields)
    )
    await session.flush()
    record_audit(session, AuditEntry, principal, "datasource.create", source.id, changes=fields)
    return DataSourceOut.model_validate(source)


@router.get("")
async def list_data_sources(
    session: SessionDep, principal: Viewer, page: PageParamsDep
) -> Page[DataSourceOut]:
    """The tenant's data sources, newest first."""
    stmt = DataSourceRepository(session, principal.tenant).scoped()
    return await page_of(session, stmt, DataSource, page, DataSourceOut)


@router.get("/{source_id}")
async def get_data_source(
    source_id: Reference, session: SessionDep, principal: Viewer
) -> DataSourceOut:
    """One data source."""
    source = await DataSourceRepository(session, principal.tenant).get_or_404(source_id)
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
    sources = DataSourceRepository(session, principal.tenant)
    source = await sources.get_or_404(source_id)
    changes = data.model_dump(exclude_unset=True)
    try:
        definition = DataSourceIn.revised(source, changes)
    except ValidationError as exc:
        # Located like the errors of a request body, so they read the same as on create.
        errors = [error | {"loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None
    _refuse_internal_endpoint(definition, request)
    _refuse_unconfined_secret(definition, request, principal.tenant)
    if definition.slug != source.slug and await sources.get_by_slug(definition.slug) is not None:
        raise Conflict(f"A data source with slug {definition.slug!r} already exists.")
    for name, value in definition.model_dump(include=set(changes)).items():
        setattr(source, name, value)
    await session.flush()
    record_audit(
        session,
        AuditEntry,
        principal,
        "datasource.update",
        source.id,
        changes=data.model_dump(mode="json", exclude_unset=True),
    )
    return DataSourceOut.model_validate(source)


@router.delete("/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_data_source(
    source_id: Reference, session: SessionDep, principal: Admin
) -> Response:
    """Remove a data source."""
    source = await DataSourceRepository(session, principal.tenant).get_or_404(source_id)
    await session.delete(source)
    record_audit(session, AuditEntry, principal, "datasource.delete", source_id)
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
    source = await DataSourceRepository(session, principal.tenant).get_or_404(source_id)
    try:
        return await _resolver(request).resolve(source, body.values)
    except UpstreamFailed as exc:
        raise (GatewayTimeout if exc.timed_out else BadGateway)(
            f"Data source {source.slug!r}: {exc}"
        ) from exc


@router.post("/{source_id}/refresh", status_code=status.HTTP_204_NO_CONTENT)
async def refresh(source_id: Reference, session: SessionDep, principal: Admin) -> Response:
    """Forget the cached options: the next resolve asks the upstream again."""
    source = await DataSourceRepository(session, principal.tenant).get_or_404(source_id)
    source.cache_generation += 1
    record_audit(session, AuditEntry, principal, "datasource.refresh", source_id)
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
    source = await DataSourceRepository(session, principal.tenant).get_or_404(source_id)
    values = {name: str(body.values.get(name) or "") for name in placeholders(source)}
    try:
        fetched = await _resolver(request).fetch(source, values)
    except UpstreamFailed as exc:
        return TestOut(status_code=None, response_excerpt=exc.excerpt, options=[], error=str(exc))
    return TestOut(
        status_code=fetched.status_code,
        response_excerpt=fetched.excerpt,
        options=[Option.model_validate(option) for option in fetched.options],
        error=None,
    )
