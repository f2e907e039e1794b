"""``console``: serves the web console (``CONSOLE_*`` settings)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pydantic import ValidationError

from console.app import NAME, create_app
from console.config import ConsoleSettings
from idp_common.cli import service_server
from idp_common.settings import configuration_errors
from idp_common.telemetry import configure_logging


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=NAME, description="Serves the web console.")
    parser.add_argument("command", choices=["serve"], nargs="?", default="serve")
    parser.parse_args(argv)
    try:
        settings = ConsoleSettings()
    except ValidationError as error:
        lines = configuration_errors(ConsoleSettings, error)
        raise SystemExit(
            "\n".join(f"{NAME}: bad configuration: {line}" for line in lines)
        ) from None
    configure_logging(NAME, settings.log_level)
    service_server(create_app(settings), settings.host, settings.port, access_log=False).run()
