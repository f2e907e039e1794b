"""/readyz tells the truth about the database and the broker."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from idp_common.messaging.consumer import Consumer
from operation_svc.app import create_app
from operation_svc.config import OperationSettings
from tests.harness import (
    AUTH,
    SEALING,
    LocalSQSServer,
    ServedApp,
    auth_headers,
    eventually,
    free_port,
    fresh_database,
    migrate,
    sqs_settings,
)

UNREACHABLE_POSTGRES = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"


EVENT = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "urn:orders-svc",
    "type": "operation.execution.requested.external",
    "tenant": "acme",
    "replyto": "replies-acme",
}


@pytest.mark.parametrize("broken", ["nothing", "broker", "database"])
async def test_readyz_reports_each_unreachable_dependency(
    broken: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with fresh_database("sqlite", tmp_path, "operation") as url:
        await migrate(url, "operation")
        sqs = sqs_settings(sqs_server)
        if broken == "broker":
            sqs = sqs.model_copy(
                update={"endpoint_url": f"http://127.0.0.1:{free_port()}", "create_queues": False}
            )
        settings = OperationSettings(
            environment="test",
            database_url=UNREACHABLE_POSTGRES if broken == "database" else url,
            sqs=sqs,
            auth=AUTH,
            sealing=SEALING,
        )
        # The event's reply queue is looked up as any broker call is, retried with backoff
        # before the 503: longer than httpx's 5 s default on a busy machine.
        async with (
            ServedApp(create_app(settings)) as served,
            httpx.AsyncClient(timeout=30) as client,
        ):
            assert (await client.get(f"{served.url}/healthz")).status_code == 200
            response = await client.get(f"{served.url}/readyz")
            metrics = (await client.get(f"{served.url}/metrics")).text
            event = await client.post(
                f"{served.url}/api/v1/events",
                json={"template": "any"},
                headers=auth_headers(roles=("operator",))
                | {f"ce-{name}": value for name, value in EVENT.items()},
            )
        if broken == "broker":  # its reply queue cannot be looked up: was a 500
            assert event.status_code == 503, event.text
            assert "The message broker (SQS at http://127.0.0.1:" in event.json()["detail"]
    assert 'http_requests_total{handler="/healthz"' not in metrics  # probes are not counted
    assert "idp_outbox_publish_lag_seconds" in metrics  # domain metrics are exposed too
    assert "http_request_duration_seconds" in metrics
    checks = response.json()["checks"]
    # What /readyz found, Prometheus reads too: /metrics answered all along, and no alert
    # said the service could not serve.
    exported = {
        sample.labels["check"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "idp_ready"
    }
    assert exported == {name: float(result == "ok") for name, result in checks.items()}
    if broken == "nothing":
        assert response.status_code == 200
        assert checks == {"database": "ok", "broker": "ok", "background": "ok"}
    else:
        assert response.status_code == 503
        assert checks[broken] != "ok"
        assert all(result == "ok" for name, result in checks.items() if name != broken)


def operation_settings(database_url: str, sqs_server: LocalSQSServer) -> OperationSettings:
    return OperationSettings(
        environment="test",
        database_url=database_url,
        sqs=sqs_settings(sqs_server),
        auth=AUTH,
        sealing=SEALING,
    )


async def test_a_consumer_that_dies_makes_the_service_unready(
    tmp_path: Path, sqs_server: LocalSQSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def dies(self: Consumer, loops: int | None = None) -> None:
        raise RuntimeError("the consumer's task crashed")

    monkeypatch.setattr(Consumer, "run", dies)
    async with fresh_database("sqlite", tmp_path, "operation") as url:
        await migrate(url, "operation")
        settings = operation_settings(url, sqs_server)
        async with ServedApp(create_app(settings)) as served, httpx.AsyncClient() as client:

            async def unready() -> httpx.Response | None:
                response = await client.get(f"{served.url}/readyz")
                return response if response.status_code == 503 else None

            response = await eventually(unready)
    background = response.json()["checks"]["background"]
    assert "Consumer(" in background
    assert "the consumer's task crashed" in background


async def test_a_request_that_finds_the_database_unreachable_is_a_503_with_retry_after(
    sqs_server: LocalSQSServer,
) -> None:
    settings = operation_settings(UNREACHABLE_POSTGRES, sqs_server)
    async with ServedApp(create_app(settings)) as served, httpx.AsyncClient() as client:
        created = await client.post(
            f"{served.url}/api/v1/executions",
            json={"template": "hello"},
            headers=auth_headers() | {"Idempotency-Key": "k1"},
        )
        listed = await client.get(f"{served.url}/api/v1/executions", headers=auth_headers())
    for response in (created, listed):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.json()["title"] == "Service Unavailable"
