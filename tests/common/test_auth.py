"""Tokens are verified strictly: pinned algorithm, required claims, known roles."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from idp_common.auth import Principal, TokenVerifier, mint_token
from idp_common.errors import Unauthorized
from tests.clock import ManualClock
from tests.harness import AUTH

SECRET = AUTH.signing_secret()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "alice",
        "tenant": "acme",
        "roles": ["operator"],
        "iat": now,
        "exp": now + 60,
        "aud": AUTH.jwt_audience,
        "iss": AUTH.jwt_issuer,
    }
    return {key: value for key, value in (base | overrides).items() if value is not None}


def unsigned(payload: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(unsigned(claims()), id="alg-none"),
        pytest.param(jwt.encode(claims(), "another-secret-" + "x" * 64), id="wrong-key"),
        pytest.param(jwt.encode(claims(exp=int(time.time()) - 3600), SECRET), id="expired"),
        pytest.param(jwt.encode(claims(exp=None), SECRET), id="no-exp"),
        pytest.param(jwt.encode(claims(aud="someone-else"), SECRET), id="wrong-aud"),
        pytest.param(jwt.encode(claims(iss="evil"), SECRET), id="wrong-iss"),
        pytest.param(jwt.encode(claims(tenant=None), SECRET), id="no-tenant"),
        pytest.param(jwt.encode(claims(roles=["root"]), SECRET), id="unknown-role"),
        pytest.param(jwt.encode(claims(), SECRET, algorithm="HS512"), id="other-algorithm"),
        pytest.param("not.a.token", id="malformed"),
        # Signed by the issuer, yet no identity the platform can hold (an identity provider
        # may map claims from attributes its users edit).
        pytest.param(jwt.encode(claims(roles=[{"admin": 1}]), SECRET), id="role-an-object"),
        pytest.param(jwt.encode(claims(roles=[["admin"]]), SECRET), id="role-a-list"),
        pytest.param(jwt.encode(claims(roles="admin"), SECRET), id="roles-a-string"),
        pytest.param(jwt.encode(claims(sub=""), SECRET), id="empty-sub"),
        pytest.param(jwt.encode(claims(sub="alice\x00"), SECRET), id="nul-in-sub"),
        pytest.param(jwt.encode(claims(tenant="ac\x00me"), SECRET), id="nul-in-tenant"),
        pytest.param(jwt.encode(claims(tenant="acme\n"), SECRET), id="newline-in-tenant"),
        pytest.param(jwt.encode(claims(tenant=" acme"), SECRET), id="space-around-tenant"),
        pytest.param(jwt.encode(claims(tenant="ac\u202eme"), SECRET), id="bidi-in-tenant"),
        pytest.param(jwt.encode(claims(groups=["ops\x00"]), SECRET), id="nul-in-group"),
    ],
)
async def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthorized):
        await TokenVerifier(AUTH).verify(token)


async def test_a_good_token_gives_the_principal_and_roles_are_hierarchical() -> None:
    token = mint_token(AUTH, subject="alice", tenant="acme", roles=["operator"])
    principal = await TokenVerifier(AUTH).verify(token)
    assert principal == Principal("alice", "acme", frozenset({"operator"}))
    assert principal.has_role("viewer")
    assert principal.has_role("operator")
    assert not principal.has_role("admin")
    assert not principal.has_role("service")


async def test_a_verified_token_is_kept_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    strict = AUTH.model_copy(update={"jwt_leeway_seconds": 0})
    verifier = TokenVerifier(strict, clock)
    token = jwt.encode(claims(exp=int(clock.time()) + 2), SECRET)
    first = await verifier.verify(token)
    decoded: list[str] = []
    monkeypatch.setattr(jwt, "decode", lambda *args, **kwargs: decoded.append("again"))
    assert await verifier.verify(token) == first
    assert decoded == []  # answered from memory, not verified again
    monkeypatch.undo()
    clock.advance(2.1)
    with pytest.raises(Unauthorized, match="expired"):
        await verifier.verify(token)


@pytest.mark.parametrize(
    ("times", "refused"),
    [
        pytest.param({"exp": 100}, "expired", id="exp now: an expiry is exclusive"),
        pytest.param({"exp": 99}, "expired", id="exp past"),
        pytest.param({"exp": 101}, None, id="exp a second ahead"),
        pytest.param({"iat": 101}, "not yet valid \\(iat\\)", id="issued in the future"),
        pytest.param({"nbf": 101}, "not yet valid \\(nbf\\)", id="not before: later"),
        pytest.param({"nbf": 100}, None, id="not before: now"),
        pytest.param({"exp": 101.5}, None, id="exp a decimal number"),
        # RFC 7519's NumericDate is a JSON number: PyJWT read digits in text as one.
        pytest.param({"exp": "101"}, "numbers", id="exp as digits"),
        pytest.param({"iat": "100"}, "numbers", id="iat as digits"),
        pytest.param({"nbf": " 99"}, "numbers", id="nbf as digits"),
        pytest.param({"exp": True}, "numbers", id="exp a boolean"),
        pytest.param({"exp": "soon"}, "numbers", id="exp not a number"),
        pytest.param({"nbf": [1]}, "numbers", id="nbf a list"),
        pytest.param({"exp": 1e400}, "numbers", id="exp infinite"),
    ],
)
async def test_token_times_are_read_on_the_verifiers_clock(
    times: dict[str, Any], refused: str | None
) -> None:
    clock = ManualClock(start=100)
    verifier = TokenVerifier(AUTH.model_copy(update={"jwt_leeway_seconds": 0}), clock)
    token = jwt.encode(claims(iat=100, exp=160) | times, SECRET)
    if refused is None:
        assert (await verifier.verify(token)).subject == "alice"
    else:
        with pytest.raises(Unauthorized, match=refused):
            await verifier.verify(token)


async def test_the_leeway_applies_on_both_sides() -> None:
    clock = ManualClock(start=100)
    verifier = TokenVerifier(AUTH.model_copy(update={"jwt_leeway_seconds": 10}), clock)
    for times in ({"exp": 91}, {"iat": 110}, {"nbf": 110}):
        token = jwt.encode(claims(iat=100, exp=160) | times, SECRET)
        assert (await verifier.verify(token)).subject == "alice"
    for times in ({"exp": 90}, {"iat": 111}, {"nbf": 111}):
        token = jwt.encode(claims(iat=100, exp=160) | times, SECRET)
        with pytest.raises(Unauthorized):
            await verifier.verify(token)


async def test_a_refused_token_is_refused_every_time() -> None:
    verifier = TokenVerifier(AUTH)
    forged = jwt.encode(claims(), "another-secret-" + "x" * 64)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await verifier.verify(forged)


def signed(header: str, payload: str) -> str:
    """A token signed with the platform's secret whose JSON is written as given."""

    def part(text: str) -> bytes:
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=")

    message = part(header) + b"." + part(payload)
    signature = hmac.new(SECRET.encode(), message, hashlib.sha256).digest()
    return (message + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


HS256 = '{"alg": "HS256", "typ": "JWT"}'


@pytest.mark.parametrize(
    ("header", "payload", "named"),
    [
        (HS256, '{"tenant": "other", CLAIMS}', "'tenant'"),
        (HS256, '{CLAIMS, "tenant": "other"}', "'tenant'"),
        (HS256, '{CLAIMS, "sub": "bob"}', "'sub'"),
        (HS256, '{CLAIMS, "roles": ["admin"]}', "'roles'"),
        (HS256, '{CLAIMS, "exp": 9999999999}', "'exp'"),
        (HS256, '{CLAIMS, "x": {"a": 1, "a": 2}}', "'x.a'"),
        (HS256, '{CLAIMS, "\\u0074enant": "other"}', "'tenant'"),
        ('{"alg": "HS256", "alg": "HS256"}', "{CLAIMS}", "header 'alg'"),
    ],
)
async def test_a_token_naming_a_member_twice_is_refused(
    header: str, payload: str, named: str
) -> None:
    """PyJWT keeps the last of a claim named twice; a gateway reading the first would route
    the request to another tenant than the services act in."""
    members = json.dumps(claims())[1:-1]
    token = signed(header, payload.replace("CLAIMS", members))
    with pytest.raises(Unauthorized, match=f"names the .*{named} twice"):
        await TokenVerifier(AUTH).verify(token)
    assert (await TokenVerifier(AUTH).verify(signed(HS256, "{" + members + "}"))).tenant == "acme"
