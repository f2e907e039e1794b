"""Secret references and their mappings to templates: the checks, the writes and their
audit rows."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import record_audit
from idp_common.auth import Principal
from idp_common.errors import NotFound, ValidationFailed, field_error
from idp_common.pagination import PageParams
from idp_common.secret_values import SecretStoreSettings, refuse_unconfined
from idp_common.uniqueness import Unique
from operation_svc.models import AuditEntry, SecretMapping, SecretRef
from operation_svc.secrets.repository import MappingRepository, SecretRepository
from operation_svc.secrets.schemas import MappingIn, SecretIn
from operation_svc.templates.service import get_template

SLUG = Unique(SecretRef.tenant, SecretRef.slug, field="slug")
ENV_VAR = Unique(SecretMapping.template_id, SecretMapping.env_var, field="env_var")


async def create_secret(
    session: AsyncSession, principal: Principal, data: SecretIn, store: SecretStoreSettings
) -> SecretRef:
    refuse_unconfined(store, principal.tenant, data.provider, data.key, "key")
    secret = SecretRepository(session, principal.tenant).add(
        SecretRef(tenant=principal.tenant, created_by=principal.subject, **data.model_dump())
    )
    async with SLUG.claimed(f"A secret with slug {data.slug!r} already exists."):
        await session.flush()
    record_audit(
        session,
        AuditEntry,
        principal,
        "secret.create",
        secret.id,
        changes=data.model_dump(),
    )
    return secret


async def list_secrets(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[SecretRef], str | None]:
    return await SecretRepository(session, principal.tenant).page(page)


async def get_secret(session: AsyncSession, principal: Principal, reference: str) -> SecretRef:
    return await SecretRepository(session, principal.tenant).get_or_404(reference)


async def delete_secret(session: AsyncSession, principal: Principal, reference: str) -> None:
    """The secret reference goes with its mappings."""
    secrets = SecretRepository(session, principal.tenant)
    secret = await secrets.get_or_404(reference)
    await MappingRepository(session, principal.tenant).delete_mappings_of(secret.id)
    await secrets.remove(secret)
    record_audit(session, AuditEntry, principal, "secret.delete", secret.id)


async def map_secret(
    session: AsyncSession, principal: Principal, template_ref: str, data: MappingIn
) -> SecretMapping:
    template = await get_template(session, principal, template_ref)
    secret = await SecretRepository(session, principal.tenant).get_by_ref(data.secret_id)
    if secret is None:
        raise ValidationFailed(
            "Unknown secret.",
            errors=[field_error("secret_id", f"no secret {data.secret_id!r}", "unknown_secret")],
        )
    mapping = MappingRepository(session, principal.tenant).add(
        SecretMapping(
            tenant=principal.tenant,
            template_id=template.id,
            secret_id=secret.id,
            env_var=data.env_var,
            created_by=principal.subject,
        )
    )
    async with ENV_VAR.claimed(f"{data.env_var} is already mapped for this template."):
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
    return mapping


async def list_mappings(
    session: AsyncSession, principal: Principal, template_ref: str
) -> list[SecretMapping]:
    template = await get_template(session, principal, template_ref)
    mappings = MappingRepository(session, principal.tenant)
    return list(await mappings.mappings_of_template(template.id))


async def unmap_secret(
    session: AsyncSession, principal: Principal, template_ref: str, mapping_id: uuid.UUID
) -> None:
    template = await get_template(session, principal, template_ref)
    mappings = MappingRepository(session, principal.tenant)
    mapping = await mappings.get_or_404(mapping_id)
    if mapping.template_id != template.id:
        raise NotFound(f"Mapping {mapping_id} not found.")
    await mappings.remove(mapping)
    record_audit(
        session,
        AuditEntry,
        principal,
        "secret.unmap",
        template.id,
        object_type="template",
        changes={"env_var": mapping.env_var},
    )
