"""A minimal OpenID Connect provider for the console's production sign-in: discovery, an
authorization endpoint that signs the person in at once, a token endpoint that insists
on PKCE (S256) before it hands out an access token the services accept, and an end-session
endpoint that records who signed out and sends the browser back."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import jwt
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class FakeIdentityProvider:
    issuer: str
    access_token: str
    subject: str
    challenges: dict[str, str] = field(default_factory=dict)  # code -> its PKCE challenge
    verified: list[str] = field(default_factory=list)  # codes redeemed with their verifier
    signed_out: list[dict[str, str]] = field(default_factory=list)  # end-session requests

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/logout", self.end_session),
            ],
            middleware=[Middleware(CORSMiddleware, allow_origins=["*"], allow_headers=["*"])],
        )

    async def discovery(self, _request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "end_session_endpoint": f"{self.issuer}/logout",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.challenges[code] = query["code_challenge"]
        answer = urlencode({"code": code, "state": query["state"]})
        return RedirectResponse(f"{query['redirect_uri']}?{answer}", status_code=302)

    async def end_session(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.signed_out.append(query)
        return RedirectResponse(query["post_logout_redirect_uri"], status_code=302)

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        code = form["code"]
        digest = hashlib.sha256(form["code_verifier"].encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != self.challenges.pop(code, ""):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        self.verified.append(code)
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": self.subject, "aud": "idp-console"}
        id_token = jwt.encode(claims | {"iat": now, "exp": now + 300}, "id-token-key-" + "x" * 32)
        return JSONResponse(
            {
                "access_token": self.access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": id_token,
            }
        )
