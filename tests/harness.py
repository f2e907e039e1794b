"""Test harness: real local SQS server, real databases, the services on real ports."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from idp_common.auth import Role, mint_token
from idp_common.cli import server_config
from idp_common.db import Database
from idp_common.messaging.signing import MessageSigner
from idp_common.migrations import upgrade_to_head
from idp_common.sealing import new_keypair
from idp_common.settings import AuthSettings, RateLimitSettings, SealingSettings, SQSSettings

ROOT = Path(__file__).resolve().parent.parent
SQS_SERVER_SCRIPT = ROOT / "tools" / "local-sqs" / "server.mjs"
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AUTH = AuthSettings(jwt_secret="test-secret-" + "0123456789abcdef" * 4)
SIGNER = MessageSigner.of(AUTH)  # how the services under test sign their messages
SEALING_PUBLIC_KEY, SEALING_PRIVATE_KEY = new_keypair()
SEALING = SealingSettings(public_key=SEALING_PUBLIC_KEY)
MIGRATIONS = {
    "panel": "panel_svc:migrations",
    "operation": "operation_svc:migrations",
    "datasource": "datasource_svc:migrations",
}
T = TypeVar("T")


PORTS_PER_TEST_PROCESS = 1000


def _port_block() -> Iterator[int]:
    """Ports below the kernel's ephemeral range (32768 up), so that no client connection and
    no bind to port 0 can take one between the test choosing it and a service binding it.
    Each xdist process walks a block of its own, from a random start."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")) % 12
    first = 20000 + worker * PORTS_PER_TEST_PROCESS
    start = random.randrange(PORTS_PER_TEST_PROCESS)
    block = [
        first + (start + step) % PORTS_PER_TEST_PROCESS for step in range(PORTS_PER_TEST_PROCESS)
    ]
    return itertools.cycle(block)


_PORTS = _port_block()


def free_port() -> int:
    for _, port in zip(range(PORTS_PER_TEST_PROCESS), _PORTS, strict=False):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in this test process's block of {PORTS_PER_TEST_PROCESS}")


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


class LocalSQSServer:
    """The project's local-aws-sqs server as a child process."""

    def __init__(
        self,
        port: int | None = None,
        queues_file: Path | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.queues_file = queues_file
        self.state_file = state_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = ["node", str(SQS_SERVER_SCRIPT), "--port", str(self.port)]
        if self.queues_file:
            command += ["--queues", str(self.queues_file)]
        if self.state_file:
            command += ["--state", str(self.state_file)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def kill(self) -> None:
        """kill -9: no last snapshot of its state."""
        if self.process:
            self.process.kill()
            self.process.wait(10)
            self.process = None


def sqs_settings(server: LocalSQSServer, prefix: str | None = None) -> SQSSettings:
    return SQSSettings(
        endpoint_url=server.url,
        region="us-east-1",
        access_key_id="test",
        secret_access_key="test",
        create_queues=True,
        queue_prefix=prefix if prefix is not None else f"t{uuid.uuid4().hex[:10]}-",
        wait_time_seconds=20,
        retry_base_seconds=0,
    )


@asynccontextmanager
async def _postgres(database: str | None = None) -> AsyncIterator[asyncpg.Connection]:
    """A connection to ``database``, or to the server's (to create and drop databases)."""
    url = make_url(POSTGRES_URL).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        yield connection
    finally:
        await connection.close()


def _postgres_url(database: str) -> str:
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path, name: str) -> AsyncIterator[str]:
    """An empty database of its own: a new PostgreSQL database or a new SQLite file."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}"
        return
    database = f"idp_{name}_{uuid.uuid4().hex[:10]}"
    async with _postgres() as admin:
        await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        yield _postgres_url(database)
    finally:
        async with _postgres() as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


async def migrate(url: str, service: str) -> None:
    await asyncio.to_thread(upgrade_to_head, url, MIGRATIONS[service])


class SessionDatabases:
    """The databases the session's tests share. Each service's schema is migrated once per
    backend, into a template the tests get copies of: a file copy for SQLite. PostgreSQL
    databases (copies made with ``CREATE DATABASE ... TEMPLATE``) are emptied after a test
    and kept for the next one: each ``DROP DATABASE`` forces a checkpoint, which flushes
    every copy made since the last one, and took seconds with several tests at once."""

    def __init__(self) -> None:
        self._templates: dict[tuple[str, str], str] = {}
        self._lock = asyncio.Lock()
        self._folder: Path | None = None
        self._idle: dict[str, list[str]] = defaultdict(list)

    async def template(self, backend: str, service: str) -> str:
        async with self._lock:
            if (backend, service) not in self._templates:
                self._templates[backend, service] = await self._migrate(backend, service)
            return self._templates[backend, service]

    async def _migrate(self, backend: str, service: str) -> str:
        if backend == "sqlite":
            self._folder = self._folder or Path(tempfile.mkdtemp(prefix="idp-schemas-"))
            path = self._folder / f"{service}.db"
            await migrate(f"sqlite+aiosqlite:///{path}", service)
            return str(path)
        database = f"idp_schema_{service}_{uuid.uuid4().hex[:10]}"
        async with _postgres() as admin:
            await admin.execute(f'CREATE DATABASE "{database}"')
        await migrate(_postgres_url(database), service)
        return database

    async def take(self, service: str) -> str:
        """An empty PostgreSQL database with ``service``'s schema; its name."""
        if self._idle[service]:
            return self._idle[service].pop()
        template = await self.template("postgres", service)
        database = f"idp_{service}_{uuid.uuid4().hex[:10]}"
        async with _postgres() as admin:
            await admin.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
        return database

    async def give_back(self, service: str, database: str) -> None:
        """Emptied (its other connections ended, its tables truncated), for a later test."""
        async with _postgres(database) as connection:
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            tables = await connection.fetch(
                "SELECT tablename FROM pg_tables"
                " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
            await connection.execute("TRUNCATE " + ", ".join(f'"{row[0]}"' for row in tables))
        self._idle[service].append(database)

    async def close(self) -> None:
        """Drops what the session made: it is over."""
        databases = [name for (backend, _), name in self._templates.items() if backend != "sqlite"]
        databases += [name for idle in self._idle.values() for name in idle]
        if databases:
            async with _postgres() as admin:
                for database in databases:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        self._templates.clear()
        self._idle.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder)
            self._folder = None


DATABASES = SessionDatabases()


@asynccontextmanager
async def migrated_copy(
    backend: str, tmp_path: Path, service: str, name: str | None = None
) -> AsyncIterator[str]:
    """A database of its own with ``service``'s schema at head; its URL."""
    if backend == "sqlite":
        path = tmp_path / f"{name or service}.db"
        if not path.exists():  # else reopened, as after a restart
            shutil.copyfile(await DATABASES.template(backend, service), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    database = await DATABASES.take(service)
    try:
        yield _postgres_url(database)
    finally:
        await DATABASES.give_back(service, database)


def token(
    tenant: str = "acme",
    roles: tuple[Role, ...] = ("admin",),
    subject: str = "alice",
    groups: tuple[str, ...] = (),
) -> str:
    return mint_token(AUTH, subject=subject, tenant=tenant, roles=roles, groups=groups)


def service_headers() -> dict[str, str]:
    token = mint_token(AUTH, subject="worker:test", tenant="*", roles=["service"])
    return {"Authorization": f"Bearer {token}"}


def auth_headers(
    tenant: str = "acme",
    roles: tuple[Role, ...] = ("admin",),
    subject: str = "alice",
    groups: tuple[str, ...] = (),
) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(tenant, roles, subject, groups)}"}


# httpx loads the CA bundle into a new TLS context for each client (25 ms of CPU); the
# clients of the services under test, plain HTTP on loopback, share this one.
_TLS = ssl.create_default_context()


def assert_field_refused(response: httpx.Response, field: str, code: str) -> None:
    """A 422 problem naming ``field``, and no other, refused with ``code``."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [(error["field"], error["code"]) for error in errors] == [(field, code)]


def local_client(url: str, timeout: float = 30) -> httpx.AsyncClient:
    """A client of a service the test runs. The full suite runs three test processes and
    Chromium on two cores, so a request to services sharing a test's event loop can wait
    seconds for the CPU (seen: 10 s, once in a few runs); no test times anything with it."""
    return httpx.AsyncClient(base_url=url, timeout=timeout, verify=_TLS)


class ServedApp:
    """An ASGI app served by uvicorn on a free port inside the test's event loop. The port is
    bound when the app is made (its URL goes into other apps' settings before it starts),
    so no other test process can take it in between."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        self.server = uvicorn.Server(server_config(app, "127.0.0.1", self.port, lifespan="on"))
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ServedApp:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.socket]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
                raise RuntimeError("server stopped during startup")
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task
        self.socket.close()


@asynccontextmanager
async def served_together(*waves: Sequence[ServedApp]) -> AsyncIterator[None]:
    """Every app started at once; on exit, stopped a wave at a time, the last wave first, the
    apps of a wave at once. uvicorn takes 0.1-0.4 s to start or stop an app, mostly waiting."""

    async def stop(wave: list[ServedApp]) -> None:
        await asyncio.gather(*(app.__aexit__() for app in wave))

    apps = [app for wave in waves for app in wave]
    outcomes = await asyncio.gather(*(app.__aenter__() for app in apps), return_exceptions=True)
    async with contextlib.AsyncExitStack() as stack:
        for wave in waves:
            stack.push_async_callback(stop, [app for app in wave if app.server.started])
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        yield


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 15.0, interval: float = 0.05
) -> T:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def wait_until(condition: Callable[[], object], timeout: float = 15.0) -> None:
    """Poll a plain (not awaitable) ``condition`` until it holds."""

    async def probe() -> bool:
        return bool(condition())

    await eventually(probe, timeout=timeout)


@dataclass
class Platform:
    panel: httpx.AsyncClient
    operation: httpx.AsyncClient
    worker: httpx.AsyncClient | None
    sqs: SQSSettings
    database_urls: dict[str, str] = field(default_factory=dict)
    datasource: httpx.AsyncClient | None = None


@asynccontextmanager
async def migrated_database(backend: str, tmp_path: Path, service: str) -> AsyncIterator[Database]:
    """A fresh database with ``service``'s schema, disposed of on exit."""
    async with migrated_copy(backend, tmp_path, service) as url:
        db = Database(url)
        try:
            yield db
        finally:
            await db.dispose()


def write_queues_file(path: Path, prefix: str) -> Path:
    from idp_common.messaging.topology import create_queue_inputs

    path.write_text(json.dumps(create_queue_inputs(prefix)))
    return path


def _common_settings(sqs: SQSSettings, allowed_executables: list[str] | None) -> dict[str, Any]:
    common: dict[str, Any] = {"environment": "test", "sqs": sqs, "auth": AUTH}
    # Each settings class reads its own: the public key for panel-svc and operation-svc,
    # the private one for the worker only.
    common |= {"sealing": SEALING, "sealing_private_key": SEALING_PRIVATE_KEY}
    if allowed_executables is not None:
        common["allowed_executables"] = allowed_executables
    return common


@asynccontextmanager
async def worker_for(
    platform: Platform, allowed_executables: list[str], concurrency: int = 4
) -> AsyncIterator[httpx.AsyncClient]:
    """A worker started later than the platform (``running_platform(with_worker=False)``)."""
    from executor_worker.app import create_app as create_worker
    from executor_worker.config import WorkerSettings

    common = _common_settings(platform.sqs, allowed_executables)
    operation_url = str(platform.operation.base_url).rstrip("/")
    common["auth"] = AUTH.model_copy(update={"api_key_service_url": operation_url})
    settings = WorkerSettings(operation_api_url=operation_url, concurrency=concurrency, **common)
    async with (
        ServedApp(create_worker(settings)) as worker,
        local_client(worker.url) as client,
    ):
        yield client


@asynccontextmanager
async def running_platform(
    backend: str,
    tmp_path: Path,
    server: LocalSQSServer,
    *,
    worker_concurrency: int = 4,
    allowed_executables: list[str] | None = None,
    operation: dict[str, Any] | None = None,
    panel: dict[str, Any] | None = None,
    worker: dict[str, Any] | None = None,
    with_worker: bool = True,
    with_datasource: bool = False,
    rate_limit: RateLimitSettings | None = None,
) -> AsyncIterator[Platform]:
    """panel-svc, operation-svc and the worker (and datasource-svc when asked) on real ports,
    real DBs and the real queue. panel-svc and datasource-svc verify API keys at operation-svc."""
    from datasource_svc.app import create_app as create_datasource
    from datasource_svc.config import DatasourceSettings
    from executor_worker.app import create_app as create_worker
    from executor_worker.config import WorkerSettings
    from operation_svc.app import create_app as create_operation
    from operation_svc.config import OperationSettings
    from panel_svc.app import create_app as create_panel
    from panel_svc.config import PanelSettings

    sqs = sqs_settings(server)
    common = _common_settings(sqs, allowed_executables)
    if rate_limit is not None:
        common["rate_limit"] = rate_limit
    async with contextlib.AsyncExitStack() as stack:
        urls = {}
        for service in ("panel", "operation", "datasource")[: 3 if with_datasource else 2]:
            urls[service] = await stack.enter_async_context(
                migrated_copy(backend, tmp_path, service)
            )
        operation_app = ServedApp(
            create_operation(
                OperationSettings(database_url=urls["operation"], **common, **(operation or {}))
            )
        )
        common["auth"] = AUTH.model_copy(update={"api_key_service_url": operation_app.url})
        panel_extra: dict[str, Any] = {"operation_api_url": operation_app.url, **(panel or {})}
        services = [operation_app]
        datasource_app = None
        if with_datasource:
            datasource_app = ServedApp(
                create_datasource(
                    DatasourceSettings(
                        database_url=urls["datasource"],
                        outbound_allowed_hosts=["127.0.0.1"],
                        **common,
                    )
                )
            )
            services.append(datasource_app)
            panel_extra["datasource_api_url"] = datasource_app.url
        panel_app = ServedApp(
            create_panel(PanelSettings(database_url=urls["panel"], **common, **panel_extra))
        )
        services.append(panel_app)
        if "panel_api_url" not in (operation or {}):
            # Each of the two needs the other's URL, and a ServedApp binds its port when it
            # is made: operation-svc, made first, reads its settings only when it starts, so
            # it is given panel-svc's URL (its panel schedules' target) now, before that.
            state = operation_app.app.state
            state.settings = state.settings.model_copy(update={"panel_api_url": panel_app.url})
        waves = [services]
        worker_app = None
        if with_worker:
            worker_settings = WorkerSettings(
                operation_api_url=operation_app.url,
                concurrency=worker_concurrency,
                **common,
                **(worker or {}),
            )
            worker_app = ServedApp(create_worker(worker_settings))
            waves.append([worker_app])  # stopped before the services its last reports go to
        await stack.enter_async_context(served_together(*waves))
        clients = {
            app: await stack.enter_async_context(local_client(app.url))
            for wave in waves
            for app in wave
        }
        yield Platform(
            clients[panel_app],
            clients[operation_app],
            clients[worker_app] if worker_app else None,
            sqs=sqs,
            database_urls=urls,
            datasource=clients[datasource_app] if datasource_app else None,
        )


@asynccontextmanager
async def write_lock_held(platform: Platform) -> AsyncIterator[None]:
    """Another connection holds the operation database's write lock for 3 s."""
    writer = Database(platform.database_urls["operation"])
    holding = asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with writer.transaction() as session:  # BEGIN IMMEDIATE
            await session.execute(text("UPDATE operation_templates SET name = 'busy'"))
            holding.set()
            await asyncio.sleep(3)

    holder = asyncio.create_task(hold_the_write_lock())
    await holding.wait()
    yield
    await holder
    await writer.dispose()
