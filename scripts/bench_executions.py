"""Trivial executions (`true`) through operation-svc's API (``make bench`` sections "worker"
and "scale-out"): one worker's latency one at a time, a burst created by concurrent clients
while it runs them and a backlog drained; then, on PostgreSQL, a burst through one
operation-svc process against two."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from scripts.bench_platform import (
    Api,
    Launched,
    PlatformCpu,
    as_time,
    bench_engine,
    platform,
    report,
    rows_when_finished,
)
from scripts.run_platform import BIN, SERVICES
from tests.harness import eventually, free_port

SEQUENTIAL_RUNS = 50
UNLOADED_WARM_UP_RUNS = 3  # as the peer's benchmark
UNLOADED_POLL_SECONDS = 0.02
WARM_UP_RUNS = 20
# A second worker draws its runs' uids from a range of its own: a worker kills a finished
# run's leftovers by uid, so two sharing a range could kill each other's runs.
SECOND_WORKER_UID_FIRST = "300000"


async def finished_one(api: Api, execution_id: str) -> bool:
    status = (await api.get(f"/api/v1/executions/{execution_id}"))["status"]
    return status in ("succeeded", "failed")


class Executions:
    """Trivial executions (`true`) created through operation-svc's API (spread over the
    ``apis`` given, in turn), and their rows."""

    def __init__(self, apis: list[Api], database: str, concurrency: int) -> None:
        self.apis: Iterator[Api] = itertools.cycle(apis)
        self.engine = bench_engine(database)
        self.gate = asyncio.Semaphore(concurrency)
        self.created = 0

    async def create_one(self) -> str:
        """Create one execution (within the client limit); returns its id."""
        async with self.gate:
            created = await next(self.apis).post("/api/v1/executions", {"template": "noop"})
        self.created += 1
        return str(created["id"])

    async def create(self, count: int) -> float:
        """Create ``count`` executions from concurrent clients; returns the seconds it took."""
        started = time.perf_counter()
        await asyncio.gather(*(self.create_one() for _ in range(count)))
        return time.perf_counter() - started

    async def last_finished(self, count: int) -> list[Any]:
        """The rows of the last ``count`` executions, once every execution has finished."""
        rows = await rows_when_finished(
            self.engine,
            "select count(*) from executions where status in ('succeeded', 'failed')",
            self.created,
            "select status, created_at, started_at, finished_at from executions order by 2",
        )
        return rows[-count:]

    async def jobs_queued(self) -> bool:
        async with self.engine.connect() as connection:
            return not (await connection.execute(text("select count(*) from outbox"))).scalar()


async def add_noop_template(api: Api) -> None:
    await api.post(
        "/api/v1/templates", {"slug": "noop", "name": "noop", "command_template": "true"}
    )


async def worker_throughput(
    backend: str, data: Path, count: int, concurrency: int, slots: int
) -> dict[str, float]:
    """Trivial executions through operation-svc's API and one worker process: latency one
    at a time, a burst of concurrent clients, and a backlog drained."""
    async with (
        platform(backend, data) as launched,
        Api(launched.urls["operation-svc"], launched.token) as api,
    ):
        await add_noop_template(api)
        executions = Executions([api], launched.databases["operation"], concurrency)
        figures = await unloaded_latency(api, executions, launched.urls["executor-worker"])
        cpu = PlatformCpu(launched)
        workers = f"one worker ({slots} slots)"
        figures["burst_per_second"], figures["burst_cpu_ms"] = await burst(
            cpu, executions, count, workers
        )
        figures["backlog_per_second"], figures["backlog_cpu_ms"] = await drained_backlog(
            launched, executions, count, workers
        )
        await executions.engine.dispose()
    return figures


async def unloaded_latency(api: Api, executions: Executions, worker: str) -> dict[str, float]:
    """Executions one at a time (latency without load), once a few have warmed every process
    up as the peer's benchmark does; the figures come from the worker's histograms, counting
    the measured runs only."""
    for _ in range(UNLOADED_WARM_UP_RUNS):
        await one_at_a_time(api, executions)
    before = await worker_metrics(worker)
    for _ in range(SEQUENTIAL_RUNS):
        await one_at_a_time(api, executions)
    after = await worker_metrics(worker)
    quantiles = {}
    for metric, label in (
        ("idp_worker_receive_to_spawn_seconds", "worker receive -> process spawned"),
        ("idp_worker_queue_to_start_seconds", "queued (event created) -> process spawned"),
    ):
        counts = bucket_counts(after, metric) - bucket_counts(before, metric)
        p50, p99 = (histogram_quantile(counts, q) * 1000 for q in (0.5, 0.99))
        quantiles[metric] = p50, p99
        print(
            f"  unloaded ({SEQUENTIAL_RUNS} one at a time) {label}: "
            f"p50 ~ {p50:.1f} ms, p99 ~ {p99:.1f} ms (worker's histogram)"
        )
    p50, p99 = quantiles["idp_worker_queue_to_start_seconds"]
    return {"unloaded_spawn_p50_ms": p50, "unloaded_spawn_p99_ms": p99}


async def one_at_a_time(api: Api, executions: Executions) -> None:
    execution_id = await executions.create_one()
    # Not much faster: each poll costs operation-svc a few ms of CPU, and the latencies
    # reported come from the worker's histograms, not from polling.
    await eventually(partial(finished_one, api, execution_id), interval=UNLOADED_POLL_SECONDS)


async def worker_metrics(worker: str) -> str:
    async with aiohttp.ClientSession() as client, client.get(f"{worker}/metrics") as response:
        return await response.text()


async def burst(
    cpu: PlatformCpu, executions: Executions, count: int, workers: str
) -> tuple[float, float]:
    """Concurrent clients create executions while the workers run them: the API intake,
    the workers and operation-svc's handling of the results all share the machine. Returns
    the executions/s and the platform's CPU per execution (ms)."""
    print(f"  burst of {count}, created by concurrent clients while they run:")
    before = await cpu.snapshot()
    accepted = await executions.create(count)
    rows = await executions.last_finished(count)
    cpu_ms = cpu.report(before, await cpu.snapshot(), count)
    report(
        "created -> claimed by the worker (server-side)",
        [(as_time(r.started_at) - as_time(r.created_at)).total_seconds() * 1000 for r in rows],
    )
    span = max(as_time(r.finished_at) for r in rows) - min(as_time(r.created_at) for r in rows)
    per_second = count / span.total_seconds()
    print(
        f"  accepted {count} in {accepted:.1f} s ({count / accepted:.0f}/s); all finished in "
        f"{span.total_seconds():.1f} s: {per_second:.1f} executions/s with {workers}"
    )
    return per_second, cpu_ms


async def drained_backlog(
    launched: Launched, executions: Executions, count: int, workers: str
) -> tuple[float, float]:
    """Executions created while the worker is paused (SIGSTOP), their jobs all queued, then
    run once it resumes: claim, run, results and their recording in operation-svc, without
    the API intake sharing the machine. Returns the executions/s and the platform's CPU per
    execution (ms)."""
    print(f"  backlog of {count} queued jobs, drained by the worker once it resumes:")
    worker = launched.pid_of("executor-worker")
    cpu = PlatformCpu(launched)
    os.kill(worker, signal.SIGSTOP)
    try:
        await executions.create(count)
        await eventually(executions.jobs_queued, timeout=120, interval=0.2)
    finally:
        before = await cpu.snapshot()
        resumed = datetime.now(UTC)
        os.kill(worker, signal.SIGCONT)
    rows = await executions.last_finished(count)
    cpu_ms = cpu.report(before, await cpu.snapshot(), count)
    span = (max(as_time(r.finished_at) for r in rows) - resumed).total_seconds()
    print(
        f"  all {count} finished {span:.1f} s after the worker resumed: "
        f"{count / span:.1f} executions/s with {workers}"
    )
    return count / span, cpu_ms


class BucketCounts(dict[float, float]):
    """A histogram's cumulative count by bucket bound; one minus another counts what was
    observed in between."""

    def __sub__(self, other: dict[float, float]) -> BucketCounts:
        return BucketCounts({bound: count - other.get(bound, 0.0) for bound, count in self.items()})


def bucket_counts(metrics: str, name: str) -> BucketCounts:
    return BucketCounts(
        (float("inf") if le == "+Inf" else float(le), float(count))
        for le, count in re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', metrics, re.M)
    )


def histogram_quantile(counts: BucketCounts, quantile: float) -> float:
    """Prometheus-style quantile estimate (linear within the bucket)."""
    buckets = sorted(counts.items())
    total = buckets[-1][1]
    rank = quantile * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if bound == float("inf"):
                return previous_bound
            share = (rank - previous_count) / max(cumulative - previous_count, 1e-9)
            return previous_bound + (bound - previous_bound) * share
        previous_bound, previous_count = bound, cumulative
    return previous_bound


@contextlib.asynccontextmanager
async def another(
    launched: Launched, name: str, port: str, settings: dict[str, str]
) -> AsyncIterator[tuple[int, str]]:
    """One more process of service ``name`` on ``port``, started as the launcher starts its
    own (same environment, ``settings`` on top), ready; yields its pid and a label for the
    CPU figures."""
    url = f"http://127.0.0.1:{port}"
    environment = launched.environment_of(name) | settings | {f"{SERVICES[name][0]}PORT": port}
    with (Path(environment["IDP_DATA_DIR"]) / "logs" / f"{name}-2.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            BIN / name, "serve", env=environment, stdout=log, stderr=log
        )
    try:
        async with aiohttp.ClientSession() as client:

            async def ready() -> bool:
                with contextlib.suppress(aiohttp.ClientError):
                    async with client.get(f"{url}/readyz") as response:
                        return response.status == 200
                return False

            await eventually(ready, timeout=60, interval=0.1)
        yield process.pid, f"{name} #2"
    finally:
        process.terminate()
        await process.wait()


async def scaled_out(data: Path, count: int, concurrency: int, slots: int) -> dict[str, float]:
    """A burst through one operation-svc process, then through two against the same
    PostgreSQL database and queues; two workers both times, so that only the number of
    operation-svc processes changes."""
    print(
        "  both bursts with two workers and the same clients; with one operation-svc both "
        "workers call it and the clients post to it, with two each worker calls its own and "
        "the clients alternate between them (the jobs queue is shared: any worker may run "
        "any execution)"
    )
    figures = {}
    workers = f"two workers ({slots} slots each)"
    async with (
        platform("postgres", data) as launched,
        Api(launched.urls["operation-svc"], launched.token) as first_api,
    ):
        await add_noop_template(first_api)
        executions = Executions([first_api], launched.databases["operation"], concurrency)
        second_uids = {"WORKER_SANDBOX_UID_FIRST": SECOND_WORKER_UID_FIRST}
        async with another(launched, "executor-worker", str(free_port()), second_uids) as worker:
            await warmed_up(executions)
            print("  one operation-svc:")
            figures["one_operation_per_second"], _ = await burst(
                PlatformCpu(launched, [worker]), executions, count, workers
            )
        second_port = str(free_port())
        second_url = f"http://127.0.0.1:{second_port}"
        async with (
            another(
                launched, "operation-svc", second_port, {"OPERATION_SEED_DEMO": "false"}
            ) as operation,
            another(
                launched,
                "executor-worker",
                str(free_port()),
                second_uids | {"WORKER_OPERATION_API_URL": second_url},
            ) as worker,
            Api(second_url, launched.token) as second_api,
        ):
            executions.apis = itertools.cycle([first_api, second_api])
            await warmed_up(executions)
            print("  two operation-svc:")
            figures["two_operations_per_second"], _ = await burst(
                PlatformCpu(launched, [operation, worker]), executions, count, workers
            )
        await executions.engine.dispose()
    return figures


async def warmed_up(executions: Executions) -> None:
    """A few executions through every process before measuring."""
    await executions.create(WARM_UP_RUNS)
    await executions.last_finished(WARM_UP_RUNS)
