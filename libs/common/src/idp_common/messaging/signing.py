"""The platform's services sign what they send one another (HMAC-SHA256 of the body, in the
``idp.signature`` message attribute), and refuse what is not signed on the queues only they
write: a queue is open to whatever holds the broker's credentials (a command the worker runs
can reach a local broker), and a forged ``panel.submission.created`` would run any template
as anyone, with any roles. Other services' events, on the inbound queues, carry a credential
instead (``idp_common.inbound``).

The key is derived from ``AUTH_JWT_SECRET``, which every service and worker holds already
(it signs their own identities), under a label of its own: a message's signature is never a
token's."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from idp_common.settings import AuthSettings

SIGNATURE = "idp.signature"
_LABEL = b"idp: messages between the platform's services"


class MessageSigner:
    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()

    @classmethod
    def of(cls, auth: AuthSettings) -> MessageSigner:
        return cls(auth.signing_secret())

    def signature(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    def attribute(self, body: str) -> dict[str, str]:
        """The message attribute that signs ``body``."""
        return {"DataType": "String", "StringValue": self.signature(body)}

    def signed(
        self, body: str, message_attributes: Mapping[str, Any], name: str = SIGNATURE
    ) -> bool:
        """Whether the attribute ``name`` is the platform's signature of ``body``."""
        given = (message_attributes.get(name) or {}).get("StringValue")
        return isinstance(given, str) and hmac.compare_digest(given, self.signature(body))
