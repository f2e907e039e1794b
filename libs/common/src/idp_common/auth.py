"""Authentication and role checks; every endpoint goes through these dependencies.

Two credentials: ``Authorization: Bearer <JWT>`` (the accepted algorithms are pinned by
settings: HS256 with the shared secret, RS256/ES256 with the identity provider's JWKS;
``exp``/``iat``/``aud``/``iss``/``sub`` and the ``tenant`` claim required) and
``X-API-Key`` for service accounts (see ``api_keys``). Roles are hierarchical:
admin ⊇ operator ⊇ viewer. ``service`` is the role of the platform's own processes (the
worker claiming executions) and grants nothing else; ``platform-operator`` grants the
message queues of every tenant and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal, Protocol

import jwt
from cachetools import TLRUCache
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from idp_common.clock import SYSTEM_CLOCK, Clock
from idp_common.duplicate_keys import duplicate_key_path
from idp_common.errors import Forbidden, Unauthorized
from idp_common.jwks import JwksCache
from idp_common.request_context import tenant_var
from idp_common.settings import AuthSettings

Role = Literal["viewer", "operator", "admin", "service", "platform-operator"]
HUMAN_ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
# Platform-wide, across tenants, and only for the message queues (inspect and replay the
# dead-letter queues): not a tenant admin, and no tenant's API key can carry it.
PLATFORM_OPERATOR: Role = "platform-operator"
ALL_ROLES: frozenset[str] = frozenset((*HUMAN_ROLES, "service", PLATFORM_OPERATOR))
MAX_GROUPS = 100
# The longest tenant, subject and group the platform stores (its tenant and actor columns):
# a longer one would fail where it is written, after the request was taken.
MAX_TENANT_LENGTH = 64
MAX_NAME_LENGTH = 200
_IMPLIED: dict[str, frozenset[str]] = {
    "admin": frozenset({"admin", "operator", "viewer"}),
    "operator": frozenset({"operator", "viewer"}),
    "viewer": frozenset({"viewer"}),
    "service": frozenset({"service"}),
    PLATFORM_OPERATOR: frozenset({PLATFORM_OPERATOR}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    tenant: str
    roles: frozenset[str]
    groups: frozenset[str] = frozenset()
    # When a token's principal stops being one (its exp, with the leeway), for what outlives
    # the request that showed it (a log stream); None for an API key, looked up instead.
    expires_at: float | None = field(default=None, compare=False)

    def has_role(self, role: str) -> bool:
        return any(role in _IMPLIED[held] for held in self.roles)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        """Build a principal from token claims (or a verified API key's record)."""
        tenant, roles, groups = (
            claims.get("tenant"),
            claims.get("roles", []),
            claims.get("groups", []),
        )
        if not isinstance(tenant, str) or not tenant:
            raise Unauthorized("Invalid credentials: the tenant claim is missing")
        for name, value, longest in (
            ("tenant", tenant, MAX_TENANT_LENGTH),
            ("sub", claims["sub"], MAX_NAME_LENGTH),
        ):
            if not _is_name(value):
                raise Unauthorized(f"Invalid credentials: the {name} claim must be printable text")
            if len(value) > longest:
                raise Unauthorized(
                    f"Invalid credentials: the {name} claim is longer than {longest} characters"
                )
        if not isinstance(roles, list) or not all(
            isinstance(role, str) and role in ALL_ROLES for role in roles
        ):
            raise Unauthorized("Invalid credentials: unknown roles")
        if (
            not isinstance(groups, list)
            or len(groups) > MAX_GROUPS
            or not all(
                isinstance(group, str) and group.isprintable() and len(group) <= MAX_NAME_LENGTH
                for group in groups
            )
        ):
            raise Unauthorized("Invalid credentials: groups must be a list of names")
        return cls(str(claims["sub"]), tenant, frozenset(roles), frozenset(groups))


def _is_name(value: Any) -> bool:
    """Whether a claim naming a tenant or a subject is text every store and log line can
    hold as it is: not empty, printable (no NUL, newline or other control character, no
    lone surrogate), with no space at either end (" acme" would be another tenant)."""
    return isinstance(value, str) and value.isprintable() and value == value.strip() != ""


# A token verified once is answered from memory until it expires, but for no longer than
# this, so a key the identity provider withdraws stops being honoured soon after.
VERIFIED_TOKEN_SECONDS = 60
VERIFIED_TOKENS = 4096


class TokenVerifier:
    """Verifies a JWT with the key its pinned algorithm calls for: the shared secret for
    HS256, the identity provider's key named by ``kid`` for RS256/ES256. A token whose
    ``alg`` is not accepted, or differs from the JWK's own, never reaches a key.

    Verification costs more than the rest of a simple request (PyJWT checks every base64
    character in Python, twice), and clients send the same token request after request:
    verified tokens are kept, keyed by the whole token, for ``VERIFIED_TOKEN_SECONDS`` at
    most. A refused token is never kept."""

    def __init__(self, settings: AuthSettings, clock: Clock = SYSTEM_CLOCK) -> None:
        self._settings = settings
        self._secret = settings.signing_secret()
        self._clock = clock
        self._jwks = (
            JwksCache(
                settings.jwks_url,
                cache_seconds=settings.jwks_cache_seconds,
                min_refresh_seconds=settings.jwks_min_refresh_seconds,
                clock=clock,
            )
            if settings.jwks_url
            else None
        )
        self._verified: TLRUCache[str, tuple[Principal, float]] = TLRUCache(
            maxsize=VERIFIED_TOKENS, ttu=lambda _token, kept, _now: kept[1], timer=clock.time
        )

    async def verify(self, token: str) -> Principal:
        if (kept := self._verified.get(token)) is not None:
            return kept[0]
        principal, expires_at = await self._verify(token)
        until = min(expires_at, self._clock.time() + VERIFIED_TOKEN_SECONDS)
        self._verified[token] = (principal, until)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        """The token's principal and when the token stops being valid (exp + leeway)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"Invalid token: {exc}") from exc
        _refuse_duplicate_names(token)
        algorithm = header.get("alg")
        if algorithm not in self._settings.jwt_algorithms:
            raise Unauthorized(f"Invalid token: algorithm {algorithm!r} is not accepted")
        key: Any = self._secret
        if algorithm != "HS256":
            assert self._jwks is not None  # settings require a JWKS URL for RS256/ES256
            jwk = await self._jwks.key(header.get("kid"))
            if jwk.algorithm_name != algorithm:
                raise Unauthorized("Invalid token: the algorithm does not match the key")
            key = jwk.key
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                options={
                    "require": ["exp", "iat", "aud", "iss", "sub"],
                    # PyJWT reads the system's clock: the times are checked below instead.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"Invalid token: {exc}") from exc
        _check_times(claims, self._clock.time(), self._settings.jwt_leeway_seconds)
        principal = Principal.from_claims(claims)
        if algorithm != "HS256" and "service" in principal.roles:
            # The platform's own processes sign with the shared secret; an identity
            # provider's token never makes its bearer a worker.
            raise Unauthorized("Invalid token: the service role is not granted by this issuer")
        expires_at = float(claims["exp"]) + self._settings.jwt_leeway_seconds
        return replace(principal, expires_at=expires_at), expires_at


def _refuse_duplicate_names(token: str) -> None:
    """A header or payload naming a member twice (``"tenant"`` twice) means one thing to
    whatever read it first (a gateway reading the first) and another here (the last), as
    for events (``duplicate_keys``)."""
    for part, segment in zip(("header", "claim"), token.split(".")[:2], strict=False):
        try:
            text = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except (binascii.Error, ValueError):
            return  # no JSON at all: PyJWT refuses it in its own words
        if (path := duplicate_key_path(text)) is not None:
            named = ".".join(map(str, path))
            raise Unauthorized(f"Invalid token: it names the {part} {named!r} twice")


def _check_times(claims: dict[str, Any], now: float, leeway: float) -> None:
    """A token's times against the verifier's clock, with PyJWT's rules (an expiry is
    exclusive; the leeway applies on both sides). Each is a JSON number (RFC 7519's
    NumericDate): ``"1796000000"`` or ``true`` is no time."""
    named = {name: claims[name] for name in ("exp", "iat", "nbf") if name in claims}
    not_numbers = Unauthorized("Invalid token: exp, iat and nbf must be numbers")
    if any(
        isinstance(value, bool) or not isinstance(value, int | float) for value in named.values()
    ):
        raise not_numbers
    try:
        times = {name: int(value) for name, value in named.items()}
    except (ValueError, OverflowError):  # NaN, Infinity (Python's JSON reads them)
        raise not_numbers from None
    if times["exp"] <= now - leeway:
        raise Unauthorized("Invalid token: Signature has expired")
    for name in ("iat", "nbf"):
        if times.get(name, now) > now + leeway:
            raise Unauthorized(f"Invalid token: The token is not yet valid ({name})")


class ApiKeyVerifier(Protocol):
    async def verify(self, key: str) -> Principal: ...


def mint_token(
    settings: AuthSettings,
    *,
    subject: str,
    tenant: str,
    roles: Iterable[Role],
    groups: Iterable[str] = (),
    ttl_seconds: int = 3600,
) -> str:
    """Sign a token with the configured secret (development tooling and service identity)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "tenant": tenant,
        "roles": sorted(set(roles)),
        "groups": sorted(set(groups)),
        "iat": now,
        "exp": now + ttl_seconds,
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
    }
    return jwt.encode(claims, settings.signing_secret(), algorithm="HS256")


API_KEY_PREFIX = "idp_"
API_KEY_SCHEME = "ApiKey"
# What generate_api_key makes: the prefix, then url-safe base64. Anything else names no key
# (and a service that asks the owning one could not even send it: a header is ASCII).
_API_KEY_SHAPE = re.compile(re.escape(API_KEY_PREFIX) + r"[A-Za-z0-9_-]{1,200}")
_bearer = HTTPBearer(auto_error=False)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    # ``bearer`` and ``api_key`` document the schemes in OpenAPI; ``authorization_of`` reads
    # the headers whole, since Authorization may also carry ``ApiKey idp_…``.
    del bearer, api_key
    principal = await principal_of(
        authorization_of(request),
        request.app.state.token_verifier,
        request.app.state.api_key_verifier,
    )
    tenant_var.set(principal.tenant)
    return principal


def authorization_of(request: Request) -> str | None:
    """The request's credential as an ``Authorization`` value (an ``X-API-Key`` header
    becomes ``ApiKey idp_…``). A header sent twice is refused: a gateway in front reading
    the last one would have let in another principal than the first one names here."""
    authorization, api_key = (
        _single_header(request, name) for name in ("Authorization", "X-API-Key")
    )
    if api_key is None:
        return authorization
    if authorization is not None:
        raise Unauthorized("Send either a bearer token or an API key, not both")
    return f"{API_KEY_SCHEME} {api_key}"


def _single_header(request: Request, name: str) -> str | None:
    values = request.headers.getlist(name)
    if len(values) > 1:
        raise Unauthorized(f"The request sends {name} {len(values)} times: send one credential")
    return values[0] if values else None


async def principal_of(
    authorization: str | None, tokens: TokenVerifier, api_keys: ApiKeyVerifier | None
) -> Principal:
    """Who an ``Authorization`` value (``Bearer <JWT>`` or ``ApiKey idp_…``) names, checked
    as every request's: the same value in an event's ``authorization`` attribute gets the
    same answer."""
    if not authorization:
        raise Unauthorized()
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() == "bearer":
        return await tokens.verify(credential)
    if scheme.lower() != API_KEY_SCHEME.lower():
        raise Unauthorized(f"The credential must be 'Bearer <JWT>' or '{API_KEY_SCHEME} idp_…'")
    if api_keys is None:
        raise Unauthorized(
            "This service is not configured to accept API keys (AUTH_API_KEY_SERVICE_URL)"
        )
    if _API_KEY_SHAPE.fullmatch(credential) is None:
        raise Unauthorized("Invalid API key")
    return await api_keys.verify(credential)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def caller_credentials(request: Request) -> dict[str, str]:
    """The caller's credential headers, to ask another service on their behalf."""
    return {
        name: request.headers[name]
        for name in ("authorization", "x-api-key")
        if name in request.headers
    }


def check_role(principal: Principal, role: Role) -> None:
    if not principal.has_role(role):
        raise Forbidden(f"This action needs the {role} role.")


def require_role(role: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    async def dependency(principal: CurrentPrincipal) -> Principal:
        check_role(principal, role)
        return principal

    return dependency


Viewer = Annotated[Principal, Depends(require_role("viewer"))]
Operator = Annotated[Principal, Depends(require_role("operator"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
ServiceCaller = Annotated[Principal, Depends(require_role("service"))]


async def _queue_operator(principal: CurrentPrincipal) -> Principal:
    if not (principal.has_role("admin") or principal.has_role(PLATFORM_OPERATOR)):
        raise Forbidden(f"This action needs the admin or the {PLATFORM_OPERATOR} role.")
    return principal


# A tenant's admin (their tenant's messages) or a platform operator (every message).
QueueOperator = Annotated[Principal, Depends(_queue_operator)]


def may_run(
    principal: Principal, allowed_roles: Collection[str], allowed_groups: Collection[str]
) -> bool:
    """Per-object restriction on top of the operator role: when an object names allowed
    roles or groups, the caller must hold one of those roles or belong to one of those groups."""
    if not allowed_roles and not allowed_groups:
        return True
    return any(principal.has_role(role) for role in allowed_roles) or bool(
        principal.groups & set(allowed_groups)
    )


def check_run_access(
    principal: Principal,
    allowed_roles: Collection[str],
    allowed_groups: Collection[str],
    what: str,
) -> None:
    if not may_run(principal, allowed_roles, allowed_groups):
        raise Forbidden(
            f"{what} may only be run by roles {sorted(allowed_roles)} "
            f"or groups {sorted(allowed_groups)}."
        )
