"""``GET /api/v1/auth/whoami``: the caller's identity as this service sees it. Frontends use it
to adapt their menus; services use operation-svc's to verify API keys."""

from __future__ import annotations

from fastapi import APIRouter

from idp_common.auth import CurrentPrincipal
from idp_common.schemas import ResponseModel

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class WhoAmI(ResponseModel):
    sub: str
    tenant: str
    roles: list[str]
    groups: list[str]


@router.get("/whoami")
async def whoami(principal: CurrentPrincipal) -> WhoAmI:
    return WhoAmI(
        sub=principal.subject,
        tenant=principal.tenant,
        roles=sorted(principal.roles),
        groups=sorted(principal.groups),
    )
