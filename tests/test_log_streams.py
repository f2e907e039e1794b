"""Live log streams under many watchers: the streams of one run share their reads (each still
gets every line once), and one caller holds at most ``log_streams_per_caller`` of them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from idp_common.auth import mint_token
from tests.harness import (
    AUTH,
    LocalSQSServer,
    Platform,
    auth_headers,
    eventually,
    running_platform,
)
from tests.test_operations import ALLOWED, start, template

STREAMS_PER_CALLER = 3
ALICE = auth_headers(roles=("viewer",))


@pytest.fixture
async def platform(tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite",
        tmp_path,
        sqs_server,
        allowed_executables=ALLOWED,
        operation={"log_streams_per_caller": STREAMS_PER_CALLER},
    ) as running:
        yield running


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times the streams asked for lines (polls) and read the database (reads)."""
    import operation_svc.executions.log_stream as log_stream

    counted = {"polls": 0, "reads": 0}
    shared_call, read = log_stream._READS.call, log_stream._read

    async def poll(key: Any, make: Callable[[], Awaitable[Any]]) -> Any:
        counted["polls"] += 1
        return await shared_call(key, make)

    async def counted_read(*args: Any) -> Any:
        counted["reads"] += 1
        return await read(*args)

    monkeypatch.setattr(log_stream._READS, "call", poll)
    monkeypatch.setattr(log_stream, "_read", counted_read)
    return counted


async def watch(platform: Platform, execution_id: str, headers: dict[str, str]) -> list[str]:
    """The ids of a stream's events and, for the last (the end), its data."""
    seen: list[str] = []
    async with platform.operation.stream(
        "GET", f"/api/v1/executions/{execution_id}/logs/stream", headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            ending = seen[-1:] == ["event: end"] and line.startswith("data:")
            if line.startswith(("id:", "event: end")) or ending:
                seen.append(line)
    return seen


async def test_the_streams_of_one_run_share_reads_and_each_gets_every_line_once(
    platform: Platform, reads: dict[str, int]
) -> None:
    """Twelve people (three streams each) watch a run that prints for about two seconds."""
    await template(
        platform, "ticking", "sh -c 'for i in $(seq 1 20); do echo tick $i; sleep 0.1; done'"
    )
    execution_id = (await start(platform, "ticking")).json()["id"]
    watchers = [auth_headers(roles=("viewer",), subject=f"watcher-{n}") for n in range(12)]
    streams = await asyncio.gather(
        *(
            watch(platform, execution_id, headers)
            for headers in watchers
            for _ in range(STREAMS_PER_CALLER)
        )
    )
    for seen in streams:
        assert seen == [
            *(f"id: {seq}" for seq in range(20)),
            "event: end",
            'data: {"status": "succeeded", "exit_code": 0}',
        ]
    # Each stream's first read is its own; then the streams asking for the lines after the
    # same one on a beat share one read.
    assert reads["reads"] * 3 < reads["polls"], reads


async def stream_status(platform: Platform, execution_id: str, headers: dict[str, str]) -> int:
    async with platform.operation.stream(
        "GET", f"/api/v1/executions/{execution_id}/logs/stream", headers=headers
    ) as response:
        return response.status_code


async def stream_metrics(platform: Platform) -> tuple[float, float]:
    """The streams open and refused, as operation-svc's metrics say (of the test process)."""
    metrics = (await platform.operation.get("/metrics")).text
    values = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line[:1] != "#")
    return float(values["idp_log_streams_open"]), float(values["idp_log_streams_refused_total"])


async def test_one_caller_holds_at_most_the_configured_streams(platform: Platform) -> None:
    """One more is a 429 naming the setting, whichever token the caller holds; other callers
    are not held back; a stream closed by its client frees its place, even one closed
    before its first event, and so does a HEAD; the metrics count the streams open and
    refused."""
    await template(platform, "napping", "sleep 30")
    execution_id = (await start(platform, "napping")).json()["id"]
    url = f"/api/v1/executions/{execution_id}/logs/stream"
    opened_before, refused_before = await stream_metrics(platform)
    async with contextlib.AsyncExitStack() as held:
        for _ in range(STREAMS_PER_CALLER):
            opened = await held.enter_async_context(
                platform.operation.stream("GET", url, headers=ALICE)
            )
            assert opened.status_code == 200
        for headers in (ALICE, auth_headers(roles=("admin", "viewer"))):  # another token
            refused = await platform.operation.get(url, headers=headers)
            assert refused.status_code == 429, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["retry-after"] == "5"
            assert "OPERATION_LOG_STREAMS_PER_CALLER" in refused.json()["detail"]
        assert await stream_status(platform, execution_id, auth_headers(subject="bob")) == 200
        assert await stream_status(platform, execution_id, auth_headers(tenant="globex")) == 404
        assert await stream_metrics(platform) == (
            opened_before + STREAMS_PER_CALLER,
            refused_before + 2,
        )

    async def place_freed() -> bool:
        return await stream_status(platform, execution_id, ALICE) == 200

    for _ in range(2 * STREAMS_PER_CALLER):  # each closed at once: none keeps its place
        assert await eventually(place_freed)
    for _ in range(2 * STREAMS_PER_CALLER):  # a HEAD ends after the headers: no place kept
        assert (await platform.operation.head(url, headers=ALICE)).status_code == 200
    assert await eventually(place_freed)

    async def all_closed() -> bool:
        return (await stream_metrics(platform))[0] == opened_before

    assert await eventually(all_closed)
    await platform.operation.post(
        f"/api/v1/executions/{execution_id}/cancel", headers=auth_headers(roles=("operator",))
    )


async def test_the_stream_of_a_revoked_key_ends(platform: Platform) -> None:
    """A stream was checked only when it opened: one opened with a key went on sending the
    run's lines and its end long after the key was revoked."""
    admin = auth_headers(roles=("admin",))
    await template(platform, "slow", "sh -c 'for i in $(seq 1 60); do echo $i; sleep 0.1; done'")
    execution_id = (await start(platform, "slow")).json()["id"]
    made = await platform.operation.post(
        "/api/v1/api-keys", json={"name": "watcher", "roles": ["viewer"]}, headers=admin
    )
    key = {"X-API-Key": made.json()["key"]}
    events: list[str] = []
    revoked_at: list[str] = []  # the line whose arrival revoked the key
    async with platform.operation.stream(
        "GET", f"/api/v1/executions/{execution_id}/logs/stream", headers=key, timeout=30
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                events.append(line)
            if line.startswith("id:") and not revoked_at:
                revoked_at.append(line)
                revoked = await platform.operation.delete(
                    f"/api/v1/api-keys/{made.json()['id']}", headers=admin
                )
                assert revoked.status_code == 204
            if line.startswith("data:") and events[-1:] == ["event: error"]:
                assert "was revoked" in line
    assert events[-1] == "event: error"
    assert "event: end" not in events
    status = await platform.operation.get(f"/api/v1/executions/{execution_id}", headers=admin)
    assert status.json()["status"] == "running"  # the stream ended before the run


async def test_the_stream_of_an_expired_token_ends(platform: Platform) -> None:
    """A token was checked only when its stream opened: one opened a moment before the
    token expired went on sending the run's lines for as long as the run lasted."""
    admin = auth_headers(roles=("admin",))
    await template(platform, "slow", "sh -c 'for i in $(seq 1 600); do echo $i; sleep 0.1; done'")
    execution_id = (await start(platform, "slow")).json()["id"]
    # Valid for a few seconds more, the leeway included.
    ttl = 5 - AUTH.jwt_leeway_seconds
    token = mint_token(AUTH, subject="vera", tenant="acme", roles=["viewer"], ttl_seconds=ttl)
    events: list[str] = []
    async with platform.operation.stream(
        "GET",
        f"/api/v1/executions/{execution_id}/logs/stream",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                events.append(line)
            if line.startswith("data:") and events[-1:] == ["event: error"]:
                assert "token has expired" in line
    assert events[-1] == "event: error"
    status = await platform.operation.get(f"/api/v1/executions/{execution_id}", headers=admin)
    assert status.json()["status"] == "running"  # the stream ended before the run
    await platform.operation.post(
        f"/api/v1/executions/{execution_id}/cancel", headers=auth_headers(roles=("operator",))
    )
