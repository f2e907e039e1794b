"""RS256/ES256 tokens verified with keys from a real JWKS endpoint; algorithm confusion,
rotation, and an identity provider unreachable, slow, too large or answering no key set."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from idp_common.auth import TokenVerifier
from idp_common.errors import Unauthorized, Unavailable
from idp_common.settings import AuthSettings
from tests.clock import ManualClock
from tests.harness import AUTH, ServedApp


@dataclass
class IdentityProvider:
    """A JWKS endpoint whose key set the test rotates; it counts fetches."""

    jwks: list[dict[str, Any]] = field(default_factory=list)
    fetches: int = 0
    down: bool = False

    def add(self, kid: str, private_key: Any, algorithm: str) -> None:
        jwk = json.loads(
            jwt.algorithms.get_default_algorithms()[algorithm].to_jwk(private_key.public_key())
        )
        self.jwks.append(jwk | {"kid": kid, "alg": algorithm, "use": "sig"})

    def app(self) -> FastAPI:
        api = FastAPI()

        @api.get("/jwks.json")
        async def jwks() -> dict[str, Any]:
            self.fetches += 1
            if self.down:
                raise RuntimeError("identity provider down")
            return {"keys": self.jwks}

        return api


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "alice",
        "tenant": "acme",
        "roles": ["viewer"],
        "groups": ["db-admins"],
        "iat": now,
        "exp": now + 60,
        "aud": AUTH.jwt_audience,
        "iss": AUTH.jwt_issuer,
    } | overrides


def hs256_by_hand(payload: dict[str, Any], secret: bytes) -> str:
    """PyJWT will not sign with a PEM as HMAC secret; an attacker would."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = ".".join(
        part(json.dumps(data).encode())
        for data in ({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, payload)
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
async def provider() -> AsyncIterator[tuple[IdentityProvider, AuthSettings]]:
    idp = IdentityProvider()
    idp.add("rsa-1", RSA_KEY, "RS256")
    idp.add("ec-1", EC_KEY, "ES256")
    async with ServedApp(idp.app()) as served:
        settings = AUTH.model_copy(
            update={
                "jwt_algorithms": ["RS256", "ES256"],
                "jwks_url": f"{served.url}/jwks.json",
                "jwks_min_refresh_seconds": 60,
            }
        )
        yield idp, settings


async def test_rs256_and_es256_tokens_are_verified_with_the_providers_keys(
    provider: tuple[IdentityProvider, AuthSettings],
) -> None:
    idp, settings = provider
    verifier = TokenVerifier(settings)
    for kid, key, algorithm in (("rsa-1", RSA_KEY, "RS256"), ("ec-1", EC_KEY, "ES256")):
        token = jwt.encode(claims(), key, algorithm=algorithm, headers={"kid": kid})
        principal = await verifier.verify(token)
        assert (principal.subject, principal.tenant) == ("alice", "acme")
        assert principal.groups == frozenset({"db-admins"})
    assert idp.fetches == 1  # cached


async def test_algorithm_confusion_and_foreign_keys_are_refused(
    provider: tuple[IdentityProvider, AuthSettings],
) -> None:
    _idp, settings = provider
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # HS256 "signed" with the public key: the classic RS/HS confusion. Refused whether or not
    # HS256 is accepted (then it is checked against the shared secret, not the public key).
    forged = hs256_by_hand(claims(), public_pem)
    also_hs = settings.model_copy(update={"jwt_algorithms": ["HS256", "RS256"]})
    for accepted in (settings, also_hs):
        with pytest.raises(Unauthorized):
            await TokenVerifier(accepted).verify(forged)
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = [
        jwt.encode(claims(), other_rsa, algorithm="RS256", headers={"kid": "rsa-1"}),
        # ES256 header pointing at the RSA key: the JWK's own alg must match.
        jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "rsa-1"}),
        jwt.encode(
            claims(exp=int(time.time()) - 600), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"}
        ),
        jwt.encode(claims(aud="other"), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"}),
        jwt.encode(claims(), RSA_KEY, algorithm="RS512", headers={"kid": "rsa-1"}),
        # Only the platform's own HS256 identities may be workers.
        jwt.encode(claims(roles=["service"]), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"}),
    ]
    verifier = TokenVerifier(settings)
    for token in bad:
        with pytest.raises(Unauthorized):
            await verifier.verify(token)


async def test_a_rotated_key_is_fetched_once_and_invented_kids_do_not_hammer_the_provider(
    provider: tuple[IdentityProvider, AuthSettings],
) -> None:
    idp, settings = provider
    clock = ManualClock()
    verifier = TokenVerifier(settings.model_copy(update={"jwks_min_refresh_seconds": 0.3}), clock)
    first = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    await verifier.verify(first)
    assert idp.fetches == 1

    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    idp.add("rsa-2", rotated, "RS256")
    clock.advance(0.35)
    token = jwt.encode(claims(), rotated, algorithm="RS256", headers={"kid": "rsa-2"})
    assert (await verifier.verify(token)).subject == "alice"
    assert idp.fetches == 2

    for n in range(20):
        invented = jwt.encode(claims(), rotated, algorithm="RS256", headers={"kid": f"x{n}"})
        with pytest.raises(Unauthorized):
            await verifier.verify(invented)
    assert idp.fetches == 2  # within the minimum refresh interval


async def test_an_unreachable_provider_is_a_503_not_a_401(
    provider: tuple[IdentityProvider, AuthSettings],
) -> None:
    idp, settings = provider
    idp.down = True
    token = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    with pytest.raises(Unavailable):
        await TokenVerifier(settings).verify(token)


def test_asymmetric_algorithms_require_a_jwks_url() -> None:
    with pytest.raises(ValueError, match="AUTH_JWKS_URL"):
        AuthSettings(jwt_algorithms=["RS256"])


def misbehaving_provider(body: Callable[[], AsyncIterator[bytes]]) -> Starlette:
    async def jwks(_request: Request) -> Response:
        return StreamingResponse(body(), media_type="application/json")

    return Starlette(routes=[Route("/jwks.json", jwks)])


def key_set() -> bytes:
    """The key set of the tokens these tests sign."""
    provider = IdentityProvider()
    provider.add("rsa-1", RSA_KEY, "RS256")
    return json.dumps({"keys": provider.jwks}).encode()


async def trickled() -> AsyncIterator[bytes]:
    body = key_set()
    for start in range(0, len(body), len(body) // 10 + 1):
        await asyncio.sleep(0.1)  # each read well within the timeout, the whole not
        yield body[start : start + len(body) // 10 + 1]


async def oversized() -> AsyncIterator[bytes]:
    """The key set, padded past the cap (to 4 MiB)."""
    yield key_set()[:-1] + b', "padding": "'
    for _ in range(64):
        yield b"x" * 65536
    yield b'"}'


async def not_an_object() -> AsyncIterator[bytes]:
    yield b'[{"kty": "RSA"}]'


@pytest.mark.parametrize("body", [trickled, oversized, not_an_object])
async def test_a_provider_answering_slowly_too_much_or_not_a_key_set_is_a_503(
    body: Callable[[], AsyncIterator[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request needing a key waits on the fetch: it is bounded as a whole, in time and
    in bytes. Before, a key set trickled within each read's timeout was taken however long
    it took (holding every request meanwhile), one of any size was read whole, and a list
    was a 500."""
    monkeypatch.setattr("idp_common.jwks.FETCH_TIMEOUT_SECONDS", 0.5)
    async with ServedApp(misbehaving_provider(body)) as served:
        settings = AUTH.model_copy(
            update={"jwt_algorithms": ["RS256"], "jwks_url": f"{served.url}/jwks.json"}
        )
        token = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
        with pytest.raises(Unavailable):
            await TokenVerifier(settings).verify(token)
