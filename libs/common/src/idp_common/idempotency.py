"""Idempotency-Key support: the same key with the same body returns the original result;
the same key with another body is a conflict. Keys belong to the principal who sent them
(tenant and subject): another principal's key is simply another key."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import Header

from idp_common.errors import Conflict
from idp_common.repository import M, TenantRepository

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
]
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
