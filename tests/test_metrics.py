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


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def samples(client: httpx.AsyncClient) -> Samples:
    text = (await client.get("/metrics")).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_execution_submission_and_queue_metrics_move(platform: Platform) -> None:
    """The services of a test run share one registry: what moved is measured by difference."""
    before = await samples(platform.operation)
    await submitted_hello(platform, slug="measured")
    await poison(platform, PANEL_SUBMISSIONS.name)

    def moved(found: Samples, name: str, **labels: str) -> float:
        return value(found, name, **labels) - value(before, name, **labels)

    async def counted() -> Samples | None:
        found = await samples(platform.operation)
        ended = moved(found, "idp_executions_ended_total", template="measured", status="succeeded")
        dead = moved(found, "idp_messages_dead_lettered_total", queue=PANEL_SUBMISSIONS.name)
        submitted = moved(found, "idp_submissions_ended_total", status="succeeded")
        return found if (ended, dead, submitted) == (1, 1, 1) else None

    after = await eventually(counted)
    assert moved(after, "idp_execution_duration_seconds_count", template="measured") == 1
    assert moved(after, "idp_execution_queue_to_start_seconds_count", template="measured") == 1
    assert moved(after, "idp_submissions_created_total") == 1
    # The queue monitor polled at start; its gauges name every queue.
    assert (
        "idp_queue_messages",
        frozenset({("queue", "operation-jobs"), ("state", "visible")}),
    ) in after
    assert ("idp_outbox_backlog", frozenset()) in after
