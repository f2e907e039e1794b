"""The console server's settings (``CONSOLE_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from idp_common.settings import DEV_JWT_SECRET, AuthSettings, Environment

# The app as `make install` builds it, beside this package in the workspace.
BUILT_APP = Path(__file__).resolve().parents[2] / "web" / "dist"


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore")

    environment: Environment = Field(
        default="development",
        description="Deployment stage; the development sign-in exists only in development.",
    )
    host: str = Field(default="127.0.0.1", description="Bind address of the HTTP server.")
    port: int = Field(default=8000, description="Port of the HTTP server.")
    log_level: str = Field(default="INFO", description="Root log level.")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        description="Largest request body passed on (each is read whole before it is sent).",
    )
    static_dir: Path | None = Field(
        default=None,
        description="The built single-page app; by default services/console/web/dist, where "
        "`make install` builds it.",
    )
    panel_api_url: str = Field(
        default="http://127.0.0.1:8001", description="panel-svc, for panels and submissions."
    )
    operation_api_url: str = Field(
        default="http://127.0.0.1:8002",
        description="operation-svc, for templates, executions, queues and the rest it owns.",
    )
    datasource_api_url: str = Field(
        default="http://127.0.0.1:8003", description="datasource-svc, for data sources."
    )
    oidc_authority: str | None = Field(
        default=None, description="OpenID Connect issuer the browser signs in with (production)."
    )
    oidc_client_id: str | None = Field(default=None, description="The console's OIDC client.")
    oidc_scope: str = Field(default="openid profile email", description="Scopes asked for.")
    jaeger_url: str | None = Field(
        default=None, description="Jaeger's UI; a run links to `<url>/trace/<trace id>`."
    )
    dev_tenant: str = Field(default="demo", description="Tenant of the development sign-in.")
    dev_subject: str = Field(default="dev-admin", description="Who the development sign-in is.")
    dev_token_ttl_seconds: int = Field(
        default=12 * 3600, gt=0, description="Lifetime of a development sign-in's token."
    )
    dev_platform: bool = Field(
        default=False,
        description="This development console fronts a development platform: its sign-in may "
        "mint tokens with an AUTH_JWT_SECRET of your own, which the services trusting it accept "
        "(without it, a development console given one refuses to start).",
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @model_validator(mode="after")
    def _oidc_outside_development(self) -> Self:
        if self.environment != "development" and not (self.oidc_authority and self.oidc_client_id):
            raise ValueError(
                "CONSOLE_OIDC_AUTHORITY and CONSOLE_OIDC_CLIENT_ID are required outside "
                "development (the development sign-in exists only there)"
            )
        return self

    @model_validator(mode="after")
    def _dev_sign_in_with_the_published_secret(self) -> Self:
        own_secret = self.auth.signing_secret() != DEV_JWT_SECRET
        if self.development and own_secret and not self.dev_platform:
            raise ValueError(
                "CONSOLE_ENVIRONMENT is development (its default), where anyone reaching the "
                "console is handed an admin token, and AUTH_JWT_SECRET is set: services that "
                "trust that secret would accept those tokens. Set CONSOLE_ENVIRONMENT=production "
                "(with CONSOLE_OIDC_AUTHORITY and CONSOLE_OIDC_CLIENT_ID), or "
                "CONSOLE_DEV_PLATFORM=true if this is a development platform"
            )
        return self

    @property
    def app_dir(self) -> Path:
        return self.static_dir or BUILT_APP

    @property
    def development(self) -> bool:
        return self.environment == "development"

    def upstreams(self) -> dict[str, str]:
        return {
            "panel": self.panel_api_url,
            "operation": self.operation_api_url,
            "datasource": self.datasource_api_url,
        }
