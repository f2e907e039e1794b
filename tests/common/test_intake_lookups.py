"""IdempotentIntake's lookups: creates that arrive together share one snapshot and read a
target they share once; a lookup that fails, even with a database error, fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PrivateKey
from sqlalchemy import text
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
