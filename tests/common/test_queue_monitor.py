"""The queues' depths are exported by the replica leading the queue monitor only."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import REGISTRY

from idp_common.db import Database
from idp_common.leadership import Leadership
from idp_common.messaging.queue_monitor import QueueMonitor
from idp_common.messaging.sqs import open_queues
from idp_common.messaging.topology import PANEL_SUBMISSIONS
from tests.harness import LocalSQSServer, fresh_database, sqs_settings


def dead_letters_exported() -> float | None:
    return REGISTRY.get_sample_value("idp_queue_dead_letters", {"queue": PANEL_SUBMISSIONS.name})


async def test_a_replica_no_longer_leading_stops_exporting_the_depths_it_read(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with (
        fresh_database("postgres", tmp_path, "queue_monitor") as url,
        open_queues(sqs_settings(sqs_server)) as queues,
    ):
        await queues.ensure_queues()
        await queues.client.send_message(
            QueueUrl=await queues.url(PANEL_SUBMISSIONS.dlq_name), MessageBody="poison"
        )
        first, second = Database(url), Database(url)  # two replicas
        try:
            monitor = QueueMonitor(first, queues, poll_seconds=1)
            await monitor.run_once()
            assert dead_letters_exported() == 1
            await monitor.leadership.release()  # its connection dropped, say
            other = Leadership(second, "queue-monitor")
            assert await other.held()  # another replica leads now
            await monitor.run_once()
            # Its last depths would stay beside the new leader's, an emptied DLQ's alert
            # firing for as long as this replica runs.
            assert dead_letters_exported() is None
            await other.release()
        finally:
            await first.dispose()
            await second.dispose()
