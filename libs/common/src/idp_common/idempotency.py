"""Idempotency-Key support: the same key with the same body returns the original result;
the same key with another body is a conflict. Keys belong to the principal who sent them
(tenant and subject): another principal's key is simply another key."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from idp_common.errors import Conflict, ValidationFailed, field_error
from idp_common.repository import M, TenantRepository

KEY_HEADER = "Idempotency-Key"


def _one_key(
    request: Request,
    key: Annotated[str | None, Header(alias=KEY_HEADER, min_length=1, max_length=200)] = None,
) -> str | None:
    """The request's key. One sent twice is refused: the first was taken, and a retry with
    the other, or with both joined by a comma (as RFC 9110 lets an intermediary send them),
    made another submission."""
    if len(request.headers.getlist(KEY_HEADER)) > 1:
        raise ValidationFailed(
            f"Send one {KEY_HEADER}.",
            errors=[field_error(KEY_HEADER, "is sent more than once", "repeated")],
        )
    return key


IdempotencyKey = Annotated[str | None, Depends(_one_key)]
REPLAYED_HEADER = "Idempotent-Replayed"


def request_fingerprint(body: Any) -> str:
    """A stable digest of a JSON-able request body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotentRepository(TenantRepository[M]):
    """A repository of a model with ``idempotency_key``, ``request_hash`` and
    ``submitted_by`` columns."""

    async def replay(self, key: str | None, fingerprint: str, submitted_by: str) -> M | None:
        """The object an earlier request of ``submitted_by`` with this key created, or None;
        a 409 when that request had another body."""
        if key is None:
            return None
        stmt = self.scoped().where(
            self.model.idempotency_key == key,  # type: ignore[attr-defined]
            self.model.submitted_by == submitted_by,  # type: ignore[attr-defined]
        )
        earlier = (await self.session.scalars(stmt)).one_or_none()
        if earlier is not None and earlier.request_hash != fingerprint:  # type: ignore[attr-defined]
            raise Conflict("This Idempotency-Key was used with a different request body.")
        return earlier
