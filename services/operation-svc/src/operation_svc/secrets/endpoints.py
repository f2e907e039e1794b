"""Secret references (where a secret lives, never its value) and their mappings to
templates as environment variables. Values are resolved only inside the worker."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from idp_common.auth import Admin
from idp_common.dependencies import SessionDep
from idp_common.pagination import Page, PageParamsDep
from idp_common.schemas import Reference
from operation_svc.config import OperationSettings
from operation_svc.secrets import service
from operation_svc.secrets.schemas import MappingIn, MappingOut, SecretIn, SecretOut

router = APIRouter(prefix="/api/v1", tags=["secrets"])


@router.post("/secrets", status_code=status.HTTP_201_CREATED)
async def create_secret(
    data: SecretIn, request: Request, session: SessionDep, principal: Admin
) -> SecretOut:
    """Register where a secret lives (provider and key), inside this tenant's confinement
    (see SECRETS_ENV_PREFIX, SECRETS_FILE_ROOT, SECRETS_AWS_PREFIX)."""
    settings: OperationSettings = request.app.state.settings
    secret = await service.create_secret(session, principal, data, settings.secret_store)
    return SecretOut.model_validate(secret)


@router.get("/secrets")
async def list_secrets(
    session: SessionDep, principal: Admin, page: PageParamsDep
) -> Page[SecretOut]:
    """The tenant's secret references."""
    secrets, cursor = await service.list_secrets(session, principal, page)
    return Page(items=[SecretOut.model_validate(s) for s in secrets], next_cursor=cursor)


@router.get("/secrets/{secret_id}")
async def get_secret(secret_id: Reference, session: SessionDep, principal: Admin) -> SecretOut:
    """One secret reference."""
    return SecretOut.model_validate(await service.get_secret(session, principal, secret_id))


@router.delete("/secrets/{secret_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_secret(secret_id: Reference, session: SessionDep, principal: Admin) -> Response:
    """Remove a secret reference and its mappings."""
    await service.delete_secret(session, principal, secret_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/templates/{template_id}/secrets", status_code=status.HTTP_201_CREATED)
async def map_secret(
    template_id: Reference, data: MappingIn, session: SessionDep, principal: Admin
) -> MappingOut:
    """Give a template's child process a secret as an environment variable."""
    mapping = await service.map_secret(session, principal, template_id, data)
    return MappingOut.model_validate(mapping)


@router.get("/templates/{template_id}/secrets")
async def list_mappings(
    template_id: Reference, session: SessionDep, principal: Admin
) -> list[MappingOut]:
    """The secrets a template's child process receives."""
    mappings = await service.list_mappings(session, principal, template_id)
    return [MappingOut.model_validate(m) for m in mappings]


@router.delete("/templates/{template_id}/secrets/{mapping_id}", status_code=204)
async def unmap_secret(
    template_id: Reference, mapping_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    """Stop giving a template this secret."""
    await service.unmap_secret(session, principal, template_id, mapping_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
