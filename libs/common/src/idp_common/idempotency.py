"""Idempotency-Key support: the same key with the same body returns the original result;
the same key with another body is a conflict."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import Header

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
REPLAYED_HEADER = "Idempotent-Replayed"


def request_fingerprint(body: Any) -> str:
    """A stable digest of a JSON-able request body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
