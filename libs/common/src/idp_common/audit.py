"""The audit trail: one row per mutation or execution action, in the same transaction.

Every service owns an ``audit_log`` table with these columns; secrets never reach it (values of keys
that look secret are masked before they are written)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Select, String, Uuid
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from idp_common.auth import Principal
from idp_common.db import UTCDateTime, insert_at_commit, new_id, utcnow
from idp_common.redaction import mask_secrets
from idp_common.repository import TenantRepository
from idp_common.request_context import current_trace_id, request_id_var


class AuditRecord:
    """Columns of a service's ``audit_log`` table (declare ``__tablename__ = "audit_log"``)."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60), index=True)
    object_type: Mapped[str] = mapped_column(String(60))
    object_id: Mapped[str] = mapped_column(String(64), index=True)
    request_id: Mapped[str | None] = mapped_column(String(128))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        return (Index(f"ix_{cls.__tablename__}_tenant_created_at", "tenant", "created_at"),)  # type: ignore[attr-defined]


class AuditRepository(TenantRepository[AuditRecord]):
    """A service's audit trail (construct it with the service's ``audit_log`` model)."""

    def listing(
        self,
        *,
        action: str | None,
        object_type: str | None,
        object_id: str | None,
        actor: str | None,
        since: datetime | None,
    ) -> Select[tuple[AuditRecord]]:
        """The entries that pass every filter given."""
        entry: Any = self.model  # the mapped subclass: its columns are SQL expressions
        stmt = self.scoped()
        for column, value in (
            (entry.action, action),
            (entry.object_type, object_type),
            (entry.object_id, object_id),
            (entry.actor, actor),
        ):
            if value:
                stmt = stmt.where(column == value)
        if since:
            stmt = stmt.where(entry.created_at >= since)
        return stmt


def audit_row(
    actor: Principal | str,
    action: str,
    object_id: object,
    *,
    tenant: str | None = None,
    object_type: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit row, taking the request id and trace from the current context. ``action``
    is ``<object type>.<verb>`` (the object type is taken from it unless given); the tenant
    is the actor's unless given (system actions)."""
    if tenant is None:
        assert isinstance(actor, Principal), "system actions must name the tenant"
        tenant = actor.tenant
    return {
        "id": new_id(),
        "tenant": tenant,
        "actor": actor.subject if isinstance(actor, Principal) else actor,
        "action": action,
        "object_type": object_type or action.split(".", 1)[0],
        "object_id": str(object_id),
        "request_id": request_id_var.get(),
        "trace_id": current_trace_id(),
        "changes": mask_secrets(changes or {}),
        "created_at": utcnow(),
    }


def record_audit(
    session: AsyncSession,
    model: type[AuditRecord],
    actor: Principal | str,
    action: str,
    object_id: object,
    **details: Any,
) -> None:
    """Write one audit row (``audit_row`` and its ``details``) when the session commits."""
    add_audit_row(session, model, audit_row(actor, action, object_id, **details))


def add_audit_row(session: AsyncSession, model: type[AuditRecord], row: dict[str, Any]) -> None:
    """Write ``row`` (from ``audit_row``) when the session commits."""
    insert_at_commit(session, model.__table__, row)  # type: ignore[attr-defined]  # a mapped subclass
