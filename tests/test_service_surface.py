"""What every service shows a newcomer: API docs that work on a closed network, filters that
refuse what they cannot mean, and a quiet start with tracing on."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.harness import (
    LocalSQSServer,
    Platform,
    auth_headers,
    eventually,
    free_port,
    running_platform,
)

ADMIN = auth_headers(roles=("admin",))
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
async def platform(module_tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    """Shared by the module's tests, which only read."""
    async with running_platform(
        "sqlite", module_tmp_path, sqs_server, with_datasource=True
    ) as running:
        yield running


async def test_docs_load_every_asset_from_the_service_itself(platform: Platform) -> None:
    assert platform.datasource is not None
    assert platform.worker is not None
    for client in (platform.panel, platform.operation, platform.datasource, platform.worker):
        for page in ("/docs", "/redoc"):
            html = (await client.get(page)).text
            assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
            scripts = [asset for asset in assets if asset.endswith((".js", ".css"))]
            assert scripts, html
            assert all(asset.startswith("/") for asset in assets if "//" in asset or "." in asset)
            for asset in scripts:
                served = await client.get(asset)
                assert served.status_code == 200, asset
                kind = "javascript" if asset.endswith(".js") else "css"
                assert kind in served.headers["content-type"]


async def test_a_status_filter_that_means_nothing_is_a_422(platform: Platform) -> None:
    for client, path in (
        (platform.operation, "/api/v1/executions"),
        (platform.panel, "/api/v1/submissions"),
    ):
        response = await client.get(path, params={"status": "bogus"}, headers=ADMIN)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "status"
        assert (await client.get(path, params={"status": "failed"}, headers=ADMIN)).is_success


async def test_a_service_starts_quietly_with_tracing_on(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    port = free_port()
    env = dict(os.environ) | {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "OPERATION_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'operation.db'}",
        "OPERATION_PORT": str(port),
        "SQS_ENDPOINT_URL": sqs_server.url,
        "SQS_ACCESS_KEY_ID": "test",
        "SQS_SECRET_ACCESS_KEY": "test",
        "SQS_CREATE_QUEUES": "true",
        "SQS_QUEUE_PREFIX": f"quiet{port}-",
    }
    migration = await asyncio.create_subprocess_exec(str(BIN / "operation-svc"), "migrate", env=env)
    assert await migration.wait() == 0
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = await asyncio.create_subprocess_exec(
            str(BIN / "operation-svc"), "serve", env=env, stdout=output, stderr=output
        )
    try:
        async with httpx.AsyncClient() as client:

            async def ready() -> bool:
                try:
                    answer = await client.get(f"http://127.0.0.1:{port}/readyz")
                except httpx.HTTPError:
                    return False
                return answer.status_code == 200

            await eventually(ready, timeout=30)
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 30)
    assert "already instrumented" not in log.read_text()


@pytest.mark.parametrize(
    ("app_module", "stack"),
    [
        ("executor_worker.app", "sqlalchemy"),
        ("datasource_svc.app", "botocore"),
        ("operation_svc.app", "asyncpg"),
    ],
)
async def test_a_service_does_not_load_a_stack_it_has_no_use_for(
    app_module: str, stack: str
) -> None:
    """The worker has no database, datasource-svc no queues, and a service on SQLite no use
    for asyncpg: loading SQLAlchemy, botocore or asyncpg for nothing would cost each some 17,
    19 or 2.5 MB of idle memory (``make bench``'s RSS)."""
    assert await printed_after_import(app_module, f"{stack!r} in sys.modules") == "False"


async def printed_after_import(module: str, expression: str) -> str:
    """What a fresh interpreter prints of ``expression`` once it has imported ``module``."""
    loaded = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"import sys, {module}; print({expression})",
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await loaded.communicate()
    return output.decode().strip()


CLI_MODULES = {"httpx", "rich", "pygments"}  # click too, but uvicorn imports it


@pytest.mark.parametrize(
    "entry_point",
    [
        "operation_svc.cli",
        "panel_svc.cli",
        "datasource_svc.cli",
        "executor_worker.cli",
        "console.cli",
    ],
)
async def test_a_service_does_not_load_httpxs_command_line_client(entry_point: str) -> None:
    """httpx imports its CLI (click, rich, pygments: 5.7 MB of idle memory) whenever they are
    installed; a service never runs it, whichever of its modules imports httpx first."""
    loaded = await printed_after_import(entry_point, f"sorted(sys.modules.keys() & {CLI_MODULES})")
    assert loaded == "['httpx']"  # httpx, and none of its CLI's
