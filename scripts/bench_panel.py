"""Panel submissions end to end (``make bench`` section "panel"), on the real multi-process
platform: panel-svc accepts a submission -> operation-svc -> the worker runs `echo` -> back
to panel-svc as `succeeded`. Latencies from the submission's creation to its final update
(server-side timestamps read from panel-svc's database), one at a time and then under
concurrent clients, with the executions/s and the CPU per execution."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from scripts.bench_platform import (
    Api,
    PlatformCpu,
    as_time,
    bench_engine,
    platform,
    report,
    rows_when_finished,
)
from tests.harness import eventually

SEQUENTIAL_SUBMISSIONS = 30
UNLOADED_POLL_SECONDS = 0.02


class Submissions:
    """Submissions to the demo panel, and their rows in panel-svc's database."""

    def __init__(self, api: Api, panel_id: str, engine: AsyncEngine) -> None:
        self.api = api
        self.path = f"/api/v1/panels/{panel_id}/submissions"
        self.engine = engine
        self.submitted = 0

    async def submit(self) -> str:
        submission = await self.api.post(self.path, {"data": {"message": f"b{self.submitted}"}})
        self.submitted += 1
        return str(submission["id"])

    async def finished(self, submission_id: str) -> bool:
        submission = await self.api.get(f"/api/v1/submissions/{submission_id}")
        return submission["status"] in ("succeeded", "failed")

    async def last_succeeded(self, count: int) -> list[Any]:
        """The rows of the last ``count`` submissions, once every submission has succeeded."""
        rows = await rows_when_finished(
            self.engine,
            "select count(*) from submissions where status = 'succeeded'",
            self.submitted,
            "select created_at, updated_at from submissions order by 1",
        )
        return rows[-count:]


def latencies_ms(rows: list[Any]) -> list[float]:
    return [
        (as_time(row.updated_at) - as_time(row.created_at)).total_seconds() * 1000 for row in rows
    ]


async def end_to_end(backend: str, data: Path, count: int, concurrency: int) -> dict[str, float]:
    async with (
        platform(backend, data) as launched,
        Api(launched.urls["panel-svc"], launched.token) as api,
    ):
        panel_id = (await api.get("/api/v1/panels"))["items"][0]["id"]
        submissions = Submissions(api, panel_id, bench_engine(launched.databases["panel"]))
        figures = {"panel_unloaded_p50_ms": await one_at_a_time(submissions)}
        print(f"  {count} submitted by {concurrency} concurrent clients:")
        gate = asyncio.Semaphore(concurrency)

        async def submit() -> None:
            async with gate:
                await submissions.submit()

        cpu = PlatformCpu(launched)
        before = await cpu.snapshot()
        started = time.perf_counter()
        await asyncio.gather(*(submit() for _ in range(count)))
        accepted = time.perf_counter() - started
        rows = await submissions.last_succeeded(count)
        figures["panel_cpu_ms"] = cpu.report(before, await cpu.snapshot(), count)
        await submissions.engine.dispose()
    report("submission accepted -> succeeded (server-side)", latencies_ms(rows))
    span = (
        max(as_time(row.updated_at) for row in rows) - min(as_time(row.created_at) for row in rows)
    ).total_seconds()
    figures["panel_per_second"] = count / span
    print(
        f"  accepted {count} submissions in {accepted:.1f} s ({count / accepted:.0f}/s); "
        f"all succeeded in {span:.1f} s: {count / span:.1f} executions/s end to end"
    )
    return figures


async def one_at_a_time(submissions: Submissions) -> float:
    """Submissions made one at a time, each once the previous has succeeded (polled over
    HTTP); returns the p50 (ms) of accepted -> succeeded, from the server's timestamps."""
    for _ in range(SEQUENTIAL_SUBMISSIONS):
        submission_id = await submissions.submit()
        await eventually(
            partial(submissions.finished, submission_id), interval=UNLOADED_POLL_SECONDS
        )
    rows = await submissions.last_succeeded(SEQUENTIAL_SUBMISSIONS)
    p50, _ = report(
        f"unloaded ({SEQUENTIAL_SUBMISSIONS} one at a time) accepted -> succeeded (server-side)",
        latencies_ms(rows),
    )
    return p50
