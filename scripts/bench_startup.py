"""Startup and idle memory of each service (``make bench`` section "startup"): the services
started one after the other, as `make run` configures them (its databases migrated first, as
a deploy does; the local SQS server with the queues made), each timed from its launch to its
/readyz answering 200; then, all idle for a while, each one's resident memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import aiohttp

from scripts.bench_platform import fresh_databases
from scripts.run_platform import BIN, SERVICES, environment
from tests.harness import LocalSQSServer, free_port, write_queues_file

IDLE_SECONDS = 3
READY_POLL_SECONDS = 0.02
READY_TIMEOUT_SECONDS = 60


def resident_megabytes(pid: int) -> float:
    """VmRSS (kB) from /proc/<pid>/status, in MB of 10^6 bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    kilobytes = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(kilobytes) * 1024 / 1e6


async def ready_after(process: asyncio.subprocess.Process, url: str, launched: float) -> float:
    """Seconds from ``launched`` to the first 200 from ``url``/readyz."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as client:
        while time.perf_counter() - launched < READY_TIMEOUT_SECONDS:
            if process.returncode is not None:
                raise RuntimeError(f"{url}: the service exited with {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with client.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return time.perf_counter() - launched
            await asyncio.sleep(READY_POLL_SECONDS)
    raise TimeoutError(f"{url} not ready after {READY_TIMEOUT_SECONDS} s")


async def migrated(env: dict[str, str], log_path: Path) -> None:
    """The services' databases migrated (at once, as `make run` does)."""
    with log_path.open("ab") as log:
        migrations = [
            await asyncio.create_subprocess_exec(
                BIN / name, "migrate", env=env, stdout=log, stderr=log
            )
            for name, (_, _, has_database) in SERVICES.items()
            if has_database
        ]
    if any(await asyncio.gather(*(migration.wait() for migration in migrations))):
        raise RuntimeError(f"a migration failed: see {log_path}")


async def startup(backend: str, data: Path) -> dict[str, float]:
    """Per service, the seconds to ready and the idle RSS (MB), printed and returned as
    ``ready_s:<service>`` and ``rss_mb:<service>``."""
    ports = {name: free_port() for name in SERVICES}
    os.makedirs(data / "logs")
    os.makedirs(data / "secrets" / "demo")  # the demo tenant's files, as `make run` makes
    sqs = LocalSQSServer(queues_file=write_queues_file(data / "queues.json", ""))
    sqs.start()
    figures: dict[str, float] = {}
    try:
        async with fresh_databases(backend, data) as databases:
            env = environment(data, sqs.port, ports) | {
                f"{service.upper()}_DATABASE_URL": url for service, url in databases.items()
            }
            await migrated(env, data / "logs" / "migrations.log")
            running: list[asyncio.subprocess.Process] = []
            try:
                for name in SERVICES:
                    with (data / "logs" / f"{name}.log").open("ab") as log:
                        launched = time.perf_counter()
                        process = await asyncio.create_subprocess_exec(
                            BIN / name, "serve", env=env, stdout=log, stderr=log
                        )
                    running.append(process)
                    url = f"http://127.0.0.1:{ports[name]}"
                    figures[f"ready_s:{name}"] = await ready_after(process, url, launched)
                await asyncio.sleep(IDLE_SECONDS)
                for name, process in zip(SERVICES, running, strict=True):
                    figures[f"rss_mb:{name}"] = resident_megabytes(process.pid)
                    print(
                        f"  {name}: ready {figures[f'ready_s:{name}']:.2f} s after its launch, "
                        f"{figures[f'rss_mb:{name}']:.0f} MB resident once idle"
                    )
            finally:
                for process in reversed(running):
                    with contextlib.suppress(ProcessLookupError):
                        process.terminate()
                    await process.wait()
    finally:
        sqs.stop()
    return figures
