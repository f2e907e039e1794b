"""API keys of a tenant's service accounts: created, listed, revoked, each write audited."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from idp_common.api_keys import (
    api_key_id,
    api_key_subject,
    display_prefix,
    generate_api_key,
    hash_api_key,
)
from idp_common.audit import record_audit
from idp_common.auth import Principal
from idp_common.db import utcnow
from idp_common.errors import ValidationFailed, field_error
from idp_common.pagination import PageParams
from operation_svc.api_keys.repository import ApiKeyRepository, ApiKeysByHash
from operation_svc.api_keys.schemas import ApiKeyIn
from operation_svc.models import ApiKey, AuditEntry


async def create_api_key(
    session: AsyncSession, principal: Principal, data: ApiKeyIn
) -> tuple[ApiKey, str]:
    """The stored record and the key itself, which only the caller will ever see. A key
    holds only groups its creator belongs to: a group restricts admins too."""
    if beyond := sorted(set(data.groups) - principal.groups):
        message = f"a key may hold only groups you belong to, not {', '.join(beyond)}"
        raise ValidationFailed(
            "Invalid input: groups", errors=[field_error("groups", message, "not_a_member")]
        )
    if (creator_id := api_key_id(principal.subject)) is not None:
        creator = await ApiKeyRepository(session, principal.tenant).get_or_404(creator_id)
        limit = creator.expires_at
        if limit is not None and (data.expires_at is None or data.expires_at > limit):
            message = (
                "a key made with an API key expires no later than that key: at most "
                f"{limit.isoformat()}"
            )
            raise ValidationFailed(
                "Invalid input: expires_at",
                errors=[field_error("expires_at", message, "beyond_creator_expiry")],
            )
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
        changes={
            "name": record.name,
            "prefix": record.prefix,
            "roles": record.roles,
            "groups": record.groups,
        },
    )
    return record, key


async def list_api_keys(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[ApiKey], str | None]:
    return await ApiKeyRepository(session, principal.tenant).page(page)


async def get_api_key(session: AsyncSession, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    return await ApiKeyRepository(session, principal.tenant).get_or_404(key_id)


async def revoke_api_key(session: AsyncSession, principal: Principal, key_id: uuid.UUID) -> None:
    """Revoking a revoked key changes nothing (and writes no audit row)."""
    record = await get_api_key(session, principal, key_id)
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        record_audit(session, AuditEntry, principal, "api_key.revoke", record.id)


async def withdrawn_key(
    session: AsyncSession, tenant: str, subject: str, now: datetime
) -> str | None:
    """Why the API key whose principal ``subject`` is may act no more at ``now`` (see
    ``withdrawal``), or None: it may, or ``subject`` is not a key's."""
    key_id = api_key_id(subject)
    if key_id is None:
        return None
    connection = await session.connection()
    key = await ApiKeysByHash(connection).by_id(tenant, key_id)
    if key is None:
        return f"its API key {key_id} does not exist"
    return await withdrawal(connection, key, now)


async def withdrawal(connection: AsyncConnection, key: Row[Any], now: datetime) -> str | None:
    """Why ``key`` may act no more at ``now``: it, or the key it was made with (and so on
    up), was revoked or has expired. A key acts for its creator, so it never outlives a
    key that made it, whatever its own ``expires_at``. None when it may act."""
    whose = f"its API key {key.prefix}…"
    while True:
        if key.revoked_at is not None:
            return f"{whose} was revoked"
        if key.expires_at is not None and key.expires_at <= now:
            return f"{whose} has expired"
        if (creator_id := api_key_id(key.created_by)) is None:
            return None
        creator = await ApiKeysByHash(connection).by_id(key.tenant, creator_id)
        if creator is None:
            return f"the API key {creator_id} it was made with does not exist"
        key, whose = creator, f"the API key {creator.prefix}… it was made with"


async def keys_acting_for(session: AsyncSession, principal: Principal) -> frozenset[str]:
    """The subjects of the API keys ``principal`` created, and of those these created, on:
    what a key does, its creator does through it."""
    keys = ApiKeyRepository(session, principal.tenant)
    creators, found = {principal.subject}, set[str]()
    while new := {api_key_subject(key) for key in await keys.created_by(creators)} - found:
        found |= new
        creators = new
    return frozenset(found)
