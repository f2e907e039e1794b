"""Settings base: each service has its own env prefix; shared subsystems have theirs.

``SQS_*``, ``AUTH_*`` and the standard ``OTEL_*`` variables are shared by every process;
``PANEL_*``, ``OPERATION_*``, ``DATASOURCE_*`` and ``WORKER_*`` belong to one service.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "dev", "development", ""})
# What operation-svc accepts as argv[0] and the worker agrees to start must agree by default.
DEFAULT_ALLOWED_EXECUTABLES = ("echo", "true", "false", "sleep", "env", "date", "printf")
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-do-not-use-in-production"  # noqa: S105


class SQSSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SQS_", extra="ignore")

    endpoint_url: str | None = Field(
        default=None, description="SQS endpoint (ElasticMQ or local server); None means AWS."
    )
    region: str = Field(default="us-east-1", description="AWS region of the queues.")
    access_key_id: str | None = Field(default=None, description="Static key (local brokers).")
    secret_access_key: SecretStr | None = Field(default=None, description="Static secret key.")
    create_queues: bool = Field(
        default=False, description="Create the topology at startup (dev/tests only)."
    )
    queue_prefix: str = Field(
        default="", description="Prefix of every physical queue name (isolates environments)."
    )
    wait_time_seconds: int = Field(default=20, ge=0, le=20, description="Long-poll duration.")
    retry_base_seconds: float = Field(
        default=1.0, ge=0, description="First redelivery delay of a failed message (doubles)."
    )
    retry_max_seconds: int = Field(default=60, ge=0, le=43200, description="Redelivery cap.")


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 signing secret; required outside development."
    )
    jwt_audience: str = Field(default="idp", description="Required `aud` claim.")
    jwt_issuer: str = Field(default="idp-dev", description="Required `iss` claim.")
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300, description="Clock-skew leeway.")

    def signing_secret(self) -> str:
        return self.jwt_secret.get_secret_value() if self.jwt_secret else DEV_JWT_SECRET


class ServiceSettings(BaseSettings):
    """Fields every service has; subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore")

    environment: Environment = Field(default="development", description="Deployment stage.")
    host: str = Field(default="127.0.0.1", description="Bind address of the HTTP server.")
    port: int = Field(default=8000, description="Port of the HTTP server.")
    log_level: str = Field(default="INFO", description="Root log level.")
    max_body_bytes: int = Field(default=1024 * 1024, description="Largest accepted request body.")
    sqs: SQSSettings = Field(default_factory=SQSSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @model_validator(mode="after")
    def _require_secrets_outside_development(self) -> Self:
        if self.environment != "development":
            secret = self.auth.jwt_secret.get_secret_value() if self.auth.jwt_secret else ""
            if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 32:
                raise ValueError("AUTH_JWT_SECRET must be set to a real secret (>= 32 chars)")
        return self


class DatabaseServiceSettings(ServiceSettings):
    database_url: str = Field(
        default="sqlite+aiosqlite:///data/service.db",
        description="SQLAlchemy async URL: postgresql+asyncpg://… or sqlite+aiosqlite:///…",
    )
    outbox_poll_seconds: float = Field(
        default=1.0, gt=0, description="Relay safety poll; commits wake it immediately."
    )
