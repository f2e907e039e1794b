"""The console entry point shape shared by the services: ``<service> serve | migrate``."""

from __future__ import annotations

import argparse
import pkgutil
import socket
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.applications import Starlette

from idp_common.cryptography_use import keep_cryptography_out_unless_needed
from idp_common.heap import settle_after_startup
from idp_common.http_protocol import ProblemHttpToolsProtocol
from idp_common.settings import DatabaseServiceSettings, ServiceSettings, configuration_errors
from idp_common.telemetry import configure_logging

S = TypeVar("S", bound=ServiceSettings)
# An idle keep-alive connection is kept longer than the clients and proxies in front keep
# theirs (aiohttp 15 s, AWS ALB and nginx 60 s): a server that closes first races a client
# reusing the connection, whose request then fails ("Can not write request body"), as the
# benchmark's clients saw with uvicorn's default of 5 s.
KEEP_ALIVE_SECONDS = 75


def server_config(app: Starlette, host: str, port: int, **options: Any) -> uvicorn.Config:
    """How every service is served by uvicorn (``options``: uvicorn's own)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        http=ProblemHttpToolsProtocol,
        ws="none",  # no service speaks WebSocket (a log is a stream of server-sent events)
        # Each request in a context of its own: a pipelined request's task was started from
        # the one before it and inherited its span (its X-Trace-Id, its spans' parent).
        reset_contextvars=True,
        **options,
    )


class _SettledServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        settle_after_startup()


def service_server(app: Starlette, host: str, port: int, **options: Any) -> uvicorn.Server:
    """The server of a service's own process: as ``server_config`` says, its heap settled
    once the app has started (not where tests serve apps within their own process)."""
    return _SettledServer(server_config(app, host, port, **options))


def service_main(
    *,
    name: str,
    settings_class: type[S],
    create_app: str,
    migrations: str | None = None,
    argv: Sequence[str] | None = None,
    event_loop: Literal["auto", "asyncio", "uvloop"] = "auto",
) -> None:
    """``create_app``: where the app factory is (``module:function``), imported once the
    settings are read, so that what they leave out is never loaded. ``event_loop``:
    uvicorn's choice (uvloop when installed) unless a service knows better."""
    parser = argparse.ArgumentParser(prog=name)
    commands = ["serve", "migrate"] if migrations else ["serve"]
    parser.add_argument("command", choices=commands, nargs="?", default="serve")
    args = parser.parse_args(argv)
    try:
        settings = settings_class()
    except ValidationError as error:
        lines = configuration_errors(settings_class, error)
        raise SystemExit(
            "\n".join(f"{name}: bad configuration: {line}" for line in lines)
        ) from None
    except ValueError as error:  # a list setting that is neither JSON nor comma-separated
        raise SystemExit(f"{name}: bad configuration: {error}") from None
    configure_logging(name, settings.log_level)
    if args.command == "migrate":
        # Imported here: a serving process never needs Alembic (~7 MB of its RSS).
        from idp_common.migrations import upgrade_to_head

        assert migrations is not None
        assert isinstance(settings, DatabaseServiceSettings)
        upgrade_to_head(settings.database_url, migrations)
        return
    keep_cryptography_out_unless_needed(settings.auth)
    factory: Callable[[S], FastAPI] = pkgutil.resolve_name(create_app)
    app = factory(settings)
    # uvicorn turns SIGTERM/SIGINT into a lifespan shutdown: consumers drain, the relay flushes.
    server = service_server(
        app,
        settings.host,
        settings.port,
        access_log=False,
        timeout_graceful_shutdown=60,
        loop=event_loop,
    )
    app.state.request_exit = lambda: setattr(server, "should_exit", True)
    server.run()
    if (reason := getattr(app.state, "fatal", None)) is not None:
        raise SystemExit(f"{name} stopped: {reason}")
