"""API keys for service accounts: created (the key shown once), listed, revoked."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from idp_common.api_keys import display_prefix, generate_api_key, hash_api_key
from idp_common.audit import record_audit
from idp_common.auth import Admin
from idp_common.db import utcnow
from idp_common.dependencies import SessionDep
from idp_common.pagination import Page, PageParamsDep, page_of
from idp_common.repository import TenantRepository
from operation_svc.api_keys.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut
from operation_svc.models import ApiKey, AuditEntry

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(data: ApiKeyIn, session: SessionDep, principal: Admin) -> ApiKeyCreated:
    """Create a key for a service account of the caller's tenant. The answer holds the key;
    only its hash is stored, so it cannot be shown again."""
    key = generate_api_key()
    record = ApiKeyRepository(session, principal.tenant).add(
        ApiKey(
            tenant=principal.tenant,
            name=data.name,
            prefix=display_prefix(key),
            key_hash=hash_api_key(key),
            roles=sorted(set(data.roles)),
            groups=sorted(set(data.groups)),
            expires_at=data.expires_at,
            created_by=principal.subject,
        )
    )
    await session.flush()
    record_audit(
        session,
        AuditEntry,
        principal,
        "api_key.create",
        record.id,
        changes={"name": record.name, "prefix": record.prefix, "roles": record.roles},
    )
    return ApiKeyCreated(**ApiKeyOut.model_validate(record).model_dump(), key=key)


@router.get("")
async def list_api_keys(
    session: SessionDep, principal: Admin, page: PageParamsDep
) -> Page[ApiKeyOut]:
    """The tenant's keys, revoked ones included (never the key itself)."""
    stmt = ApiKeyRepository(session, principal.tenant).scoped()
    return await page_of(session, stmt, ApiKey, page, ApiKeyOut)


@router.get("/{key_id}")
async def get_api_key(key_id: uuid.UUID, session: SessionDep, principal: Admin) -> ApiKeyOut:
    return ApiKeyOut.model_validate(
        await ApiKeyRepository(session, principal.tenant).get_or_404(key_id)
    )


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: uuid.UUID, session: SessionDep, principal: Admin) -> Response:
    """Revoke a key: every service refuses it from the next request on."""
    record = await ApiKeyRepository(session, principal.tenant).get_or_404(key_id)
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        record_audit(session, AuditEntry, principal, "api_key.revoke", record.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
