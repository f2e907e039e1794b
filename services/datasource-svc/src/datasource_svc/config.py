from pydantic import Field
from pydantic_settings import SettingsConfigDict

from idp_common.secret_values import SecretStoreSettings
from idp_common.settings import DatabaseServiceSettings, ListSetting

NAME = "datasource-svc"


class DatasourceSettings(DatabaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DATASOURCE_", extra="ignore")

    port: int = Field(default=8003, description="Port of the HTTP server.")
    database_url: str = Field(
        default="sqlite+aiosqlite:///data/datasource.db",
        description="SQLAlchemy async URL: postgresql+asyncpg://… or sqlite+aiosqlite:///…",
    )
    redis_url: str | None = Field(
        default=None, description="Redis for the options cache; None uses an in-process cache."
    )
    redis_key_prefix: str = Field(default="idp:options:", description="Prefix of cache keys.")
    outbound_allowed_hosts: ListSetting[str] = Field(
        default=[], description="Upstream hosts allowed even on internal addresses."
    )
    secret_store: SecretStoreSettings = Field(default_factory=SecretStoreSettings)
    response_cap_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="Largest upstream response read."
    )
