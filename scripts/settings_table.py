"""The README's table of settings, made from the settings classes themselves.

Usage: .venv/bin/python scripts/settings_table.py          rewrite the README's table
       .venv/bin/python scripts/settings_table.py --check  exit 1 when the README differs
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from console.config import ConsoleSettings
from datasource_svc.config import DatasourceSettings
from executor_worker.config import WorkerSettings
from idp_common.secret_values import SecretStoreSettings
from idp_common.settings import AuthSettings, RateLimitSettings, SealingSettings, SQSSettings
from operation_svc.config import OperationSettings, WebhookSettings
from panel_svc.config import PanelSettings

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- settings table: made by scripts/settings_table.py, do not edit by hand -->"
END = "<!-- end of settings table -->"
SERVICES: tuple[type[BaseSettings], ...] = (
    PanelSettings,
    OperationSettings,
    WebhookSettings,
    DatasourceSettings,
    WorkerSettings,
    ConsoleSettings,
)
SHARED: tuple[type[BaseSettings], ...] = (
    SQSSettings,
    AuthSettings,
    RateLimitSettings,
    SealingSettings,
    SecretStoreSettings,
)


def _default(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "(empty)"
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value) if isinstance(value, str) and not value else str(value)


def rows(settings: type[BaseSettings]) -> Iterator[tuple[str, str, str]]:
    """(variable, default, description) of each field that is not a nested settings class."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    for name, field in settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings):
            continue  # described once, under its own prefix
        default = field.get_default(call_default_factory=True)
        yield f"{prefix}{name}".upper(), _default(default), field.description or ""


def table() -> str:
    lines = [START, "", "| variable | default | what it does |", "|---|---|---|"]
    for settings in (*SHARED, *SERVICES):
        for variable, default, description in rows(settings):
            cells = (f"`{variable}`", f"`{default}`", description)
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join([*lines, "", END])


def with_table(readme: str) -> str:
    before, found, rest = readme.partition(START)
    if not found:
        raise SystemExit(f"README.md has no line {START!r}")
    _, _, after = rest.partition(END)
    return before + table() + after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    current = README.read_text()
    wanted = with_table(current)
    if args.check:
        sys.exit(0 if wanted == current else 1)
    README.write_text(wanted)


if __name__ == "__main__":
    main()
