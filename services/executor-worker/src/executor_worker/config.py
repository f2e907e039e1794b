from functools import cached_property
from typing import Self

from nacl.public import PrivateKey
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from idp_common.executables import ExecutableAllowlist, configured_allowlist
from idp_common.sealing import load_private_key
from idp_common.secret_values import SecretStoreSettings
from idp_common.settings import (
    DEFAULT_ALLOWED_EXECUTABLES,
    DEFAULT_EXECUTABLE_PATH,
    DEV_SEALING_PRIVATE_KEY,
    ListSetting,
    ServiceSettings,
    check_sealing_key,
)

NAME = "executor-worker"


class WorkerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WORKER_", extra="ignore")

    port: int = Field(default=8004, description="Port of /healthz, /readyz and /metrics.")
    worker_id: str | None = Field(default=None, description="Identity; defaults to host:pid.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Executions run at once.")
    operation_api_url: str = Field(
        default="http://127.0.0.1:8002", description="operation-svc base URL (claims)."
    )
    service_token: SecretStr | None = Field(
        default=None, description="Bearer token for operation-svc; minted in development."
    )
    allowed_executables: ListSetting[str] = Field(
        default=list(DEFAULT_ALLOWED_EXECUTABLES),
        description="Programs the worker agrees to start (argv[0], and what an allowlisted "
        "launcher starts): names found on WORKER_PATH, or absolute paths.",
    )
    path: str = Field(
        default=DEFAULT_EXECUTABLE_PATH,
        description="Where allowlisted names are found, and the commands' PATH.",
    )
    default_timeout_seconds: float = Field(default=300, gt=0, description="Wall-clock limit.")
    output_cap_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Output forwarded per run, in bytes."
    )
    output_cap_lines: int = Field(
        default=20_000,
        ge=1,
        description="Output forwarded per run, in lines (each becomes a stored log line).",
    )
    output_hard_limit_bytes: int = Field(
        default=64 * 1024 * 1024,
        description="Output beyond this ends the run (after the cap "
        "the rest is drained, not forwarded).",
    )
    limit_cpu_seconds: int = Field(default=300, ge=1, description="RLIMIT_CPU of the child.")
    limit_memory_bytes: int = Field(
        default=1024 * 1024 * 1024, ge=16 * 1024 * 1024, description="RLIMIT_AS of the child."
    )
    limit_processes: int = Field(
        default=256, ge=8, description="RLIMIT_NPROC: processes of one run (its own uid)."
    )
    limit_file_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1024, description="RLIMIT_FSIZE: largest file it writes."
    )
    limit_open_files: int = Field(default=256, ge=16, description="RLIMIT_NOFILE of the child.")
    sandbox_uid_first: int = Field(
        default=200_000,
        ge=1000,
        description="When the worker is root, each run gets a uid of its own from "
        "sandbox_uid_first to sandbox_uid_first + sandbox_uid_count - 2; the last of the "
        "range is the one its processes are killed as, never a run's (no accounts in it; two "
        "workers on one host need ranges of their own).",
    )
    sandbox_uid_count: int = Field(
        default=100_000, ge=1000, description="How many uids runs are drawn from."
    )
    outbound_allowed_hosts: ListSetting[str] = Field(
        default=[], description="Hosts http operations may reach even on internal addresses."
    )
    secret_store: SecretStoreSettings = Field(default_factory=SecretStoreSettings)
    secrets_manager_region: str | None = Field(
        default=None, description="Region of AWS Secrets Manager; None disables that provider."
    )
    shutdown_grace_seconds: float = Field(default=30, ge=0, description="SIGTERM grace.")
    sealing_private_key: SecretStr | None = Field(
        default=None,
        description="Base64 X25519 private key that opens the secret values sealed to "
        "SEALING_PUBLIC_KEY; held by the workers only. Required outside development.",
    )
    sealing_retired_private_keys: ListSetting[SecretStr] = Field(
        default=[],
        description="Private keys replaced by a rotation, still opening values sealed to them "
        "before it (pending executions, retries); drop them once those are done.",
    )

    @model_validator(mode="after")
    def _service_token_outside_development(self) -> Self:
        if self.environment == "production" and self.service_token is None:
            raise ValueError("WORKER_SERVICE_TOKEN is required in production")
        return self

    @model_validator(mode="after")
    def _comparable_allowlist(self) -> Self:
        self.executables.check_configuration()
        return self

    @cached_property
    def executables(self) -> ExecutableAllowlist:
        return configured_allowlist(self, "path")

    @model_validator(mode="after")
    def _sealing_key_outside_development(self) -> Self:
        check_sealing_key(
            self.environment,
            self._sealing_private_key(),
            DEV_SEALING_PRIVATE_KEY,
            "WORKER_SEALING_PRIVATE_KEY",
        )
        return self

    def _sealing_private_key(self) -> str | None:
        key = self.sealing_private_key
        return key.get_secret_value() if key is not None else None

    def opening_keys(self) -> list[PrivateKey]:
        """The keys that open sealed secret values, the current one first."""
        current = self._sealing_private_key() or DEV_SEALING_PRIVATE_KEY
        retired = [key.get_secret_value() for key in self.sealing_retired_private_keys]
        return [load_private_key(key) for key in (current, *retired)]
