"""The queue topology, declared once.

Every queue has a dead-letter queue named ``<queue>-dlq`` that receives a message after
``MAX_RECEIVE_COUNT`` receives. ``elasticmq.conf`` and the local SQS server are generated
from or checked against this module.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

DLQ_SUFFIX = "-dlq"
MAX_RECEIVE_COUNT = 5
# SQS limits, named once.
MAX_BATCH_SIZE = 10
MAX_LONG_POLL_SECONDS = 20
MAX_MESSAGE_BYTES = 256 * 1024
MAX_BATCH_BYTES = 256 * 1024  # all of a SendMessageBatch's entries together
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "000000000000"


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    visibility_timeout_seconds: int = 30
    from_other_services: bool = False  # the platform's own services are not its only writers

    @property
    def dlq_name(self) -> str:
        return f"{self.name}{DLQ_SUFFIX}"


PANEL_SUBMISSIONS = QueueSpec("panel-submissions")
OPERATION_JOBS = QueueSpec("operation-jobs", visibility_timeout_seconds=60)
EXECUTION_EVENTS = QueueSpec("execution-events")
SUBMISSION_UPDATES = QueueSpec("submission-updates")
# Other services' requests, one queue per owning service, so that neither reads what is
# meant for the other (see docs/ARCHITECTURE.md, "Events from other services").
PANEL_INBOUND_EVENTS = QueueSpec("panel-inbound-events", from_other_services=True)
OPERATION_INBOUND_EVENTS = QueueSpec("operation-inbound-events", from_other_services=True)
# The outcomes of other services' requests that named no reply queue.
OUTBOUND_EVENTS = QueueSpec("outbound-events")

QUEUES: tuple[QueueSpec, ...] = (
    PANEL_SUBMISSIONS,
    OPERATION_JOBS,
    EXECUTION_EVENTS,
    SUBMISSION_UPDATES,
    PANEL_INBOUND_EVENTS,
    OPERATION_INBOUND_EVENTS,
    OUTBOUND_EVENTS,
)


def queue_arn(name: str, region: str = LOCAL_REGION, account_id: str = LOCAL_ACCOUNT_ID) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{name}"


def create_queue_inputs(prefix: str = "") -> list[dict[str, object]]:
    """CreateQueue inputs for the whole topology, dead-letter queues first."""
    inputs: list[dict[str, object]] = []
    for spec in QUEUES:
        inputs.append({"QueueName": prefix + spec.dlq_name})
    for spec in QUEUES:
        redrive = {
            "deadLetterTargetArn": queue_arn(prefix + spec.dlq_name),
            "maxReceiveCount": str(MAX_RECEIVE_COUNT),
        }
        inputs.append(
            {
                "QueueName": prefix + spec.name,
                "Attributes": {
                    "VisibilityTimeout": str(spec.visibility_timeout_seconds),
                    "RedrivePolicy": json.dumps(redrive),
                },
            }
        )
    return inputs


if __name__ == "__main__":  # used by the local SQS server script
    json.dump(create_queue_inputs(sys.argv[1] if len(sys.argv) > 1 else ""), sys.stdout)
