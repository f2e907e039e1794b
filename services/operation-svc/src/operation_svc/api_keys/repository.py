"""Queries of API keys: a tenant's own, and the cross-tenant lookup that verifies a key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from idp_common.repository import CrossTenantRepository, TenantRepository
from operation_svc.models import ApiKey


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey


class ApiKeysByHash(CrossTenantRepository[AsyncConnection]):
    """A key is presented before its tenant is known: the key decides the tenant."""

    async def by_hash(self, key_hash: str) -> Row[Any] | None:
        result = await self.connection.execute(
            select(ApiKey.__table__).where(ApiKey.key_hash == key_hash)
        )
        return result.one_or_none()
