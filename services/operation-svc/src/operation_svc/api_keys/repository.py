"""Queries of API keys: a tenant's own, and the cross-tenant lookup that verifies a key."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from idp_common.repository import CrossTenantRepository, TenantRepository
from operation_svc.models import ApiKey


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey

    async def created_by(self, creators: Collection[str]) -> list[uuid.UUID]:
        """The ids of the keys any of ``creators`` created (revoked ones too)."""
        found = await self.session.scalars(
            self.scoped().with_only_columns(ApiKey.id).where(ApiKey.created_by.in_(creators))
        )
        return list(found)


class ApiKeysByHash(CrossTenantRepository[AsyncConnection]):
    """A key is presented before its tenant is known: the key decides the tenant (and the
    keys it was made with are of its tenant)."""

    async def by_hash(self, key_hash: str) -> Row[Any] | None:
        result = await self.connection.execute(
            select(ApiKey.__table__).where(ApiKey.key_hash == key_hash)
        )
        return result.one_or_none()

    async def by_id(self, tenant: str, key_id: uuid.UUID) -> Row[Any] | None:
        result = await self.connection.execute(
            select(ApiKey.__table__).where(ApiKey.tenant == tenant, ApiKey.id == key_id)
        )
        return result.one_or_none()
