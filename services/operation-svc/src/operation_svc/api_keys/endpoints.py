"""API keys for service accounts: created (the key shown once), listed, revoked."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from idp_common.auth import Admin
from idp_common.dependencies import SessionDep
from idp_common.pagination import Page, PageParamsDep
from operation_svc.api_keys import service
from operation_svc.api_keys.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(data: ApiKeyIn, session: SessionDep, principal: Admin) -> ApiKeyCreated:
    """Create a key for a service account of the caller's tenant. The answer holds the key;
    only its hash is stored, so it cannot be shown again."""
    record, key = await service.create_api_key(session, principal, data)
    return ApiKeyCreated(**ApiKeyOut.model_validate(record).model_dump(), key=key)


@router.get("")
async def list_api_keys(
    session: SessionDep, principal: Admin, page: PageParamsDep
) -> Page[ApiKeyOut]:
    """The tenant's keys, revoked ones included (never the key itself)."""
    keys, cursor = await service.list_api_keys(session, principal, page)
    return Page(items=[ApiKeyOut.model_validate(k) for k in keys], next_cursor=cursor)


@router.get("/{key_id}")
async def get_api_key(key_id: uuid.UUID, session: SessionDep, principal: Admin) -> ApiKeyOut:
    return ApiKeyOut.model_validate(await service.get_api_key(session, principal, key_id))


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: uuid.UUID, session: SessionDep, principal: Admin) -> Response:
    """Revoke a key: every service refuses it from the next request on."""
    await service.revoke_api_key(session, principal, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
