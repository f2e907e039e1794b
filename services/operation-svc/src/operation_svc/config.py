from pydantic import Field
from pydantic_settings import SettingsConfigDict

from idp_common.settings import DEFAULT_ALLOWED_EXECUTABLES, SealingServiceSettings


class OperationSettings(SealingServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPERATION_", extra="ignore")

    port: int = Field(default=8002, description="Port of the HTTP server.")
    database_url: str = Field(default="sqlite+aiosqlite:///data/operation.db")
    allowed_executables: list[str] = Field(
        default=list(DEFAULT_ALLOWED_EXECUTABLES),
        description="Executables a command template may start (argv[0]).",
    )
    max_timeout_seconds: float = Field(
        default=3600, gt=0, description="Longest timeout a template may ask for."
    )
    lost_after_seconds: float = Field(
        default=30, gt=0, description="A running execution without a heartbeat this long is lost."
    )
    sweep_interval_seconds: float = Field(default=5, gt=0, description="Lost-execution sweep.")
    seed_demo: bool = Field(default=False, description="Create the demo template at startup.")
