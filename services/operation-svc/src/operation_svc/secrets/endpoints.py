"""Secret references (where a secret lives, never its value) and their mappings to
templates as environment variables. Values are resolved only inside the worker."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import delete, select

from idp_common.audit import record_audit
from idp_common.auth import Admin
from idp_common.dependencies import SessionDep
from idp_common.errors import Conflict, NotFound, ValidationFailed, field_error
from idp_common.pagination import Page, PageParamsDep, page_of
from idp_common.repository import TenantRepository
from idp_common.schemas import Reference
from idp_common.secret_values import refuse_unconfined
from operation_svc.models import AuditEntry, SecretMapping, SecretRef
from operation_svc.secrets.schemas import MappingIn, MappingOut, SecretIn, SecretOut
from operation_svc.templates.repository import TemplateRepository

router = APIRouter(prefix="/api/v1", tags=["secrets"])


class SecretRepository(TenantRepository[SecretRef]):
    model = SecretRef


class MappingRepository(TenantRepository[SecretMapping]):
    model = SecretMapping


@router.post("/secrets", status_code=status.HTTP_201_CREATED)
async def create_secret(
    data: SecretIn, request: Request, session: SessionDep, principal: Admin
) -> SecretOut:
    """Register where a secret lives (provider and key), inside this tenant's confinement
    (see SECRETS_ENV_PREFIX, SECRETS_FILE_ROOT, SECRETS_AWS_PREFIX)."""
    store = request.app.state.settings.secret_store
    refuse_unconfined(store, principal.tenant, data.provider, data.key, "key")
    secrets = SecretRepository(session, principal.tenant)
    if await secrets.get_by_slug(data.slug) is not None:
        raise Conflict(f"A secret with slug {data.slug!r} already exists.")
    secret = secrets.add(
        SecretRef(tenant=principal.tenant, created_by=principal.subject, **data.model_dump())
    )
    await session.flush()
    record_audit(
        session,
        AuditEntry,
        principal,
        "secret.create",
        secret.id,
        changes=data.model_dump(),
    )
    return SecretOut.model_validate(secret)


@router.get("/secrets")
async def list_secrets(
    session: SessionDep, principal: Admin, page: PageParamsDep
) -> Page[SecretOut]:
    """The tenant's secret references."""
    stmt = SecretRepository(session, principal.tenant).scoped()
    return await page_of(session, stmt, SecretRef, page, SecretOut)


@router.get("/secrets/{secret_id}")
async def get_secret(secret_id: Reference, session: SessionDep, principal: Admin) -> SecretOut:
    """One secret reference."""
    secret = await SecretRepository(session, principal.tenant).get_or_404(secret_id)
    return SecretOut.model_validate(secret)


@router.delete("/secrets/{secret_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_secret(secret_id: Reference, session: SessionDep, principal: Admin) -> Response:
    """Remove a secret reference and its mappings."""
    secret = await SecretRepository(session, principal.tenant).get_or_404(secret_id)
    await session.execute(delete(SecretMapping).where(SecretMapping.secret_id == secret.id))
    await session.delete(secret)
    record_audit(
        session,
        AuditEntry,
        principal,
        "secret.delete",
        secret_id,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/templates/{template_id}/secrets", status_code=status.HTTP_201_CREATED)
async def map_secret(
    template_id: Reference, data: MappingIn, session: SessionDep, principal: Admin
) -> MappingOut:
    """Give a template's child process a secret as an environment variable."""
    template = await TemplateRepository(session, principal.tenant).get_or_404(template_id)
    secret = await SecretRepository(session, principal.tenant).get_by_ref(data.secret_id)
    if secret is None:
        raise ValidationFailed(
            "Unknown secret.",
            errors=[field_error("secret_id", f"no secret {data.secret_id!r}", "unknown_secret")],
        )
    taken = select(SecretMapping).where(
        SecretMapping.template_id == template.id, SecretMapping.env_var == data.env_var
    )
    if (await session.scalars(taken)).first() is not None:
        raise Conflict(f"{data.env_var} is already mapped for this template.")
    mapping = MappingRepository(session, principal.tenant).add(
        SecretMapping(
            tenant=principal.tenant,
            template_id=template.id,
            secret_id=secret.id,
            env_var=data.env_var,
            created_by=principal.subject,
        )
    )
    await session.flush()
    record_audit(
        session,
        AuditEntry,
        principal,
        "secret.map",
        template.id,
        object_type="template",
        changes={"env_var": data.env_var, "secret_id": str(secret.id)},
    )
    return MappingOut.model_validate(mapping)


@router.get("/templates/{template_id}/secrets")
async def list_mappings(
    template_id: Reference, session: SessionDep, principal: Admin
) -> list[MappingOut]:
    """The secrets a template's child process receives."""
    template = await TemplateRepository(session, principal.tenant).get_or_404(template_id)
    stmt = (
        MappingRepository(session, principal.tenant)
        .scoped()
        .where(SecretMapping.template_id == template.id)
    )
    return [MappingOut.model_validate(m) for m in (await session.scalars(stmt)).all()]


@router.delete("/templates/{template_id}/secrets/{mapping_id}", status_code=204)
async def unmap_secret(
    template_id: Reference, mapping_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    """Stop giving a template this secret."""
    template = await TemplateRepository(session, principal.tenant).get_or_404(template_id)
    mapping = await MappingRepository(session, principal.tenant).get_or_404(mapping_id)
    if mapping.template_id != template.id:
        raise NotFound(f"Mapping {mapping_id} not found.")
    await session.delete(mapping)
    record_audit(
        session,
        AuditEntry,
        principal,
        "secret.unmap",
        template.id,
        object_type="template",
        changes={"env_var": mapping.env_var},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
