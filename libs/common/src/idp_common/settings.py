"""Settings base: each service has its own env prefix; shared subsystems have theirs.

``SQS_*``, ``AUTH_*``, ``RATELIMIT_*`` and the standard ``OTEL_*`` variables are shared by
every process; ``SEALING_*`` by panel-svc and operation-svc; ``PANEL_*``, ``OPERATION_*``,
``DATASOURCE_*`` and ``WORKER_*`` belong to one service.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Self, TypeVar

import limits
from nacl.public import PublicKey
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from idp_common.sealing import decode_key, load_public_key

T = TypeVar("T")


def _listed(value: Any) -> Any:
    """A list setting given as text: JSON (``["a", "b"]``) or comma-separated (``a,b``)."""
    if not isinstance(value, str):
        return value
    if value.strip().startswith("["):
        return json.loads(value)
    return [item.strip() for item in value.split(",") if item.strip()]


# A list setting that takes ``a,b`` as well as ``["a", "b"]`` from the environment.
ListSetting = Annotated[list[T], NoDecode, BeforeValidator(_listed)]
Environment = Literal["development", "test", "production"]
JwtAlgorithm = Literal["HS256", "RS256", "ES256"]
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset({"RS256", "ES256"})
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "dev", "development", ""})
# What operation-svc accepts as a program and the worker agrees to start must agree by
# default. No launcher (env, nice, xargs, …): see idp_common.launchers.
DEFAULT_ALLOWED_EXECUTABLES = ("echo", "true", "false", "sleep", "date", "printf", "printenv")
# The fixed PATH on which the worker finds allowlisted names (and its commands' PATH).
DEFAULT_EXECUTABLE_PATH = "/usr/local/bin:/usr/bin:/bin"
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-do-not-use-in-production"  # noqa: S105


def variable_name(settings: type[BaseSettings], location: tuple[int | str, ...]) -> str:
    """The environment variable behind a settings field (nested settings have prefixes of
    their own: ``sqs.endpoint_url`` is ``SQS_ENDPOINT_URL``)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    nested = _nested_settings(settings).get(str(location[0])) if len(location) > 1 else None
    if nested is not None:
        return variable_name(nested, location[1:])
    return f"{prefix}{location[0]}".upper()


def _nested_settings(settings: type[BaseSettings]) -> dict[str, type[BaseSettings]]:
    return {
        name: field.annotation
        for name, field in settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings)
    }


def configuration_errors(settings: type[BaseSettings], error: ValidationError) -> list[str]:
    """One line per bad setting, naming its variable (no traceback). A nested settings class
    (``SQS_*``, ``AUTH_*``, …) reports its own errors, under its own name."""
    failed = next(
        (
            nested
            for nested in _nested_settings(settings).values()
            if nested.__name__ == error.title
        ),
        settings,
    )
    lines = []
    for item in error.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        location = tuple(item["loc"])
        # A whole-model check names its variables in its message.
        lines.append(f"{variable_name(failed, location)}: {message}" if location else message)
    return lines


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
    reply_queue_prefix: str = Field(
        default="replies-",
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description="Reply queues other services may name in events: {prefix}{tenant} or "
        "{prefix}{tenant}__{name} (the tenant's characters other than letters, digits and - "
        "written as _XX).",
    )


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 secret (development tokens, service identities); required outside "
        "development.",
    )
    jwt_algorithms: ListSetting[JwtAlgorithm] = Field(
        default=["HS256"],
        min_length=1,
        description="Accepted `alg` values; RS256/ES256 keys come from AUTH_JWKS_URL.",
    )
    jwks_url: str | None = Field(default=None, description="The identity provider's JWKS URL.")
    jwks_cache_seconds: float = Field(default=300, gt=0, description="JWKS cache lifetime.")
    jwks_min_refresh_seconds: float = Field(
        default=10,
        ge=0,
        description="Least time between two fetches caused by tokens naming an unknown `kid`.",
    )
    jwt_audience: str = Field(default="idp", description="Required `aud` claim.")
    jwt_issuer: str = Field(default="idp-dev", description="Required `iss` claim.")
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300, description="Clock-skew leeway.")
    api_key_service_url: str | None = Field(
        default=None,
        description="Base URL of operation-svc, which owns API keys; other services ask it "
        "to verify each X-API-Key (no caching, so a revoked key is refused at once).",
    )

    @model_validator(mode="after")
    def _asymmetric_algorithms_need_jwks(self) -> Self:
        if self.accepts_asymmetric_tokens and not self.jwks_url:
            raise ValueError("AUTH_JWKS_URL is required when RS256 or ES256 is accepted")
        return self

    @property
    def accepts_asymmetric_tokens(self) -> bool:
        return bool(set(self.jwt_algorithms) & ASYMMETRIC_ALGORITHMS)

    def signing_secret(self) -> str:
        return self.jwt_secret.get_secret_value() if self.jwt_secret else DEV_JWT_SECRET


class RateLimitSettings(BaseSettings):
    """Per principal and route class, in the `limits` library's notation ("60/minute")."""

    model_config = SettingsConfigDict(env_prefix="RATELIMIT_", extra="ignore")

    redis_url: str | None = Field(
        default=None, description="Shared Redis for the counters; in-process when unset."
    )
    submissions: str = Field(default="60/minute", description="Panel submissions.")
    executions: str = Field(default="60/minute", description="Execution create/cancel/retry.")
    resolve: str = Field(default="600/minute", description="Data source option lookups.")

    @field_validator("submissions", "executions", "resolve")
    @classmethod
    def _parseable(cls, value: str) -> str:
        limits.parse(value)
        return value


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
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)

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


# The development pair, published here like DEV_JWT_SECRET, so it protects nothing: refused
# outside development, where the workers' own pair is configured.
DEV_SEALING_PUBLIC_KEY = "SUbJNdbyvR49RkGsbBYvWmbL0VF+9I32OS2kzScj+ik="
DEV_SEALING_PRIVATE_KEY = "HyR2w+YyNWs2LUlwMhAkuiEv54OLjy2JurvWai6fPDk="


def check_sealing_key(
    environment: Environment, configured: str | None, development_key: str, variable: str
) -> None:
    """A configured key must be a base64 X25519 key; outside development one is required
    and the development key is refused."""
    if configured is not None:
        try:
            decode_key(configured)
        except ValueError as exc:
            raise ValueError(f"{variable} is not a base64 X25519 key: {exc}") from None
    if environment != "development" and configured in (None, development_key):
        raise ValueError(f"{variable} must be set to this deployment's own key")


class SealingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEALING_", extra="ignore")

    public_key: str | None = Field(
        default=None,
        description="Base64 X25519 public key of the executor workers: secret values are "
        "sealed to it on arrival. Required outside development.",
    )

    def key(self) -> PublicKey:
        return load_public_key(self.public_key or DEV_SEALING_PUBLIC_KEY)


class SealingServiceSettings(DatabaseServiceSettings):
    """A service that receives secret values and seals them for the executor workers."""

    sealing: SealingSettings = Field(default_factory=SealingSettings)

    @model_validator(mode="after")
    def _require_sealing_key_outside_development(self) -> Self:
        check_sealing_key(
            self.environment,
            self.sealing.public_key,
            DEV_SEALING_PUBLIC_KEY,
            "SEALING_PUBLIC_KEY",
        )
        return self
