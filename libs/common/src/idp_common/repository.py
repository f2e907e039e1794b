"""Tenant scoping lives in the repository layer: every query a repository builds is
filtered by the caller's tenant, so another tenant's object is simply not found."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.errors import NotFound

M = TypeVar("M")


class TenantRepository(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession, tenant: str, model: type[M] | None = None) -> None:
        self.session = session
        self.tenant = tenant
        if model is not None:
            self.model = model

    def scoped(self, *options: Any) -> Select[tuple[M]]:
        return select(self.model).where(self.model.tenant == self.tenant).options(*options)  # type: ignore[attr-defined]

    async def get(self, object_id: Any, *options: Any) -> M | None:
        stmt = self.scoped(*options).where(self.model.id == object_id)  # type: ignore[attr-defined]
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_by_slug(self, slug: str, *options: Any) -> M | None:
        stmt = self.scoped(*options).where(self.model.slug == slug)  # type: ignore[attr-defined]
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_or_404(self, object_id: Any, *options: Any) -> M:
        found = await self.get(object_id, *options)
        if found is None:
            raise NotFound(f"{self.model.__name__} {object_id} not found.")
        return found

    def add(self, obj: M) -> M:
        self.session.add(obj)
        return obj
