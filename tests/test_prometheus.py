"""A real Prometheus (Debian's) scrapes the four services of a running platform: the
execution and queue metrics move, through its query API, as a submission runs and a poison
message lands in a dead-letter queue."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from idp_common.messaging.topology import PANEL_SUBMISSIONS
from tests.factories import poison, submitted_hello
from tests.harness import (
    LocalSQSServer,
    Platform,
    eventually,
    free_port,
    running_platform,
    wait_for_port,
)


@pytest.fixture
async def platform(tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite",
        tmp_path,
        sqs_server,
        allowed_executables=["echo"],
        with_datasource=True,
        operation={"queue_poll_seconds": 0.5},
    ) as running:
        yield running


@pytest.fixture
def prometheus(platform: Platform, tmp_path: Path) -> Iterator[httpx.Client]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus comes with scripts/ensure-backing-services.sh"
    services = {
        "idp-panel-svc": platform.panel,
        "idp-operation-svc": platform.operation,
        "idp-executor-worker": platform.worker,
        "idp-datasource-svc": platform.datasource,
    }
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [client.base_url.netloc.decode()]}]}
            for job, client in services.items()
            if client is not None
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=30)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        process.terminate()
        process.wait(10)


def query(prometheus: httpx.Client, expression: str) -> list[dict[str, Any]]:
    answer = prometheus.get("/api/v1/query", params={"query": expression}).json()
    assert answer["status"] == "success", answer
    results: list[dict[str, Any]] = answer["data"]["result"]
    return results


async def test_prometheus_sees_executions_and_dead_letters_move(
    platform: Platform, prometheus: httpx.Client
) -> None:
    async def every_service_up() -> bool:
        up = query(prometheus, 'up{job=~"idp-.*"} == 1')
        return len(up) == 4

    await eventually(every_service_up, timeout=30)
    await submitted_hello(platform, slug="scraped")
    await poison(platform, PANEL_SUBMISSIONS.name)

    async def ran() -> list[dict[str, Any]]:
        return query(
            prometheus, 'idp_executions_ended_total{template="scraped", status="succeeded"} == 1'
        )

    async def dead_lettered() -> list[dict[str, Any]]:
        return query(prometheus, f'idp_queue_dead_letters{{queue="{PANEL_SUBMISSIONS.name}"}} == 1')

    # The test runs the services in one process (one registry): each job exports them all.
    assert await eventually(ran, timeout=30)
    assert await eventually(dead_lettered, timeout=30)
    assert query(prometheus, 'idp_execution_duration_seconds_count{template="scraped"} == 1')
    assert query(prometheus, 'idp_worker_jobs_total{outcome="claimed"} >= 1')
