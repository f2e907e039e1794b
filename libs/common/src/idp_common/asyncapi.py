"""The AsyncAPI 3.0 document of every queue and event type, made from the topology and the
event models themselves (so it cannot drift from them): served at ``/asyncapi.json`` by the
services that own events and kept in ``docs/asyncapi.json`` (``python -m
idp_common.asyncapi > docs/asyncapi.json``; a test checks it is current and valid).

The application it describes is the platform: it ``receive``s what the services consume
and ``send``s what they produce (its own queues both ways)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from idp_common.events import (
    EventData,
    ExecutionFinished,
    ExecutionLog,
    ExecutionOutcome,
    ExecutionRequested,
    ExternalExecutionRequested,
    SubmissionCreated,
    SubmissionRequested,
    SubmissionUpdated,
)
from idp_common.inbound import AUTHORIZATION, CORRELATION_ID, MAX_EVENT_ID, REPLY_TO
from idp_common.messaging.topology import (
    EXECUTION_EVENTS,
    MAX_RECEIVE_COUNT,
    OPERATION_INBOUND_EVENTS,
    OPERATION_JOBS,
    OUTBOUND_EVENTS,
    PANEL_INBOUND_EVENTS,
    PANEL_SUBMISSIONS,
    QUEUES,
    SUBMISSION_UPDATES,
    QueueSpec,
)

VERSION = "1.0.0"
STRUCTURED = "application/cloudevents+json"
_SCHEMAS = "#/components/schemas/{model}"
REPLY_CHANNEL = "replyQueue"
REPLIES = ("SubmissionOutcome", "ExecutionOutcome")


@dataclass(frozen=True, slots=True)
class Message:
    """An event type as one queue carries it."""

    name: str  # the component's name
    data: type[EventData]
    summary: str
    request: bool = False  # another service's: authorization attribute, replyto
    reply: bool = False  # an answer to one: correlationid


MESSAGES = (
    Message("SubmissionCreated", SubmissionCreated, "A submission asks operation-svc to run."),
    Message("ExecutionRequested", ExecutionRequested, "A job for the workers."),
    Message("ExecutionLog", ExecutionLog, "Lines a run printed, in batches."),
    Message("ExecutionFinished", ExecutionFinished, "A worker's report of a run's end."),
    Message(
        "SubmissionUpdated",
        SubmissionUpdated,
        "An execution's whole status, for its submission. A status that a newer one of the"
        " same attempt replaces within 100 ms is not sent; an end always is.",
    ),
    Message(
        "SubmissionRequested",
        SubmissionRequested,
        "Another service submits a panel's form.",
        request=True,
    ),
    Message(
        "ExternalExecutionRequested",
        ExternalExecutionRequested,
        "Another service runs a template.",
        request=True,
    ),
    Message(
        "SubmissionOutcome",
        SubmissionUpdated,
        "The end of a submission another service asked for.",
        reply=True,
    ),
    Message(
        "ExecutionOutcome",
        ExecutionOutcome,
        "The end of a run another service asked for.",
        reply=True,
    ),
)
OTHERS = "other services"


@dataclass(frozen=True, slots=True)
class Carried:
    """What a queue carries, who sends it and who receives it."""

    messages: tuple[str, ...]
    sent_by: str
    received_by: str

    @property
    def actions(self) -> tuple[str, ...]:
        """What the platform does on the queue."""
        return tuple(
            action
            for action, party in (("send", self.sent_by), ("receive", self.received_by))
            if party != OTHERS
        )


CARRIES: dict[str, Carried] = {
    PANEL_SUBMISSIONS.name: Carried(("SubmissionCreated",), "panel-svc", "operation-svc"),
    OPERATION_JOBS.name: Carried(("ExecutionRequested",), "operation-svc", "executor-worker"),
    EXECUTION_EVENTS.name: Carried(
        ("ExecutionLog", "ExecutionFinished"), "executor-worker", "operation-svc"
    ),
    SUBMISSION_UPDATES.name: Carried(("SubmissionUpdated",), "operation-svc", "panel-svc"),
    PANEL_INBOUND_EVENTS.name: Carried(("SubmissionRequested",), OTHERS, "panel-svc"),
    OPERATION_INBOUND_EVENTS.name: Carried(
        ("ExternalExecutionRequested",), OTHERS, "operation-svc"
    ),
    OUTBOUND_EVENTS.name: Carried(
        ("SubmissionOutcome", "ExecutionOutcome"), "panel-svc and operation-svc", OTHERS
    ),
}


def _messages(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/messages/{name}"} for name in names}


def _queue_binding(name: str, visibility_timeout: int) -> dict[str, Any]:
    return {
        "name": name,
        "fifoQueue": False,
        "visibilityTimeout": visibility_timeout,
        "receiveMessageWaitTime": 20,
    }


def _channel(spec: QueueSpec) -> dict[str, Any]:
    carried = CARRIES[spec.name]
    queue = _queue_binding(spec.name, spec.visibility_timeout_seconds) | {
        "redrivePolicy": {
            "deadLetterQueue": {"name": spec.dlq_name},
            "maxReceiveCount": MAX_RECEIVE_COUNT,
        }
    }
    return {
        "address": spec.name,
        "title": spec.name,
        "description": f"Sent by {carried.sent_by}, received by {carried.received_by}. After "
        f"{MAX_RECEIVE_COUNT} "
        f"receives, or at once when it can never succeed, a message moves to {spec.dlq_name}.",
        "messages": _messages(carried.messages),
        "bindings": {
            "sqs": {
                "queue": queue,
                "deadLetterQueue": _queue_binding(spec.dlq_name, 30),
                "bindingVersion": "0.2.0",
            }
        },
    }


def _dead_letter_channel(spec: QueueSpec) -> dict[str, Any]:
    return {
        "address": spec.dlq_name,
        "title": spec.dlq_name,
        "description": f"What {spec.name}'s consumer gave up on, body and attributes as sent, "
        "with idp.failure_reason, idp.failed_at and idp.receive_count attributes "
        "(GET /api/v1/queues/{name}/dead-letters shows them; replay sends them back).",
        "messages": _messages(CARRIES[spec.name].messages),
        "bindings": {
            "sqs": {"queue": _queue_binding(spec.dlq_name, 30), "bindingVersion": "0.2.0"}
        },
    }


def _reply_channel() -> dict[str, Any]:
    return {
        "address": "{replyQueue}",
        "title": "A producer's reply queue",
        "description": f"The queue an inbound event named in its `{REPLY_TO}` extension: one "
        "of its tenant's, `{SQS_REPLY_QUEUE_PREFIX}{tenant}` or "
        "`{SQS_REPLY_QUEUE_PREFIX}{tenant}__{name}` (the prefix is `replies-` unless "
        "configured; a tenant's characters other than letters, digits and `-` are written "
        "`_XX`, their UTF-8 bytes in hex). The producer creates it.",
        "parameters": {"replyQueue": {"description": "The queue the request named."}},
        "messages": _messages(REPLIES),
    }


def _envelope(message: Message) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "specversion": {"type": "string", "const": "1.0"},
        "id": {"type": "string", "minLength": 1, "maxLength": MAX_EVENT_ID},
        "source": {"type": "string", "minLength": 1, "format": "uri-reference"},
        "type": {"type": "string", "const": message.data.event_type},
        "tenant": {
            "type": "string",
            "minLength": 1,
            "description": "The tenant (a CloudEvents extension); on a request it must be "
            "the credential's.",
        },
        "time": {"type": "string", "format": "date-time"},
        "subject": {"type": "string"},
        "datacontenttype": {"type": "string", "const": "application/json"},
        "data": {"$ref": _SCHEMAS.format(model=message.data.__name__)},
    }
    if message.request:
        properties[REPLY_TO] = {
            "type": "string",
            "description": "Where the outcome goes (see the replyQueue channel); without "
            f"it, to {OUTBOUND_EVENTS.name}.",
        }
    if message.reply:
        properties[CORRELATION_ID] = {
            "type": "string",
            "description": "The id of the request this answers.",
        }
    required = ["specversion", "id", "source", "type", "tenant", "data"]
    if message.reply:
        required.append(CORRELATION_ID)
    return {"type": "object", "required": required, "properties": properties}


def _headers(message: Message) -> dict[str, Any]:
    """The SQS message attributes the platform reads or writes."""
    properties: dict[str, Any] = {
        "traceparent": {"type": "string", "description": "W3C trace context."},
    }
    required = []
    if message.request:
        properties[AUTHORIZATION] = {
            "type": "string",
            "pattern": "^(Bearer|ApiKey) .+$",
            "description": "The producer's credential, as the HTTP Authorization header: "
            "`Bearer <JWT>` or `ApiKey idp_…`; checked as on the API (signature, expiry, "
            "revocation, role operator, tenant, the target's allowed roles and groups).",
        }
        required.append(AUTHORIZATION)
    return {"type": "object", "required": required, "properties": properties}


def _message(message: Message) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": message.data.event_type,
        "title": message.name,
        "summary": message.summary,
        "contentType": STRUCTURED,
        "headers": _headers(message),
        "payload": _envelope(message),
    }
    if message.reply:
        document["correlationId"] = {"location": f"$message.payload#/{CORRELATION_ID}"}
    return document


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    models: list[type[BaseModel]] = [message.data for message in MESSAGES]
    for model in models:
        schema = model.model_json_schema(ref_template=_SCHEMAS)
        schemas |= schema.pop("$defs", {})
        schemas[model.__name__] = schema
    return schemas


def _operations() -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for spec in QUEUES:
        carried = CARRIES[spec.name]
        channel = {"$ref": f"#/channels/{spec.name}"}
        messages = [
            {"$ref": f"#/channels/{spec.name}/messages/{name}"} for name in carried.messages
        ]
        for action in carried.actions:
            operations[f"{action}-{spec.name}"] = {
                "action": action,
                "channel": channel,
                "messages": messages,
            }
    for name in REPLIES:
        operations[f"send-{name}-to-reply-queue"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{REPLY_CHANNEL}"},
            "messages": [{"$ref": f"#/channels/{REPLY_CHANNEL}/messages/{name}"}],
        }
    return operations


def document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for spec in QUEUES:
        channels[spec.name] = _channel(spec)
        channels[spec.dlq_name] = _dead_letter_channel(spec)
    channels[REPLY_CHANNEL] = _reply_channel()
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Self-service operations platform: events",
            "version": VERSION,
            "description": "Every queue and event type the platform consumes or produces. "
            "Events are CloudEvents 1.0 in structured JSON mode. Other services request "
            f"runs on {PANEL_INBOUND_EVENTS.name} and {OPERATION_INBOUND_EVENTS.name} (or "
            "POST /api/v1/events of panel-svc and operation-svc), and hear the outcome on "
            f"their reply queue or {OUTBOUND_EVENTS.name}. Queue names are shown without "
            "the environment's SQS_QUEUE_PREFIX.",
        },
        "defaultContentType": STRUCTURED,
        "servers": {
            "sqs": {
                "host": "sqs.{region}.amazonaws.com",
                "protocol": "sqs",
                "description": "AWS SQS in production; ElasticMQ or the local SQS server "
                "(the same API) elsewhere.",
                "variables": {"region": {"default": "us-east-1"}},
            }
        },
        "channels": channels,
        "operations": _operations(),
        "components": {
            "messages": {message.name: _message(message) for message in MESSAGES},
            "schemas": _schemas(),
        },
    }


router = APIRouter(include_in_schema=False)


@router.get("/asyncapi.json")
async def asyncapi() -> dict[str, Any]:
    return document()


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=2)
    sys.stdout.write("\n")
