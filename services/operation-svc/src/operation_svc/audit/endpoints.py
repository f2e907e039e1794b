from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from idp_common.auth import Admin
from idp_common.dependencies import SessionDep
from idp_common.pagination import Page, PageParamsDep, paginate
from idp_common.repository import TenantRepository
from idp_common.schemas import ResponseModel
from operation_svc.models import AuditEntry

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditOut(ResponseModel):
    id: uuid.UUID
    actor: str
    action: str
    object_type: str
    object_id: str
    request_id: str | None
    trace_id: str | None
    changes: dict[str, Any]
    created_at: datetime


class AuditRepository(TenantRepository[AuditEntry]):
    model = AuditEntry


@router.get("")
async def list_audit(
    session: SessionDep,
    principal: Admin,
    page: PageParamsDep,
    action: Annotated[str | None, Query(max_length=60)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
) -> Page[AuditOut]:
    """Who did what, newest first (secrets masked)."""
    stmt = AuditRepository(session, principal.tenant).scoped()
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if since:
        stmt = stmt.where(AuditEntry.created_at >= since)
    rows, cursor = await paginate(session, stmt, AuditEntry, page)
    return Page(items=[AuditOut.model_validate(row) for row in rows], next_cursor=cursor)
