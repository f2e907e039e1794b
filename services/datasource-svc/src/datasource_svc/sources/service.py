"""Data sources: the checks of a definition (its endpoint public, its secret inside the
tenant's confinement), the writes and their audit rows, and running a source for options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from datasource_svc.models import AuditEntry, DataSource
from datasource_svc.sources.fetch import UpstreamFailed
from datasource_svc.sources.repository import DataSourceRepository
from datasource_svc.sources.resolver import OptionsResolver, used_values
from datasource_svc.sources.schemas import (
    DataSourceIn,
    DataSourceUpdate,
    Option,
    ResolveOut,
    TestOut,
)
from idp_common.audit import record_audit
from idp_common.auth import Principal
from idp_common.errors import ProblemError, ValidationFailed, field_error
from idp_common.kept_credentials import kept_for_their_host
from idp_common.outbound import internal_literal_host
from idp_common.pagination import PageParams
from idp_common.redaction import mask_secrets
from idp_common.secret_values import SecretStoreSettings, refuse_unconfined
from idp_common.uniqueness import Unique

# The parts of a source's request shown with their credentials masked (DataSourceOut).
SHOWN_MASKED = ("headers", "query", "body")

SLUG = Unique(DataSource.tenant, DataSource.slug, field="slug")


class BadGateway(ProblemError):
    status_code, title, slug = 502, "Bad Gateway", "upstream-error"


class GatewayTimeout(ProblemError):
    status_code, title, slug = 504, "Gateway Timeout", "upstream-timeout"


def _check(
    definition: DataSourceIn,
    tenant: str,
    resolver: OptionsResolver,
    store: SecretStoreSettings,
) -> None:
    """Refuse an internal endpoint (unless allowlisted) and a secret outside the tenant's
    confinement."""
    internal = internal_literal_host(definition.endpoint_url or "")
    allowed = {host.lower() for host in resolver.allowed_hosts}
    if internal and internal not in allowed:
        message = f"{internal} is not public; add it to DATASOURCE_OUTBOUND_ALLOWED_HOSTS"
        raise ValidationFailed(
            "The endpoint is an internal address.",
            errors=[field_error("endpoint_url", message, "internal_address")],
        )
    if definition.auth_config is not None:
        reference = definition.auth_config.secret
        refuse_unconfined(
            store, tenant, reference.provider, reference.key, "auth_config.secret.key"
        )


async def _flush_claiming_slug(session: AsyncSession, slug: str) -> None:
    async with SLUG.claimed(f"A data source with slug {slug!r} already exists."):
        await session.flush()


async def create_data_source(
    session: AsyncSession,
    principal: Principal,
    data: DataSourceIn,
    resolver: OptionsResolver,
    store: SecretStoreSettings,
) -> DataSource:
    _check(data, principal.tenant, resolver, store)
    fields = data.model_dump(exclude_none=True)
    source = DataSourceRepository(session, principal.tenant).add(
        DataSource(tenant=principal.tenant, created_by=principal.subject, **fields)
    )
    await _flush_claiming_slug(session, data.slug)
    record_audit(session, AuditEntry, principal, "datasource.create", source.id, changes=fields)
    return source


async def list_data_sources(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[DataSource], str | None]:
    return await DataSourceRepository(session, principal.tenant).page(page)


async def get_data_source(
    session: AsyncSession, principal: Principal, reference: str
) -> DataSource:
    return await DataSourceRepository(session, principal.tenant).get_or_404(reference)


async def update_data_source(
    session: AsyncSession,
    principal: Principal,
    reference: str,
    data: DataSourceUpdate,
    resolver: OptionsResolver,
    store: SecretStoreSettings,
) -> DataSource:
    """Omitted attributes keep their value and the result is checked like a new source."""
    sources = DataSourceRepository(session, principal.tenant)
    source = await sources.get_or_404(reference)
    # Its credentials were shown masked: a mask sent back keeps the value it stands for. What
    # the change leaves out of the request's parts is kept too, as if sent back as shown: so
    # a change of host is refused alike where they hold credentials.
    sent = data.model_dump(exclude_unset=True)
    left_out = {name: getattr(source, name) for name in SHOWN_MASKED if name not in sent}
    changes = kept_for_their_host(
        mask_secrets(left_out) | sent,
        {name: getattr(source, name) for name in data.model_fields_set | left_out.keys()},
        sent_url=sent.get("endpoint_url") or source.endpoint_url or "",
        stored_url=source.endpoint_url or "",
        field="endpoint_url",
    )
    try:
        definition = DataSourceIn.revised(source, changes)
    except ValidationError as exc:
        # Located like the errors of a request body, so they read the same as on create.
        errors = [error | {"loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None
    _check(definition, principal.tenant, resolver, store)
    for name, value in definition.model_dump(include=set(changes)).items():
        setattr(source, name, value)
    await _flush_claiming_slug(session, definition.slug)
    record_audit(
        session,
        AuditEntry,
        principal,
        "datasource.update",
        source.id,
        changes=data.model_dump(mode="json", exclude_unset=True),
    )
    return source


async def delete_data_source(session: AsyncSession, principal: Principal, reference: str) -> None:
    sources = DataSourceRepository(session, principal.tenant)
    source = await sources.get_or_404(reference)
    await sources.remove(source)
    record_audit(session, AuditEntry, principal, "datasource.delete", source.id)


async def refresh(session: AsyncSession, principal: Principal, reference: str) -> None:
    """A new cache generation: options cached before it are never served again."""
    source = await get_data_source(session, principal, reference)
    source.cache_generation += 1
    record_audit(session, AuditEntry, principal, "datasource.refresh", source.id)


async def resolve(
    session: AsyncSession,
    principal: Principal,
    reference: str,
    values: Mapping[str, Any],
    resolver: OptionsResolver,
) -> ResolveOut:
    """The options for these dependent values; a failed upstream is a 504 when it timed out,
    else a 502."""
    source = await get_data_source(session, principal, reference)
    try:
        return await resolver.resolve(source, values)
    except UpstreamFailed as exc:
        raise (GatewayTimeout if exc.timed_out else BadGateway)(
            f"Data source {source.slug!r}: {exc}"
        ) from exc


async def test_source(
    session: AsyncSession,
    principal: Principal,
    reference: str,
    values: Mapping[str, Any],
    resolver: OptionsResolver,
) -> TestOut:
    """One upstream call, bypassing the cache; a failure is reported, not raised. A static
    source has no upstream: its test shows its options, as ``resolve`` gives them."""
    source = await get_data_source(session, principal, reference)
    if source.source_type == "static":
        return TestOut(
            status_code=None,
            response_excerpt=None,
            options=[Option.model_validate(option) for option in source.options or []],
            error=None,
        )
    try:
        fetched = await resolver.fetch(source, used_values(source, values))
    except UpstreamFailed as exc:
        return TestOut(status_code=None, response_excerpt=exc.excerpt, options=[], error=str(exc))
    return TestOut(
        status_code=fetched.status_code,
        response_excerpt=fetched.excerpt,
        options=[Option.model_validate(option) for option in fetched.options],
        error=None,
    )
