"""Standard Webhooks signatures, through the ``standardwebhooks`` package: the platform makes
the secrets (``whsec_`` + base64 of 32 random bytes) and signs ``id.timestamp.body``, once
per secret a delivery is signed with (the header is a space-separated list, which is how the
standard lets a receiver switch secrets without refusing a delivery)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105  (the prefix, not a secret)
# How long a secret replaced by a rotation still signs beside the new one: the time its
# receiver has to start verifying with the new one.
ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(
    secrets: Sequence[str], message_id: str, timestamp: datetime, body: str
) -> dict[str, str]:
    """The headers of one attempt, signed with each of ``secrets`` (the newest first): a
    receiver checks them with ``Webhook(secret).verify``, with either secret."""
    signatures = (Webhook(secret).sign(message_id, timestamp, body) for secret in secrets)
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
