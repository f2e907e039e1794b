from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.harness import DATABASES, LocalSQSServer, Platform, running_platform

_SPANS = InMemorySpanExporter()


def pytest_configure(config: pytest.Config) -> None:
    # Installed before any app exists, so configure_tracing() keeps it.
    provider = TracerProvider(resource=Resource.create({"service.name": "tests"}))
    provider.add_span_processor(SimpleSpanProcessor(_SPANS))
    trace.set_tracer_provider(provider)


TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules at the top of tests/ are end to end: they are the slow tier."""
    for item in items:
        if item.path.parent == TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def spans() -> InMemorySpanExporter:
    _SPANS.clear()
    return _SPANS


@pytest.fixture(scope="session", autouse=True)
async def session_databases() -> AsyncIterator[None]:
    yield
    await DATABASES.close()


@pytest.fixture(scope="session")
def sqs_server() -> Iterator[LocalSQSServer]:
    server = LocalSQSServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_tmp_path(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A folder for what a module's tests share (a platform started once for them all)."""
    return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])


# Module-scoped, so a module's platform may be shared by its tests of one backend.
@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def echo_platform(tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    """The platform with a worker allowed to run ``echo`` only."""
    async with running_platform(
        "sqlite", tmp_path, sqs_server, allowed_executables=["echo"]
    ) as running:
        yield running
