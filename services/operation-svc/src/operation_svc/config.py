from pydantic import Field
from pydantic_settings import SettingsConfigDict

from idp_common.settings import DatabaseServiceSettings

DEFAULT_ALLOWED_EXECUTABLES = ("echo", "true", "false", "sleep", "env", "date", "printf")


class OperationSettings(DatabaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPERATION_", extra="ignore")

    port: int = Field(default=8002, description="Port of the HTTP server.")
    database_url: str = Field(default="sqlite+aiosqlite:///data/operation.db")
    allowed_executables: list[str] = Field(
        default=list(DEFAULT_ALLOWED_EXECUTABLES),
        description="Executables a command template may start (argv[0]).",
    )
    seed_demo: bool = Field(default=False, description="Create the demo template at startup.")
    output_excerpt_bytes: int = Field(
        default=4096, description="Output kept on the execution and sent to the submission."
    )
