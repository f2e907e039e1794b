from pydantic import Field
from pydantic_settings import SettingsConfigDict

from idp_common.settings import SealingServiceSettings

NAME = "panel-svc"


class PanelSettings(SealingServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PANEL_", extra="ignore")

    port: int = Field(default=8001, description="Port of the HTTP server.")
    database_url: str = Field(
        default="sqlite+aiosqlite:///data/panel.db",
        description="SQLAlchemy async URL: postgresql+asyncpg://… or sqlite+aiosqlite:///…",
    )
    datasource_api_url: str = Field(
        default="http://127.0.0.1:8003", description="datasource-svc base URL (options)."
    )
    operation_api_url: str = Field(
        default="http://127.0.0.1:8002",
        description="operation-svc base URL (a panel's template is checked when it is saved).",
    )
    resend_after_seconds: float = Field(
        default=60,
        gt=0,
        description="A submission operation-svc has said nothing of for this long is sent again "
        "(the queue lost it, or the answer); one awaiting approval after ten times as long.",
    )
    seed_demo: bool = Field(default=False, description="Create the demo panel at startup.")
