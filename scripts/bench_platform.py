"""The platform as `make bench` measures it: launched as `make run` launches it (on free ports,
on fresh SQLite or PostgreSQL databases), the load generator's client, and the CPU the
platform's processes spend, the PostgreSQL backends serving its databases included."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from scripts.run_platform import SERVICES
from tests.harness import POSTGRES_URL, ROOT, eventually, free_port, fresh_database

# The services with a database, by the name of their *_DATABASE_URL setting's prefix.
DATABASES = ("panel", "operation", "datasource")
# The load generator's own PostgreSQL connections carry this name, so that their backends
# are not counted as the platform's.
BENCH_APPLICATION = "idp-bench"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(name: str, values_ms: list[float]) -> tuple[float, float]:
    """Prints the distribution; returns its p50 and p99 (ms)."""
    p50, p99 = statistics.median(values_ms), percentile(values_ms, 0.99)
    print(
        f"  {name}: n={len(values_ms)} p50={p50:.1f} ms p99={p99:.1f} ms "
        f"max={max(values_ms):.1f} ms"
    )
    return p50, p99


def as_time(value: datetime | str) -> datetime:
    """A timestamp read back from either backend, as an aware UTC datetime (SQLite's text
    is naive UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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


def bench_engine(url: str) -> AsyncEngine:
    """An engine for the load generator's own reads of a service's database."""
    if make_url(url).get_backend_name() != "postgresql":
        return create_async_engine(url)
    return create_async_engine(
        url, connect_args={"server_settings": {"application_name": BENCH_APPLICATION}}
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


def children(parent: int) -> list[tuple[int, str]]:
    """The processes ``parent`` started, with the name of the program each runs."""
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError):
            pid = int(process.name)
            if int(stat_fields(pid)[1]) != parent:
                continue
            argv = (process / "cmdline").read_bytes().split(b"\0")
            interpreted = Path(argv[0].decode()).name.startswith(("node", "python"))
            found.append((pid, Path(argv[1 if interpreted else 0].decode()).name))
    return found


@dataclass(frozen=True)
class Launched:
    process: subprocess.Popen[bytes]
    token: str
    urls: dict[str, str]  # service name -> base URL, as the banner lists them
    databases: dict[str, str]  # "panel", "operation", "datasource" -> database URL

    def pid_of(self, name: str) -> int:
        return next(pid for pid, child in children(self.process.pid) if child == name)

    def environment_of(self, name: str) -> dict[str, str]:
        """The environment the launcher gave a service (to start another one like it)."""
        entries = Path(f"/proc/{self.pid_of(name)}/environ").read_bytes().split(b"\0")
        return dict(entry.decode().split("=", 1) for entry in entries if b"=" in entry)


def launch(data: Path, database_urls: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the platform as `make run` does, on free ports; returns it and its log."""
    prefixes = [prefix for prefix, _, _ in SERVICES.values()]
    env = (
        os.environ
        | {f"{prefix}PORT": str(free_port()) for prefix in [*prefixes, "SQS_"]}
        | {f"{prefix}LOG_LEVEL": "WARNING" for prefix in prefixes}
        | {
            "IDP_DATA_DIR": str(data),
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
async def fresh_databases(backend: str, data: Path) -> AsyncIterator[dict[str, str]]:
    """An empty database for each service that has one (dropped afterwards on PostgreSQL)."""
    async with contextlib.AsyncExitStack() as stack:
        yield {
            service: await stack.enter_async_context(fresh_database(backend, data, service))
            for service in DATABASES
        }


@contextlib.asynccontextmanager
async def platform(backend: str, data: Path) -> AsyncIterator[Launched]:
    """The real multi-process platform on fresh databases, ready, stopped (Ctrl-C) on exit."""
    async with fresh_databases(backend, data) as databases:
        process, log = launch(data, databases)
        try:
            while "Ctrl-C stops everything" not in (banner := log.read_text(errors="replace")):
                if process.poll() is not None:
                    raise RuntimeError(banner[-2000:])
                await asyncio.sleep(0.2)
            token = re.search(r"export TOKEN=(\S+)", banner).group(1)  # type: ignore[union-attr]
            urls = dict(re.findall(r"^  ([a-z-]+)\s+(http://\S+)", banner, re.M))
            yield Launched(process, token, urls, databases)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(60)


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: index 1 is the parent, 11-14 utime, stime,
    and the reaped children's cutime, cstime (in clock ticks)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_seconds(pid: int) -> float:
    """utime + stime (which, unlike the threads' schedstat, keeps the time of threads that
    have ended: aiosqlite and to_thread start and end threads)."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postmaster_seconds(backend: int) -> float:
    """CPU of the PostgreSQL server's main process and of the backends it has reaped (its
    children's time): a connection closed between two snapshots is otherwise not counted,
    and opening one (a process, its caches, a TLS handshake) costs the server more than many
    statements."""
    postmaster = int(stat_fields(backend)[1])
    return sum(int(value) for value in stat_fields(postmaster)[11:15]) / os.sysconf("SC_CLK_TCK")


def backend_seconds(pid: int) -> float:
    """A PostgreSQL backend's on-CPU time in ns (single-threaded: the process's schedstat),
    as the Celery peer counts its backends: utime + stime, truncated to 10 ms ticks per
    process, would understate a sum over a pool's worth of backends."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


async def postgres_backends(database_urls: Sequence[str]) -> list[int]:
    """The pids of the PostgreSQL backends connected to these databases, the load
    generator's own connections left out."""
    urls = [make_url(url) for url in database_urls]
    names = [url.database for url in urls if url.get_backend_name() == "postgresql"]
    if not names:
        return []
    server = make_url(POSTGRES_URL).set(drivername="postgresql")
    connection = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        rows = await connection.fetch(
            "select pid from pg_stat_activity where datname = any($1::text[]) "
            "and application_name <> $2",
            names,
            BENCH_APPLICATION,
        )
    finally:
        await connection.close()
    return [int(row["pid"]) for row in rows]


MACHINE_BUSY, MACHINE_TOTAL = "machine busy", "machine total"
LOAD_GENERATOR = "load generator"
POSTGRES = "postgres backends"


class PlatformCpu:
    """CPU time of the launcher's child processes and any started next to them, of the
    PostgreSQL backends serving the platform's databases (Linux /proc), and of the whole
    machine (/proc/stat), which also counts the commands the worker starts, the kernel and
    this load generator (whose own share is shown)."""

    def __init__(self, launched: Launched, extra: Sequence[tuple[int, str]] = ()) -> None:
        self.launched = launched
        self.extra = extra

    async def snapshot(self) -> dict[tuple[str, int], float]:
        return self.times(await postgres_backends(list(self.launched.databases.values())))

    def times(self, backends: list[int]) -> dict[tuple[str, int], float]:
        seconds: dict[tuple[str, int], float] = {}
        for pid, name in [*children(self.launched.process.pid), *self.extra]:
            with contextlib.suppress(OSError, IndexError):
                seconds[(name, pid)] = process_seconds(pid)
        for pid in backends:
            with contextlib.suppress(OSError, IndexError):
                seconds[(POSTGRES, pid)] = backend_seconds(pid)
        if backends:
            with contextlib.suppress(OSError, IndexError):
                seconds[(POSTGRES, 0)] = postmaster_seconds(backends[0])
        # The machine's busy and total time, summed over its CPUs (first line of /proc/stat).
        jiffies = [int(value) for value in Path("/proc/stat").read_text().split()[1:11]]
        idle = jiffies[3] + jiffies[4]  # idle, iowait
        ticks = os.sysconf("SC_CLK_TCK")
        seconds[(MACHINE_BUSY, 0)] = (sum(jiffies) - idle) / ticks
        seconds[(MACHINE_TOTAL, 0)] = sum(jiffies) / ticks
        seconds[(LOAD_GENERATOR, 0)] = sum(os.times()[:2])
        return seconds

    @staticmethod
    def report(
        before: dict[tuple[str, int], float], after: dict[tuple[str, int], float], count: int
    ) -> float:
        """Prints the CPU per execution of each process and the machine's; returns the
        platform's total (ms), its database's included. A process that appeared in between
        counts from zero; one that ended in between is left out, but for PostgreSQL's
        backends, counted from their snapshot to their end (``postmaster_seconds``)."""
        spent: dict[str, float] = defaultdict(float)
        for (name, pid), value in after.items():
            spent[name] += value - before.get((name, pid), 0.0)
        for (name, pid), value in before.items():
            if name == POSTGRES and (name, pid) not in after:  # ended: counted whole since
                spent[name] -= value
        busy, total = spent.pop(MACHINE_BUSY), spent.pop(MACHINE_TOTAL)
        load = spent.pop(LOAD_GENERATOR)
        platform_ms = 1000 * sum(spent.values()) / count
        parts = ", ".join(f"{name} {1000 * cpu / count:.1f}" for name, cpu in spent.items())
        print(f"  CPU per execution: {platform_ms:.1f} ms ({parts})")
        print(
            f"  machine-wide CPU per execution: {1000 * busy / count:.1f} ms "
            f"(the machine was {100 * busy / total:.0f}% busy; the load generator's share "
            f"{1000 * load / count:.1f} ms)"
        )
        return platform_ms
