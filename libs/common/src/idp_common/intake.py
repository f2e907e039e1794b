"""The idempotent intake of API creates (submissions, executions).

A create finds what it targets on a snapshot (outside SQLite's single write turn, which the
other creates' writes and the workers' claims and results need), answers a repeated
Idempotency-Key with what the first request created, checks and builds the new object with
no session open (a check may call another service), then hands it to a group commit:
creates that arrive while a write is in flight share the next transaction, one INSERT per
table for all of them. Their lookups are grouped the same way: creates that arrive while a
lookup is in flight share the next snapshot, and a target several of them name is read
once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nacl.public import PublicKey
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.auth import Principal
from idp_common.coalescing import Coalescer
from idp_common.db import Database
from idp_common.group_commit import GroupCommit
from idp_common.idempotency import IdempotentRepository
from idp_common.unit_of_work import UnitOfWork

Request = TypeVar("Request")
Target = TypeVar("Target")
New = TypeVar("New")
Created = TypeVar("Created")
# Creates looked up on one snapshot, and written in one transaction, at most (each client
# waits for one create at a time, so a group is as large as the number of clients waiting).
MAX_GROUP = 100


@dataclass(frozen=True, slots=True)
class _Lookup(Generic[Request]):
    principal: Principal
    request: Request
    key: str | None


@dataclass(frozen=True, slots=True)
class _Found(Generic[Target]):
    target: Target
    digest: str
    earlier: Any  # what an earlier request with the same Idempotency-Key created, or None


class IdempotentIntake(ABC, Generic[Request, Target, New, Created]):
    """Creates ``Created`` objects for API clients (see the module's docstring). Secret
    values are sealed to the workers' key (``seal_to``) before anything is stored."""

    repository: type[IdempotentRepository[Any]]

    def __init__(self, db: Database, seal_to: PublicKey) -> None:
        self.db = db
        self.seal_to = seal_to
        self._lookups = Coalescer(self._look_up_together, max_items=MAX_GROUP)
        self._writes = GroupCommit(db, self.write, max_items=MAX_GROUP)

    @abstractmethod
    async def target(self, session: AsyncSession, principal: Principal, request: Request) -> Target:
        """What the request creates something of (a panel, a template), read on a snapshot.
        Several requests may be given the same object: nothing may change it."""

    @abstractmethod
    def target_key(self, principal: Principal, request: Request) -> Hashable:
        """All that ``target`` reads depends on: requests with equal keys that share a
        snapshot share one read."""

    @abstractmethod
    def fingerprint(self, target: Target, request: Request) -> str:
        """The request's digest, compared with the first request's on a repeated key."""

    @abstractmethod
    async def build(
        self, target: Target, principal: Principal, request: Request, key: str | None, digest: str
    ) -> New:
        """The checked object to write, with what is written beside it (its event, audit)."""

    @abstractmethod
    def created(self, new: New) -> Created:
        """The object ``new`` writes, as the API returns it."""

    @abstractmethod
    async def write(self, work: UnitOfWork, group: list[New]) -> None:
        """Write a group of checked objects, in one transaction."""

    async def create(
        self, principal: Principal, request: Request, key: str | None
    ) -> tuple[Created, bool]:
        """The object created and True, or the one an earlier request with this
        Idempotency-Key created and False (a 409 when it had another body)."""
        found = await self._lookups.submit(_Lookup(principal, request, key))
        if isinstance(found, Exception):
            raise found
        if found.earlier is not None:
            return found.earlier, False
        new = await self.build(found.target, principal, request, key, found.digest)
        try:
            await self._writes.submit(new)
        except IntegrityError:
            # The key was taken since the snapshot: by the same request sent twice at once,
            # which gets the original, or by another body (409).
            if key is None:
                raise
            async with self.db.snapshot() as session:
                earlier = await self.repository(session, principal.tenant).replay(
                    key, found.digest, principal.subject
                )
            if earlier is None:
                raise
            return earlier, False
        return self.created(new), True

    async def _look_up_together(
        self, lookups: list[_Lookup[Request]]
    ) -> list[_Found[Target] | Exception]:
        """Each lookup's target and earlier create, or the error that lookup raised, on one
        snapshot. A database error ends the snapshot, and the next lookup starts another, so
        one request's bad input never fails the others'. The snapshot is closed, not rolled
        back: a rollback expires the rows read for the lookups before, which their creates
        then read with no session (DetachedInstanceError); closed, they keep what was read."""
        targets: dict[Hashable, Target] = {}
        found: list[_Found[Target] | Exception] = []
        while len(found) < len(lookups):
            async with self.db.snapshot() as session:
                for lookup in lookups[len(found) :]:
                    try:
                        found.append(await self._look_up(session, lookup, targets))
                    except DBAPIError as exc:
                        found.append(exc)
                        break
                    except Exception as exc:
                        found.append(exc)
        return found

    async def _look_up(
        self, session: AsyncSession, lookup: _Lookup[Request], targets: dict[Hashable, Target]
    ) -> _Found[Target]:
        principal, request = lookup.principal, lookup.request
        shared = self.target_key(principal, request)
        if (target := targets.get(shared)) is None:
            target = targets[shared] = await self.target(session, principal, request)
        digest = self.fingerprint(target, request)
        earlier = await self.repository(session, principal.tenant).replay(
            lookup.key, digest, principal.subject
        )
        return _Found(target, digest, earlier)
