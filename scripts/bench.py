"""Benchmark of the message bus and the vertical slice (prints figures; not a test).

1. Outbox latency: from the commit of a business transaction holding an event to the moment
   a consumer on the real local SQS server handles it (relay woken by the commit).
2. End to end, on the real multi-process platform started as `make run` starts it: panel-svc
   accepts a submission -> operation-svc -> the worker runs `echo` -> back to panel-svc as
   `succeeded`. Latency from the submission's creation to its final update (server-side
   timestamps read from panel-svc's database, so polling adds no load) and executions/s.
3. Trivial executions (`true`) through operation-svc's API and one worker process: latency one
   at a time (the worker's receive -> spawn histogram), a burst created by concurrent clients
   while the worker runs them, and a backlog queued while the worker is paused, then drained.

4. Command output (``scripts/bench_output.py``): MiB/s and the worker's CPU per MiB for a
   flood drained past the cap and for lines forwarded with masking, and a trivial run's
   latency beside a flooding run.

Each load prints the CPU each process spent per execution and the machine-wide CPU (which
also counts the commands the worker starts, the kernel and this load generator).

The worker runs 32 executions at once (``--worker-slots``): a trivial run spends most of its
slot waiting for its claim's round trip through a loaded operation-svc (~85 ms of ~110 ms
with 16 slots), so under a burst the slots, not the CPU, set the worker's rate.

Usage: .venv/bin/python scripts/bench.py [--backend sqlite|postgres] [--events N]
       [--submissions N] [--concurrency N] [--executions N] [--worker-slots N]
       [--output-megabytes N] [--only outbox|panel|worker|output]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from idp_common.db import Database
from idp_common.loops import Supervisor
from idp_common.messaging.envelope import Event
from idp_common.messaging.outbox import OutboxRelay, add_event
from idp_common.messaging.topology import PANEL_SUBMISSIONS
from idp_common.runtime import open_messaging
from idp_common.telemetry import configure_logging
from operation_svc.models import messaging
from scripts.bench_output import output_throughput
from tests.harness import (
    ROOT,
    LocalSQSServer,
    eventually,
    free_port,
    fresh_database,
    migrate,
    sqs_settings,
)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(name: str, values_ms: list[float]) -> None:
    print(
        f"  {name}: n={len(values_ms)} p50={statistics.median(values_ms):.1f} ms "
        f"p99={percentile(values_ms, 0.99):.1f} ms max={max(values_ms):.1f} ms"
    )


class Api:
    """The load generator's JSON client. aiohttp rather than httpx: the load generator shares
    the machine it measures, and httpx spent 0.7 ms of CPU per request one at a time and
    1.5 ms with 20 in flight, aiohttp 0.1-0.2 ms (measured here against a trivial server)."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.session = aiohttp.ClientSession(
            base_url, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
        )

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.session.close()

    async def get(self, path: str) -> Any:
        async with self.session.get(path) as response:
            response.raise_for_status()
            return await response.json()

    async def post(self, path: str, body: Any) -> Any:
        async with self.session.post(path, json=body) as response:
            response.raise_for_status()
            return await response.json()


async def _arrived(received: dict[str, float], event_id: str) -> bool:
    return event_id in received


async def outbox_latency(backend: str, tmp: Path, server: LocalSQSServer, count: int) -> None:
    received: dict[str, float] = {}

    async def handler(event: Event) -> None:
        received[event.id] = time.perf_counter()

    async with (
        fresh_database(backend, tmp, "operation") as url,
        open_messaging(sqs_settings(server)) as bus,
    ):
        await migrate(url, "operation")
        db = Database(url)
        relay = OutboxRelay(db, messaging, bus.publisher, poll_seconds=5)
        committed: dict[str, float] = {}
        async with Supervisor([bus.consumer(PANEL_SUBMISSIONS, handler), relay]).running():
            await asyncio.sleep(0.3)
            for _ in range(count):
                event = Event(type="bench.happened", source="urn:bench", tenant="t", data={})
                async with db.transaction() as session:
                    add_event(session, messaging, PANEL_SUBMISSIONS, event)
                committed[event.id] = time.perf_counter()
                await eventually(partial(_arrived, received, event.id), timeout=10)
        await db.dispose()
    report("commit -> consumer handles", [(received[k] - v) * 1000 for k, v in committed.items()])


@dataclass(frozen=True)
class Launched:
    process: subprocess.Popen[bytes]
    token: str
    urls: dict[str, str]  # service name -> base URL, as the banner lists them

    def pid_of(self, name: str) -> int:
        return next(pid for pid, child in children(self.process.pid) if child == name)


def children(parent: int) -> list[tuple[int, str]]:
    """The processes ``parent`` started, with the name of the program each runs."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != parent:  # field 4: ppid
                continue
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
            interpreted = Path(argv[0].decode()).name.startswith(("node", "python"))
            found.append((int(stat.parent.name), Path(argv[1 if interpreted else 0].decode()).name))
    return found


def launch(data: Path, database_urls: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the platform as `make run` does, on free ports; returns it and its log."""
    ports = {name: free_port() for name in ("PANEL", "OPERATION", "DATASOURCE", "WORKER", "SQS")}
    env = (
        os.environ
        | {f"{name}_PORT": str(port) for name, port in ports.items()}
        | {
            "IDP_DATA_DIR": str(data),
            "PANEL_LOG_LEVEL": "WARNING",
            "OPERATION_LOG_LEVEL": "WARNING",
            "DATASOURCE_LOG_LEVEL": "WARNING",
            "WORKER_LOG_LEVEL": "WARNING",
            # One benchmark principal submits far above any per-user limit.
            "RATELIMIT_SUBMISSIONS": "1000000/minute",
            "RATELIMIT_EXECUTIONS": "1000000/minute",
        }
        | {f"{service.upper()}_DATABASE_URL": url for service, url in database_urls.items()}
    )
    log = data / "launcher.log"
    data.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, str(ROOT / "scripts" / "run_platform.py")],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log


@contextlib.asynccontextmanager
async def platform(data: Path, database_urls: dict[str, str]) -> AsyncIterator[Launched]:
    """The real multi-process platform, ready, stopped (Ctrl-C) on exit."""
    process, log = launch(data, database_urls)
    try:
        while "Ctrl-C stops everything" not in (banner := log.read_text(errors="replace")):
            if process.poll() is not None:
                raise RuntimeError(banner[-2000:])
            await asyncio.sleep(0.2)
        token = re.search(r"export TOKEN=(\S+)", banner).group(1)  # type: ignore[union-attr]
        urls = dict(re.findall(r"^  ([a-z-]+)\s+(http://\S+)", banner, re.M))
        yield Launched(process, token, urls)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)


async def end_to_end(backend: str, tmp: Path, count: int, concurrency: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        urls = {}
        if backend == "postgres":
            for service in ("panel", "operation", "datasource"):
                urls[service] = await stack.enter_async_context(
                    fresh_database(backend, tmp, service)
                )
        launched = await stack.enter_async_context(platform(tmp / "platform", urls))
        await submit_and_measure(
            PlatformCpu(launched.process),
            launched.urls["panel-svc"],
            launched.token,
            urls.get("panel") or f"sqlite+aiosqlite:///{tmp}/platform/panel-svc.db",
            count,
            concurrency,
        )


async def submit_and_measure(
    cpu: PlatformCpu, panel_url: str, token: str, panel_database: str, count: int, concurrency: int
) -> None:
    gate = asyncio.Semaphore(concurrency)
    async with Api(panel_url, token) as client:
        panel_id = (await client.get("/api/v1/panels"))["items"][0]["id"]

        async def submit(n: int) -> None:
            async with gate:
                await client.post(
                    f"/api/v1/panels/{panel_id}/submissions", {"data": {"message": f"b{n}"}}
                )

        cpu_before = cpu.snapshot()
        started = time.perf_counter()
        await asyncio.gather(*(submit(n) for n in range(count)))
        accepted = time.perf_counter() - started
    engine = create_async_engine(panel_database)
    rows = await rows_when_finished(
        engine,
        "select count(*) from submissions where status = 'succeeded'",
        count,
        "select status, created_at, updated_at from submissions",
    )
    cpu.report(cpu_before, cpu.snapshot(), count)
    await engine.dispose()
    created = [as_time(row.created_at) for row in rows]
    finished = [as_time(row.updated_at) for row in rows]
    report(
        "submission accepted -> succeeded (server-side)",
        [(f - c).total_seconds() * 1000 for c, f in zip(created, finished, strict=True)],
    )
    span = (max(finished) - min(created)).total_seconds()
    print(
        f"  accepted {count} submissions in {accepted:.1f} s ({count / accepted:.0f}/s); "
        f"all succeeded in {span:.1f} s: {count / span:.1f} executions/s end to end"
    )


async def rows_when_finished(
    engine: AsyncEngine, count_query: str, expected: int, rows_query: str
) -> list[Any]:
    """The rows of ``rows_query`` once ``count_query`` counts ``expected``: counted while
    waiting and read once, as reading every row a few times a second would load the machine
    the benchmark measures."""

    async def all_finished() -> bool:
        async with engine.connect() as connection:
            return int((await connection.execute(text(count_query))).scalar_one()) >= expected

    await eventually(all_finished, timeout=600, interval=0.2)
    async with engine.connect() as connection:
        return list((await connection.execute(text(rows_query))).all())


SEQUENTIAL_RUNS = 50
UNLOADED_POLL_SECONDS = 0.02


async def finished_one(api: Api, execution_id: str) -> bool:
    status = (await api.get(f"/api/v1/executions/{execution_id}"))["status"]
    return status in ("succeeded", "failed")


class Executions:
    """Trivial executions (`true`) created through operation-svc's API, and their rows."""

    def __init__(self, api: Api, database: str, concurrency: int) -> None:
        self.api = api
        self.engine = create_async_engine(database)
        self.gate = asyncio.Semaphore(concurrency)
        self.created = 0

    async def create_one(self) -> str:
        """Create one execution (within the client limit); returns its id."""
        async with self.gate:
            created = await self.api.post("/api/v1/executions", {"template": "noop"})
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


async def worker_throughput(tmp: Path, count: int, concurrency: int, worker_slots: int) -> None:
    """Trivial executions (`true`) through operation-svc's API and one worker process:
    latency one at a time, a burst of concurrent clients, and a backlog drained."""
    os.environ["OPERATION_ALLOWED_EXECUTABLES"] = '["true", "echo"]'
    os.environ["WORKER_ALLOWED_EXECUTABLES"] = '["true", "echo"]'
    async with (
        platform(tmp / "worker-bench", {}) as launched,
        Api(launched.urls["operation-svc"], launched.token) as api,
    ):
        await api.post(
            "/api/v1/templates", {"slug": "noop", "name": "noop", "command_template": "true"}
        )
        executions = Executions(
            api, f"sqlite+aiosqlite:///{tmp}/worker-bench/operation-svc.db", concurrency
        )
        await unloaded_latency(api, executions, launched.urls["executor-worker"])
        await burst(launched, executions, count, worker_slots)
        await drained_backlog(launched, executions, count, worker_slots)
        await executions.engine.dispose()


async def unloaded_latency(api: Api, executions: Executions, worker: str) -> None:
    for _ in range(SEQUENTIAL_RUNS):  # one at a time: latency without load
        execution_id = await executions.create_one()
        # Not much faster: each poll costs operation-svc a few ms of CPU, and the latencies
        # reported come from the worker's histograms, not from polling.
        await eventually(partial(finished_one, api, execution_id), interval=UNLOADED_POLL_SECONDS)
    async with aiohttp.ClientSession() as client, client.get(f"{worker}/metrics") as response:
        metrics = await response.text()
    for metric, label in (
        ("idp_worker_receive_to_spawn_seconds", "worker receive -> process spawned"),
        ("idp_worker_queue_to_start_seconds", "queued (event created) -> process spawned"),
    ):
        p50, p99 = (histogram_quantile(metrics, metric, q) * 1000 for q in (0.5, 0.99))
        print(
            f"  unloaded ({SEQUENTIAL_RUNS} one at a time) {label}: "
            f"p50 ~ {p50:.1f} ms, p99 ~ {p99:.1f} ms (worker's histogram)"
        )


async def burst(launched: Launched, executions: Executions, count: int, slots: int) -> None:
    """Concurrent clients create executions while the worker runs them: the API intake,
    the worker and operation-svc's handling of the results all share the machine."""
    print(f"  burst of {count}, created while the worker runs them:")
    cpu = PlatformCpu(launched.process)
    before = cpu.snapshot()
    accepted = await executions.create(count)
    rows = await executions.last_finished(count)
    cpu.report(before, cpu.snapshot(), count)
    report(
        "created -> claimed by the worker (server-side)",
        [(as_time(r.started_at) - as_time(r.created_at)).total_seconds() * 1000 for r in rows],
    )
    span = max(as_time(r.finished_at) for r in rows) - min(as_time(r.created_at) for r in rows)
    print(
        f"  accepted {count} in {accepted:.1f} s ({count / accepted:.0f}/s); all finished in "
        f"{span.total_seconds():.1f} s: {count / span.total_seconds():.1f} executions/s with "
        f"one worker ({slots} slots)"
    )


async def drained_backlog(
    launched: Launched, executions: Executions, count: int, slots: int
) -> None:
    """Executions created while the worker is paused (SIGSTOP), their jobs all queued, then
    run once it resumes: claim, run, results and their recording in operation-svc, without
    the API intake sharing the machine."""
    print(f"  backlog of {count} queued jobs, drained by the worker once it resumes:")
    worker = launched.pid_of("executor-worker")
    os.kill(worker, signal.SIGSTOP)
    try:
        await executions.create(count)
        await eventually(executions.jobs_queued, timeout=120, interval=0.2)
    finally:
        cpu = PlatformCpu(launched.process)
        before = cpu.snapshot()
        resumed = datetime.now(UTC)
        os.kill(worker, signal.SIGCONT)
    rows = await executions.last_finished(count)
    cpu.report(before, cpu.snapshot(), count)
    span = (max(as_time(r.finished_at) for r in rows) - resumed).total_seconds()
    print(
        f"  all {count} finished {span:.1f} s after the worker resumed: "
        f"{count / span:.1f} executions/s with one worker ({slots} slots)"
    )


def histogram_quantile(metrics: str, name: str, quantile: float) -> float:
    """Prometheus-style quantile estimate (linear within the bucket)."""
    buckets = sorted(
        (float("inf") if le == "+Inf" else float(le), float(count))
        for le, count in re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', metrics, re.M)
    )
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


class PlatformCpu:
    """CPU time of the launcher's child processes (Linux /proc), to split a burst's cost, and
    of the whole machine (/proc/stat), which also counts the commands the worker starts, the
    kernel and this load generator (whose own share is shown)."""

    def __init__(self, launcher: subprocess.Popen[bytes]) -> None:
        self.launcher_pid = launcher.pid
        self.ticks = os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        for pid, name in children(self.launcher_pid):
            with contextlib.suppress(OSError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                seconds[name] = (int(fields[11]) + int(fields[12])) / self.ticks
        # The machine's busy and total time, summed over its CPUs (first line of /proc/stat).
        jiffies = [int(value) for value in Path("/proc/stat").read_text().split()[1:11]]
        idle = jiffies[3] + jiffies[4]  # idle, iowait
        seconds[MACHINE_BUSY] = (sum(jiffies) - idle) / self.ticks
        seconds[MACHINE_TOTAL] = sum(jiffies) / self.ticks
        seconds[LOAD_GENERATOR] = sum(os.times()[:2])
        return seconds

    @staticmethod
    def report(before: dict[str, float], after: dict[str, float], count: int) -> None:
        spent = {name: after[name] - before.get(name, 0.0) for name in after}
        busy, total = spent.pop(MACHINE_BUSY), spent.pop(MACHINE_TOTAL)
        load = spent.pop(LOAD_GENERATOR)
        parts = ", ".join(f"{name} {1000 * cpu / count:.1f}" for name, cpu in spent.items())
        print(f"  CPU per execution: {1000 * sum(spent.values()) / count:.1f} ms ({parts})")
        print(
            f"  machine-wide CPU per execution: {1000 * busy / count:.1f} ms "
            f"(the machine was {100 * busy / total:.0f}% busy; the load generator's share "
            f"{1000 * load / count:.1f} ms)"
        )


MACHINE_BUSY, MACHINE_TOTAL = "machine busy", "machine total"
LOAD_GENERATOR = "load generator"


def as_time(value: datetime | str) -> datetime:
    """A timestamp read back from either backend, as an aware UTC datetime (SQLite's text
    is naive UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--executions", type=int, default=500)
    parser.add_argument("--worker-slots", type=int, default=32)
    parser.add_argument("--output-megabytes", type=int, default=200)
    parser.add_argument("--only", choices=["outbox", "panel", "worker", "output"], default=None)
    args = parser.parse_args()
    os.environ["WORKER_CONCURRENCY"] = str(args.worker_slots)
    configure_logging("bench", "WARNING")
    server = LocalSQSServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if args.only in (None, "outbox"):
                print(f"Outbox relay latency ({args.backend}, one event per transaction):")
                await outbox_latency(args.backend, Path(tmp), server, args.events)
            if args.only in (None, "panel"):
                print(
                    f"Panel submissions end to end, real multi-process platform ({args.backend}, "
                    f"{args.concurrency} concurrent clients, one worker with "
                    f"{args.worker_slots} slots):"
                )
                await end_to_end(args.backend, Path(tmp), args.submissions, args.concurrency)
            if args.only in (None, "worker"):
                print(
                    f"Trivial executions through operation-svc and one worker process (sqlite, "
                    f"{args.concurrency} concurrent clients):"
                )
                await worker_throughput(
                    Path(tmp), args.executions, args.concurrency, args.worker_slots
                )
            if args.only in (None, "output"):
                print("Command output read by the worker's runner (this process's CPU only):")
                await output_throughput(args.output_megabytes)
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
