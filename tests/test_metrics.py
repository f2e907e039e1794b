"""The metrics an SRE reads move as work happens: executions by template and final status,
their durations and waits, submissions, the queues' depths and dead letters."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from idp_common.messaging.topology import PANEL_SUBMISSIONS
from tests.factories import poison, submitted_hello
from tests.harness import Platform, eventually


@pytest.fixture
def platform(echo_platform: Platform) -> Platform:
    return echo_platform


async def samples(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = (await client.get("/metrics")).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_execution_submission_and_queue_metrics_move(platform: Platform) -> None:
    before_operation = await samples(platform.operation)
    before_panel = await samples(platform.panel)
    await submitted_hello(platform)
    await poison(platform, PANEL_SUBMISSIONS.name)

    async def moved() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        found = await samples(platform.operation)
        ended = value(found, "idp_executions_ended_total", template="hello", status="succeeded")
        return found if ended == 1 else None

    after = await eventually(moved)
    assert value(after, "idp_execution_duration_seconds_count", template="hello") == 1
    assert value(after, "idp_execution_queue_to_start_seconds_count", template="hello") == 1
    poisoned = value(after, "idp_messages_dead_lettered_total", queue=PANEL_SUBMISSIONS.name)
    assert (
        poisoned
        - value(before_operation, "idp_messages_dead_lettered_total", queue=PANEL_SUBMISSIONS.name)
        == 1
    )
    panel_after = await samples(platform.panel)
    assert (
        value(panel_after, "idp_submissions_created_total")
        - value(before_panel, "idp_submissions_created_total")
        == 1
    )
    # The queue monitor polled at start; its gauges name every queue.
    assert (
        "idp_queue_messages",
        frozenset({("queue", "operation-jobs"), ("state", "visible")}),
    ) in after
    assert ("idp_outbox_backlog", frozenset()) in after
