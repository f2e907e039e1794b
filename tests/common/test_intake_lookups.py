"""IdempotentIntake's lookups: creates that arrive together share one snapshot and read a
target they share once; a lookup that fails, even with a database error, fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PrivateKey
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import record_audit
from idp_common.auth import Principal
from idp_common.intake import IdempotentIntake
from idp_common.unit_of_work import UnitOfWork
from operation_svc.executions.repository import ExecutionRepository
from operation_svc.models import AuditEntry
from tests.harness import migrated_database


class Named(IdempotentIntake[str, str, str, str]):
    """Creates named by a string: "missing" names nothing, "broken" breaks its query."""

    repository = ExecutionRepository

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reads: list[str] = []

    async def target(self, session: AsyncSession, principal: Principal, request: str) -> str:
        self.reads.append(request)
        if request == "missing":
            raise LookupError("no such thing")
        table = "no_such_table" if request == "broken" else "audit_log"
        await session.execute(text(f"SELECT count(*) FROM {table}"))
        return request.upper()

    def target_key(self, principal: Principal, request: str) -> Hashable:
        return request

    def fingerprint(self, target: str, request: str) -> str:
        return request

    async def build(
        self, target: str, principal: Principal, request: str, key: str | None, digest: str
    ) -> str:
        return target

    def created(self, new: str) -> str:
        return new

    async def write(self, work: UnitOfWork, group: list[str]) -> None:
        for new in group:
            record_audit(work.session, AuditEntry, "tester", "thing.create", new, tenant="t")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_lookups_sent_together_share_a_snapshot_and_fail_alone(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path, "operation") as db:
        intake = Named(db, PrivateKey.generate().public_key)
        principal = Principal(subject="alice", tenant="t", roles=frozenset({"operator"}))
        # The broken one comes first: on PostgreSQL its error aborts the snapshot's
        # transaction, and the replay lookups after it must still run.
        requests = ["broken", "a", "b", "a", "missing", "b", "a"]
        outcomes = await asyncio.gather(
            *(intake.create(principal, name, f"key-{i}") for i, name in enumerate(requests)),
            return_exceptions=True,
        )

        broken, *others = outcomes
        assert isinstance(broken, DBAPIError)
        assert [type(o) if isinstance(o, Exception) else o for o in others] == [
            ("A", True),
            ("B", True),
            ("A", True),
            LookupError,
            ("B", True),
            ("A", True),
        ]
        assert sorted(intake.reads) == ["a", "b", "broken", "missing"]  # each read once


class Rows(Named):
    """Creates of rows read on the snapshot (as templates and panels are): "broken" breaks
    its query."""

    async def target(self, session: AsyncSession, principal: Principal, request: str) -> Any:
        if request == "broken":
            await session.execute(text("SELECT count(*) FROM no_such_table"))
        return await session.scalar(select(AuditEntry).where(AuditEntry.action == request))

    async def build(
        self, target: Any, principal: Principal, request: str, key: str | None, digest: str
    ) -> str:
        return str(target.action)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_row_found_before_another_lookups_database_error_is_still_read(
    backend: str, tmp_path: Path
) -> None:
    """The snapshot's rollback after the error expired the rows it had read for the lookups
    before it, whose creates then read them with no session: a DetachedInstanceError, a 500
    for a request that had done nothing wrong (seen when PostgreSQL backends were
    terminated under load)."""
    async with migrated_database(backend, tmp_path, "operation") as db:
        async with db.unit_of_work() as work:
            for action in ("a", "b"):
                record_audit(work.session, AuditEntry, "tester", action, action, tenant="t")
        intake = Rows(db, PrivateKey.generate().public_key)
        principal = Principal(subject="alice", tenant="t", roles=frozenset({"operator"}))
        requests = ["a", "broken", "b", "a"]
        outcomes = await asyncio.gather(
            *(intake.create(principal, name, f"key-{i}") for i, name in enumerate(requests)),
            return_exceptions=True,
        )
    first, broken, *others = outcomes
    assert isinstance(broken, DBAPIError)
    assert [first, *others] == [("a", True), ("b", True), ("a", True)]
