"""``GET /api/v1/audit``: a service's audit trail for its tenant's admins, newest first."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from idp_common.audit import AuditRecord, AuditRepository
from idp_common.auth import Admin
from idp_common.dependencies import SessionDep
from idp_common.pagination import Page, PageParamsDep
from idp_common.schemas import ResponseModel, UtcTimestamp


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


def audit_router(model: type[AuditRecord]) -> APIRouter:
    router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

    @router.get("")
    async def list_audit(
        session: SessionDep,
        principal: Admin,
        page: PageParamsDep,
        action: Annotated[str | None, Query(max_length=60)] = None,
        object_type: Annotated[str | None, Query(max_length=60)] = None,
        object_id: Annotated[str | None, Query(max_length=64)] = None,
        actor: Annotated[str | None, Query(max_length=200)] = None,
        since: UtcTimestamp | None = None,
    ) -> Page[AuditOut]:
        """Who did what (secrets masked); filters combine."""
        entries = AuditRepository(session, principal.tenant, model)
        rows, cursor = await entries.page(
            page,
            entries.listing(
                action=action,
                object_type=object_type,
                object_id=object_id,
                actor=actor,
                since=since,
            ),
        )
        return Page(items=[AuditOut.model_validate(row) for row in rows], next_cursor=cursor)

    return router
