"""Tenant scoping lives in the repository layer: every query a repository builds is
filtered by the caller's tenant, so another tenant's object is simply not found. The few
queries that must see every tenant live in a ``CrossTenantRepository``, named as such."""

from __future__ import annotations

import uuid
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, String, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from idp_common.errors import NotFound
from idp_common.pagination import PageParams, paginate

M = TypeVar("M")
# Lookups by id or slug are built once per repository class, model, column, loader options
# and lock: building a query and its cache key costs more CPU than SQLite takes to run it.
# Always executed with the caller's tenant and value as parameters. The options given are
# module-level constants (a new option object would be a new entry).
_LOOKUPS: dict[tuple[type[Any], type[Any], str, tuple[Any, ...], bool], Select[Any]] = {}


def as_id(reference: str) -> uuid.UUID | None:
    """The id a reference (an id or a slug) spells, or None when it is no id."""
    try:
        return uuid.UUID(reference)
    except ValueError:
        return None


class TenantRepository(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession, tenant: str, model: type[M] | None = None) -> None:
        self.session = session
        self.tenant = tenant
        if model is not None:
            self.model = model

    def scoped(self, *options: Any) -> Select[tuple[M]]:
        tenant = bindparam("tenant", self.tenant, type_=String)
        return select(self.model).where(self.model.tenant == tenant).options(*options)  # type: ignore[attr-defined]

    async def get(self, object_id: Any, *options: Any, locked: bool = False) -> M | None:
        return await self._one_by("id", object_id, options, locked)

    async def get_by_slug(self, slug: str, *options: Any, locked: bool = False) -> M | None:
        return await self._one_by("slug", slug, options, locked)

    async def _one_by(
        self, column: str, value: Any, options: tuple[Any, ...], locked: bool
    ) -> M | None:
        key = (type(self), self.model, column, options, locked)
        if (lookup := _LOOKUPS.get(key)) is None:
            lookup = self.scoped(*options).where(getattr(self.model, column) == bindparam("value"))
            if locked:
                # Read again even when the session holds it: the lock may have waited for
                # another transaction's change. Loaders of related rows must run after this
                # statement (selectinload): a joined load could not be locked on PostgreSQL.
                lookup = lookup.with_for_update().execution_options(populate_existing=True)
            _LOOKUPS[key] = lookup
        params = {"tenant": self.tenant, "value": value}
        # unique(): a joined load of a collection repeats the object once per member.
        return (await self.session.scalars(lookup, params)).unique().one_or_none()

    async def get_by_ref(self, reference: str, *options: Any, locked: bool = False) -> M | None:
        """By id, or by slug where people name the objects (a slug may look like an id: the
        id is tried first)."""
        object_id = as_id(reference)
        found = None if object_id is None else await self.get(object_id, *options, locked=locked)
        if found is None and hasattr(self.model, "slug"):
            found = await self.get_by_slug(reference, *options, locked=locked)
        return found

    async def get_or_404(
        self, reference: uuid.UUID | str, *options: Any, locked: bool = False
    ) -> M:
        """By id, or by id or slug when ``reference`` is text (a path parameter).

        ``locked``: the row stays locked until the transaction ends (``FOR UPDATE`` on
        PostgreSQL; SQLite's writes take turns anyway), for a change that reads what it
        changes (a template's next version number): two sent at once run one after the
        other, the second reading what the first wrote, or not finding what it deleted."""
        if isinstance(reference, uuid.UUID):
            found = await self.get(reference, *options, locked=locked)
        else:
            found = await self.get_by_ref(reference, *options, locked=locked)
        if found is None:
            raise NotFound(f"{self.model.__name__} {reference} not found.")
        return found

    async def page(
        self, params: PageParams, stmt: Select[tuple[M]] | None = None
    ) -> tuple[list[M], str | None]:
        """One page of ``stmt`` (built from ``scoped``; by default all of it), newest first."""
        rows, cursor = await paginate(
            self.session, self.scoped() if stmt is None else stmt, self.model, params
        )
        return list(rows), cursor

    def add(self, obj: M) -> M:
        self.session.add(obj)
        return obj

    async def remove(self, obj: M) -> None:
        await self.session.delete(obj)


C = TypeVar("C", AsyncSession, AsyncConnection)


class CrossTenantRepository(Generic[C]):
    """System queries, not filtered by tenant: for work the platform does for every tenant at
    once (a consumer's group of events, an API key checked before its tenant is known).
    Each subclass says why it may see every tenant; a request acting for a tenant uses a
    ``TenantRepository``."""

    def __init__(self, connection: C) -> None:
        self.connection: C = connection
