"""cryptography, loaded only by a process that verifies asymmetric tokens.

PyJWT imports it for its RSA, EC and EdDSA algorithms whatever the key at hand: 8.5 MB of
a service's resident memory. A process whose ``AUTH_JWT_ALGORITHMS`` names only HS256
signs and verifies with hashlib's HMAC and never calls it, and nothing else a service
loads needs it (redis-py and aioboto3 import it only for features no service uses)."""

from __future__ import annotations

import sys

from idp_common.settings import AuthSettings


def keep_cryptography_out_unless_needed(auth: AuthSettings) -> None:
    """Before anything imports ``jwt``: PyJWT then finds cryptography not installed."""
    if auth.accepts_asymmetric_tokens:
        return
    if "jwt" in sys.modules:
        raise RuntimeError("jwt is imported already, and cryptography with it")
    # A module that is None in sys.modules fails to import, as if it were not installed.
    sys.modules["cryptography"] = None  # type: ignore[assignment]
