"""Queries of templates: the tenant's (``TemplateRepository``) and the cross-tenant ones of
the consumers and the dispatcher (``TemplateCatalog``)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.events import SecretBinding
from idp_common.repository import CrossTenantRepository, TenantRepository, as_id
from operation_svc.models import OperationTemplate, SecretMapping, SecretRef, TemplateVersion


class TemplateRepository(TenantRepository[OperationTemplate]):
    """Deleted templates are invisible: not listed, not found, not runnable."""

    model = OperationTemplate

    def scoped(self, *options: Any) -> Select[tuple[OperationTemplate]]:
        return super().scoped(*options).where(OperationTemplate.is_deleted.is_(False))


# Built once: building these queries costs more than running them (they run for every
# dispatch or group of events), the values given as parameters.
_NAMED = select(OperationTemplate).where(
    OperationTemplate.tenant.in_(bindparam("tenants", expanding=True)),
    OperationTemplate.slug.in_(bindparam("slugs", expanding=True))
    | OperationTemplate.id.in_(bindparam("ids", expanding=True)),
    OperationTemplate.is_deleted.is_(False),
)
_LIMITS = (
    select(OperationTemplate.id, OperationTemplate.max_concurrency)
    .where(OperationTemplate.id.in_(bindparam("ids", expanding=True)))
    .with_for_update(read=True)
)
_BINDINGS = (
    select(SecretMapping.template_id, SecretMapping.env_var, SecretRef.provider, SecretRef.key)
    .join(SecretRef, SecretRef.id == SecretMapping.secret_id)
    .where(SecretMapping.template_id.in_(bindparam("ids", expanding=True)))
    .order_by(SecretMapping.env_var)
)


class TemplateCatalog(CrossTenantRepository[AsyncSession]):
    """Cross-tenant reads of templates by id, for the event consumers and the dispatcher:
    a template named by an event is looked up under the event's tenant; one known by id
    (an execution's) needs no tenant."""

    async def named(self, names: set[tuple[str, str]]) -> dict[tuple[str, str], OperationTemplate]:
        """The live templates by (tenant, id or slug), in one query; an id is tried first,
        as ``TenantRepository.get_by_ref`` does."""
        ids = {reference: as_id(reference) for _, reference in names}
        params = {
            "tenants": list({tenant for tenant, _ in names}),
            "slugs": list(ids),
            "ids": [object_id for object_id in ids.values() if object_id is not None],
        }
        found = (await self.connection.scalars(_NAMED, params)).all()
        by_id: dict[tuple[str, uuid.UUID | None], OperationTemplate] = {
            (template.tenant, template.id): template for template in found
        }
        by_slug = {(template.tenant, template.slug): template for template in found}
        named = {
            (tenant, reference): by_id.get((tenant, ids[reference]))
            or by_slug.get((tenant, reference))
            for tenant, reference in names
        }
        return {name: template for name, template in named.items() if template is not None}

    async def get(self, template_id: uuid.UUID) -> OperationTemplate | None:
        return await self.connection.get(OperationTemplate, template_id)

    async def locked(self, template_id: uuid.UUID) -> OperationTemplate:
        """The template, locked until the transaction ends (its slots are being counted)."""
        stmt = select(OperationTemplate).where(OperationTemplate.id == template_id)
        template = await self.connection.scalar(stmt.with_for_update())
        assert template is not None, "templates are never deleted, only hidden"
        return template

    async def limits(self, template_ids: set[uuid.UUID]) -> dict[uuid.UUID, int | None]:
        """Each template's concurrency limit now, share-locked until the transaction ends."""
        found = await self.connection.execute(_LIMITS, {"ids": list(template_ids)})
        return dict(found.tuples().all())

    async def version(self, template_id: uuid.UUID, version: int | None) -> TemplateVersion | None:
        if version is None:
            return None
        return await self.connection.get(TemplateVersion, (template_id, version))

    async def secret_bindings(
        self, template_ids: set[uuid.UUID]
    ) -> dict[uuid.UUID, list[SecretBinding]]:
        """The secrets each template's runs get, as references the worker resolves."""
        bindings: dict[uuid.UUID, list[SecretBinding]] = {}
        if template_ids:
            rows = await self.connection.execute(_BINDINGS, {"ids": list(template_ids)})
            for template_id, env_var, provider, key in rows:
                binding = SecretBinding(env_var=env_var, provider=provider, key=key)
                bindings.setdefault(template_id, []).append(binding)
        return bindings
