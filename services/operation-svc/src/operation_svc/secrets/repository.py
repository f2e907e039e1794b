"""Queries of secret references and of their mappings to templates, in the caller's tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete

from idp_common.repository import TenantRepository
from operation_svc.models import SecretMapping, SecretRef


class SecretRepository(TenantRepository[SecretRef]):
    model = SecretRef


class MappingRepository(TenantRepository[SecretMapping]):
    model = SecretMapping

    async def mappings_of_template(self, template_id: uuid.UUID) -> Sequence[SecretMapping]:
        stmt = self.scoped().where(SecretMapping.template_id == template_id)
        return (await self.session.scalars(stmt)).all()

    async def delete_mappings_of(self, secret_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(SecretMapping).where(
                SecretMapping.tenant == self.tenant, SecretMapping.secret_id == secret_id
            )
        )
