"""The development sign-in: a token for the development user, no identity provider needed.
Mounted only when CONSOLE_ENVIRONMENT is development (see ``app.create_app``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from console.config import ConsoleSettings
from idp_common.auth import mint_token

router = APIRouter(prefix="/console", tags=["console"])


class DevSignIn(BaseModel):
    role: Annotated[Literal["viewer", "operator", "admin"], Field()] = "admin"


class DevToken(BaseModel):
    access_token: str
    expires_in: int
    subject: str
    tenant: str


@router.post("/dev-sign-in")
async def dev_sign_in(body: DevSignIn, request: Request, response: Response) -> DevToken:
    """A token for the development user in the development tenant, with the role asked for
    (a credential: kept by no cache)."""
    response.headers["Cache-Control"] = "no-store"
    settings: ConsoleSettings = request.app.state.settings
    token = mint_token(
        settings.auth,
        subject=settings.dev_subject,
        tenant=settings.dev_tenant,
        roles=[body.role],
        ttl_seconds=settings.dev_token_ttl_seconds,
    )
    return DevToken(
        access_token=token,
        expires_in=settings.dev_token_ttl_seconds,
        subject=settings.dev_subject,
        tenant=settings.dev_tenant,
    )
