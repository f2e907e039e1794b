"""What stands in for a secret wherever records are shown (audit rows, dead letters, argv):
kept apart from the audit log's model so that code without a database can use it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MASK = "***"
SECRET_KEY_HINTS = ("secret", "password", "token", "api_key", "apikey", "credential", "private")


def mask_secrets(changes: Mapping[str, Any]) -> dict[str, Any]:
    masked: dict[str, Any] = {}
    for key, value in changes.items():
        if any(hint in key.lower() for hint in SECRET_KEY_HINTS):
            masked[key] = MASK
        elif isinstance(value, Mapping):
            masked[key] = mask_secrets(value)
        else:
            masked[key] = value
    return masked
