"""Authentication and role checks; every endpoint goes through these dependencies.

Bearer JWTs only for now (HS256, pinned; ``exp``/``iat``/``aud``/``iss``/``sub`` and the
``tenant`` claim required). Roles are hierarchical: admin ⊇ operator ⊇ viewer. ``service``
is the role of the platform's own processes (the worker claiming executions) and grants
nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from idp_common.errors import Forbidden, Unauthorized
from idp_common.request_context import tenant_var
from idp_common.settings import AuthSettings

Role = Literal["viewer", "operator", "admin", "service"]
HUMAN_ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
ALL_ROLES: frozenset[str] = frozenset((*HUMAN_ROLES, "service"))
JWT_ALGORITHMS = ["HS256"]
_IMPLIED: dict[str, frozenset[str]] = {
    "admin": frozenset({"admin", "operator", "viewer"}),
    "operator": frozenset({"operator", "viewer"}),
    "viewer": frozenset({"viewer"}),
    "service": frozenset({"service"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    tenant: str
    roles: frozenset[str]

    def has_role(self, role: Role) -> bool:
        return any(role in _IMPLIED[held] for held in self.roles)


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._secret = settings.signing_secret()

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=JWT_ALGORITHMS,
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                leeway=self._settings.jwt_leeway_seconds,
                options={"require": ["exp", "iat", "aud", "iss", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"Invalid token: {exc}") from exc
        tenant, roles = claims.get("tenant"), claims.get("roles", [])
        if not isinstance(tenant, str) or not tenant:
            raise Unauthorized("Invalid token: the tenant claim is missing")
        if not isinstance(roles, list) or not set(roles) <= ALL_ROLES:
            raise Unauthorized("Invalid token: unknown roles")
        return Principal(subject=str(claims["sub"]), tenant=tenant, roles=frozenset(roles))


def mint_token(
    settings: AuthSettings,
    *,
    subject: str,
    tenant: str,
    roles: Iterable[Role],
    ttl_seconds: int = 3600,
) -> str:
    """Sign a token with the configured secret (development tooling and service identity)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "tenant": tenant,
        "roles": sorted(set(roles)),
        "iat": now,
        "exp": now + ttl_seconds,
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
    }
    return jwt.encode(claims, settings.signing_secret(), algorithm=JWT_ALGORITHMS[0])


_bearer = HTTPBearer(auto_error=False)


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized()
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = verifier.verify(credentials.credentials)
    tenant_var.set(principal.tenant)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_role(role: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has_role(role):
            raise Forbidden(f"This action needs the {role} role.")
        return principal

    return dependency


Viewer = Annotated[Principal, Depends(require_role("viewer"))]
Operator = Annotated[Principal, Depends(require_role("operator"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
ServiceCaller = Annotated[Principal, Depends(require_role("service"))]
