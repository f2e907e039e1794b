"""API keys for service accounts.

A key is ``idp_`` followed by 256 random bits (url-safe base64): the prefix makes a leaked key
recognisable to secret scanners. Only its SHA-256 is stored; a key has that much entropy, so an
unsalted fast hash is safe and lets the hash be the lookup index.

operation-svc owns the keys. Every other service verifies a key by asking operation-svc who
it belongs to, on every request and with no cache: a revoked key is refused at once, which a
signed-token exchange or a cache could only promise after its lifetime. The price is one
local HTTP call per API-key request (JWTs stay verified locally).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

import httpx

from idp_common.auth import API_KEY_PREFIX, Principal
from idp_common.errors import Unauthorized, Unavailable
from idp_common.tls import client_tls

DISPLAY_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8
# The subject of a key's principal: a service account, never a person.
API_KEY_SUBJECT_PREFIX = "api-key:"
WHOAMI_PATH = "/api/v1/auth/whoami"


def generate_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_subject(key_id: object) -> str:
    return f"{API_KEY_SUBJECT_PREFIX}{key_id}"


def is_api_key(principal: Principal) -> bool:
    return principal.subject.startswith(API_KEY_SUBJECT_PREFIX)


def api_key_id(subject: str) -> uuid.UUID | None:
    """The id of the key whose principal ``subject`` is, or None for anyone else."""
    if not subject.startswith(API_KEY_SUBJECT_PREFIX):
        return None
    try:
        return uuid.UUID(subject.removeprefix(API_KEY_SUBJECT_PREFIX))
    except ValueError:
        return None


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]


class RemoteApiKeyVerifier:
    """Asks the owning service's whoami endpoint, presenting the key itself."""

    def __init__(self, base_url: str, *, timeout_seconds: float = 5.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout_seconds, verify=client_tls()
        )

    async def verify(self, key: str) -> Principal:
        try:
            response = await self._client.get(WHOAMI_PATH, headers={"X-API-Key": key})
        except httpx.HTTPError as exc:
            raise Unavailable(f"API keys cannot be verified right now: {exc}") from exc
        if response.status_code == 401:
            raise Unauthorized("Invalid or revoked API key")
        if response.status_code != 200:
            raise Unavailable(f"API key verification answered {response.status_code}")
        return Principal.from_claims(response.json())

    async def aclose(self) -> None:
        await self._client.aclose()
