"""A database that cannot be reached for a while loses nothing: what arrives meanwhile
waits in its queue (not in its DLQ) and is acted on once the database is back."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from idp_common.messaging.dead_letters import DeadLetterQueue
from idp_common.messaging.topology import EXECUTION_EVENTS
from idp_common.runtime import open_messaging
from tests.factories import has_status, new_execution, template
from tests.harness import (
    POSTGRES_URL,
    SIGNER,
    LocalSQSServer,
    Platform,
    eventually,
    running_platform,
)

pytestmark = pytest.mark.postgres


@asynccontextmanager
async def unreachable(url: str) -> AsyncIterator[None]:
    """The database refuses connections and its open ones are ended, as in a restart."""
    database = make_url(url).database
    server = make_url(POSTGRES_URL).set(drivername="postgresql", database="postgres")
    admin = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()


async def failed_handlings(platform: Platform) -> float:
    """How many times operation-svc's handling of an execution event failed."""
    metrics = (await platform.operation.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("idp_messages_consumed_total{")
        and EXECUTION_EVENTS.name in line
        and 'outcome="failed"' in line
    )


@pytest.fixture
def gate() -> Iterator[Path]:
    """A folder the runs' own uids can look into: a gated run ends when ``open`` is there."""
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


async def test_a_run_that_ends_while_the_database_is_unreachable_is_recorded_once_it_is_back(
    tmp_path: Path, sqs_server: LocalSQSServer, gate: Path
) -> None:
    """The worker's finish fails to be recorded while the database is down; it is not
    dead-lettered after its receives (the test's broker redelivers at once), so the run
    ends succeeded rather than lost."""
    async with running_platform(
        "postgres", tmp_path, sqs_server, allowed_executables=["sh"]
    ) as platform:
        waits = f"until [ -e {gate}/open ]; do sleep 0.05; done"
        await template(platform, "gated", f"sh -c '{waits}'", [])
        path = await new_execution(platform, "gated")
        await eventually(lambda: has_status(platform, path, "running"))
        async with unreachable(platform.database_urls["operation"]):
            await asyncio.to_thread((gate / "open").touch)
            await eventually(lambda: failed_handlings(platform))
            await asyncio.sleep(1)  # time for every receive of the finish, were it received
        await eventually(lambda: has_status(platform, path, "succeeded"))
        async with open_messaging(platform.sqs, SIGNER) as bus:
            assert await DeadLetterQueue(bus.queues, EXECUTION_EVENTS).peek() == []
