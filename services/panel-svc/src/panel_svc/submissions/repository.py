"""Queries of submissions and their attempts: a tenant's own, and the cross-tenant writes
that mirror the executions' statuses."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, Select, String, Table, Uuid, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import insert_ignoring_conflicts
from idp_common.idempotency import IdempotentRepository
from idp_common.repository import CrossTenantRepository, as_id
from panel_svc.models import Panel, Submission, SubmissionAttempt


class SubmissionRepository(IdempotentRepository[Submission]):
    model = Submission

    def listing(
        self, *, panel: str | None, submitted_by: str | None, status: str | None
    ) -> Select[tuple[Submission]]:
        """The submissions that pass the filters given; ``panel`` is the panel's id (a
        retired panel's too) or its slug."""
        stmt = self.scoped()
        if panel is not None:
            named = Panel.slug == panel
            panel_id = as_id(panel)
            panels = select(Panel.id).where(
                Panel.tenant == self.tenant,
                named if panel_id is None else named | (Panel.id == panel_id),
            )
            stmt = stmt.where(Submission.panel_id.in_(panels))
        if submitted_by is not None:
            stmt = stmt.where(Submission.submitted_by == submitted_by)
        if status is not None:
            stmt = stmt.where(Submission.status == status)
        return stmt


# Built once: a group's updates run as one executemany per table, in the order they
# arrived. A newer attempt (a retry's execution) takes the submission over whatever the
# older one said; within one attempt, a status never moves back and a finished one stays
# finished: an update to "pending" replaces only "pending", any other "pending" or "running".
_SUBMISSIONS = cast(Table, Submission.__table__)
_ATTEMPTS = cast(Table, SubmissionAttempt.__table__)


def _moves_forward(status: ColumnElement[str]) -> ColumnElement[bool]:
    return (status == "pending") | (
        (bindparam("to_status", type_=String) != "pending") & (status == "running")
    )


_MIRROR = (
    update(_SUBMISSIONS)
    .where(
        _SUBMISSIONS.c.id == bindparam("of_submission"),
        _SUBMISSIONS.c.tenant == bindparam("of_tenant"),
        (_SUBMISSIONS.c.attempt < bindparam("to_attempt"))
        | (
            (_SUBMISSIONS.c.attempt == bindparam("to_attempt"))
            & _moves_forward(_SUBMISSIONS.c.status)
        ),
    )
    .values(
        status=bindparam("to_status"),
        attempt=bindparam("to_attempt"),
        exit_code=bindparam("to_exit_code"),
        output=bindparam("to_output"),
        error=bindparam("to_error"),
        execution_id=func.coalesce(
            bindparam("to_execution_id", type_=Uuid), _SUBMISSIONS.c.execution_id
        ),
    )
)
_ATTEMPT = (
    update(_ATTEMPTS)
    .where(
        _ATTEMPTS.c.submission_id == bindparam("of_submission"),
        _ATTEMPTS.c.attempt == bindparam("to_attempt"),
        _moves_forward(_ATTEMPTS.c.status),
    )
    .values(
        status=bindparam("to_status"),
        exit_code=bindparam("to_exit_code"),
        error=bindparam("to_error"),
        updated_at=bindparam("at"),
        execution_id=func.coalesce(
            bindparam("to_execution_id", type_=Uuid), _ATTEMPTS.c.execution_id
        ),
    )
)
_OF_TENANTS = select(Submission.id, Submission.tenant).where(
    Submission.id.in_(bindparam("ids", expanding=True))
)


class SubmissionUpdates(CrossTenantRepository[AsyncSession]):
    """A group of execution updates spans tenants: each update names its tenant, and the
    submission it mirrors on must belong to that tenant.

    An update is a dict of ``of_submission``, ``of_tenant``, ``to_status``, ``to_attempt``,
    ``to_exit_code``, ``to_output``, ``to_error``, ``to_execution_id`` and ``at``."""

    async def tenants_of(self, submission_ids: list[Any]) -> dict[Any, str]:
        """The tenant of each of these submissions that exists."""
        found = await self.connection.execute(_OF_TENANTS, {"ids": submission_ids})
        return dict(found.tuples().all())

    async def mirror(self, updates: list[dict[str, Any]]) -> int:
        """Record each update's attempt (a new one, or moved forward) and mirror it on its
        submission unless the submission is further; the submissions changed, or -1 when
        the driver does not count them."""
        await insert_ignoring_conflicts(
            self.connection,
            _ATTEMPTS,
            [
                {
                    "submission_id": row["of_submission"],
                    "attempt": row["to_attempt"],
                    "execution_id": row["to_execution_id"],
                    "status": row["to_status"],
                    "exit_code": row["to_exit_code"],
                    "error": row["to_error"],
                    "updated_at": row["at"],
                }
                for row in updates
            ],
        )
        await self.connection.execute(_ATTEMPT, updates)
        result = await self.connection.execute(_MIRROR, updates)
        return int(result.rowcount)  # type: ignore[attr-defined]
