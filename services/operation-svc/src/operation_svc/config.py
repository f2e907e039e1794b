from functools import cached_property
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from idp_common.executables import ExecutableAllowlist, configured_allowlist
from idp_common.secret_values import SecretStoreSettings
from idp_common.settings import (
    DEFAULT_ALLOWED_EXECUTABLES,
    DEFAULT_EXECUTABLE_PATH,
    ListSetting,
    SealingServiceSettings,
)

NAME = "operation-svc"


class WebhookSettings(BaseSettings):
    """Outbound webhooks (``operation_svc.webhooks``)."""

    model_config = SettingsConfigDict(env_prefix="OPERATION_WEBHOOK_", extra="ignore")

    allowed_hosts: ListSetting[str] = Field(
        default=[],
        description="Hosts a webhook may target although they are not public (an allowlist; "
        "every other target must resolve to public addresses only, at save and at each call).",
    )
    retry_base_seconds: float = Field(
        default=30,
        gt=0,
        description="Delay before the first retry; each further one doubles it (with jitter).",
    )
    max_attempts: int = Field(
        default=10,
        ge=1,
        le=30,
        description="Attempts of one delivery before it is given up (10 from 30 s: ~4 hours).",
    )
    disable_after_seconds: float = Field(
        default=3 * 24 * 3600,
        gt=0,
        description="A subscription whose every attempt has failed for this long is disabled.",
    )
    poll_seconds: float = Field(default=1, gt=0, description="How often due deliveries are sent.")
    request_timeout_seconds: float = Field(
        default=10, gt=0, le=60, description="Timeout of one delivery's POST."
    )
    batch_size: int = Field(
        default=20, ge=1, le=200, description="Deliveries one replica sends at once."
    )
    retention_days: float = Field(
        default=30,
        gt=0,
        description="Ended deliveries (delivered or given up) are deleted, with their attempts, "
        "this long after their last attempt.",
    )


class OperationSettings(SealingServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPERATION_", extra="ignore")

    port: int = Field(default=8002, description="Port of the HTTP server.")
    database_url: str = Field(
        default="sqlite+aiosqlite:///data/operation.db",
        description="SQLAlchemy async URL: postgresql+asyncpg://… or sqlite+aiosqlite:///…",
    )
    allowed_executables: ListSetting[str] = Field(
        default=list(DEFAULT_ALLOWED_EXECUTABLES),
        description="Programs a command template may start (argv[0], and what an allowlisted "
        "launcher starts): names found on OPERATION_EXECUTABLE_PATH, or absolute paths. Keep "
        "it equal to WORKER_ALLOWED_EXECUTABLES.",
    )
    executable_path: str = Field(
        default=DEFAULT_EXECUTABLE_PATH,
        description="The workers' PATH (keep it equal to WORKER_PATH): a program written as a "
        "path must be an allowlisted name in one of these directories, or an allowlisted path.",
    )
    outbound_allowed_hosts: ListSetting[str] = Field(
        default=[],
        description="Hosts an HTTP template may name although they are not public (keep it "
        "equal to WORKER_OUTBOUND_ALLOWED_HOSTS, which the workers enforce at every call).",
    )
    secret_store: SecretStoreSettings = Field(default_factory=SecretStoreSettings)
    max_timeout_seconds: float = Field(
        default=3600, gt=0, description="Longest timeout a template may ask for."
    )
    lost_after_seconds: float = Field(
        default=30, gt=0, description="A running execution without a heartbeat this long is lost."
    )
    sweep_interval_seconds: float = Field(default=5, gt=0, description="Lost-execution sweep.")
    approval_sweep_interval_seconds: float = Field(
        default=30, gt=0, description="How often runs nobody approved in time are expired."
    )
    redispatch_after_seconds: float = Field(
        default=60,
        gt=0,
        description="A job no worker claimed for this long is sent again (the queue lost it).",
    )
    queue_poll_seconds: float = Field(
        default=15, gt=0, description="How often one replica reads the queues' depths (metrics)."
    )
    dlq_replay_per_second: float = Field(
        default=50, gt=0, le=1000, description="Dead letters sent back to their queue per second."
    )
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    scheduler_poll_seconds: float = Field(
        default=5,
        gt=0,
        description="How often each replica looks for schedules whose slot has come (a slot "
        "fires up to this late).",
    )
    schedule_min_interval_seconds: int = Field(
        default=60,
        ge=1,
        description="The least time between two fires of a schedule: its interval_seconds, or "
        "its cron's closest two times of day.",
    )
    schedule_misfire_grace_seconds: float = Field(
        default=60,
        gt=0,
        description="A slot found this much past its time was missed (the platform was down): "
        "the schedule's misfire policy decides it, not its overlap policy.",
    )
    panel_api_url: str = Field(
        default="http://127.0.0.1:8001",
        description="panel-svc base URL (a panel schedule's panel is checked when it is saved, "
        "and submitted through panel-svc's own intake at each slot).",
    )
    log_streams_per_caller: int = Field(
        default=20,
        ge=1,
        description="Live log streams one caller (a person or an API key) may hold open at "
        "once on each replica; one more is answered 429.",
    )
    seed_demo: bool = Field(default=False, description="Create the demo template at startup.")

    @model_validator(mode="after")
    def _comparable_allowlist(self) -> Self:
        self.executables.check_configuration()
        return self

    @cached_property
    def executables(self) -> ExecutableAllowlist:
        return configured_allowlist(self, "executable_path")
