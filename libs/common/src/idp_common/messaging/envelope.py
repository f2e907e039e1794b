"""The CloudEvents 1.0 JSON envelope of every message body, with the ``tenant`` extension."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import http
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from idp_common.duplicate_keys import duplicate_key_path

_FORMAT = JSONFormat()
JSON_CONTENT_TYPE = "application/json"
# The attributes every event has or may have; the others are extensions.
_CONTEXT_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "time", "datacontenttype", "dataschema", "subject"}
)
# What reading a body that is no event raises; RecursionError is JSON nested deeper than
# the parser goes (a few kilobytes of brackets).
_UNREADABLE = (
    BaseCloudEventException,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    RecursionError,
)


class InvalidEvent(ValueError):
    """A message body that is not a valid event of ours; it can never succeed."""


class EventRefused(Exception):
    """A well-formed event that may not be acted on (its credential, its tenant, what it
    names or its data): dead-lettered at once with the reason."""


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    source: str
    tenant: str
    data: dict[str, Any]
    subject: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Extension attributes other than ``tenant`` (``replyto``, ``correlationid``), as strings.
    extensions: dict[str, str] = field(default_factory=dict)


def encode_event(event: Event) -> str:
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": event.time,
        "datacontenttype": JSON_CONTENT_TYPE,
        "tenant": event.tenant,
    } | event.extensions
    if event.subject is not None:
        attributes["subject"] = event.subject
    return _FORMAT.write(CloudEvent(attributes, event.data)).decode()


def encoded_size(value: Any) -> int:
    """The bytes ``value`` takes in a message body: JSON as ``encode_event`` writes it, with
    non-ASCII escaped (``"😀"`` takes 14)."""
    return len(json.dumps(value))


def _cloud_event(attributes: dict[str, Any], data: Any) -> CloudEvent:
    """A 1.0 event as sent: the library would make up a missing id, and an event's id is
    what makes its redelivery recognisable."""
    if attributes.get("specversion") != "1.0":
        raise InvalidEvent(f"unsupported specversion {attributes.get('specversion')!r}")
    for name in ("id", "source", "type"):
        value = attributes.get(name)
        if not isinstance(value, str) or not value.isprintable():
            raise InvalidEvent(f"the {name} attribute must be printable text, and is required")
    return CloudEvent(attributes, data)


def _timestamp(value: Any) -> bool:
    """Whether ``value`` is an RFC 3339 timestamp, with its offset (the library's own parser
    fails with errors such as "invalid literal for int()")."""
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def decode_event(body: str, *, from_another_service: bool = False) -> Event:
    """``from_another_service``: a key named twice in one object is refused too (the
    platform's own services never write one; checking costs a second parse). Over HTTP the
    services' body guard has refused one already."""
    if from_another_service and (path := duplicate_key_path(body)) is not None:
        raise InvalidEvent(f"{'.'.join(map(str, path))} is named twice in one object")
    try:
        cloud_event = _FORMAT.read(_cloud_event, body)
    except _UNREADABLE as exc:
        raise InvalidEvent(f"not a CloudEvents 1.0 JSON event: {_why(exc, body)}") from exc
    return _event_of(cloud_event)


def decode_http_event(headers: Mapping[str, str], body: bytes) -> Event:
    """An event sent over HTTP, in binary (``ce-*`` headers) or structured content mode."""
    try:
        cloud_event = http.from_http(http.HTTPMessage(dict(headers), body), _FORMAT, _cloud_event)
    except _UNREADABLE as exc:
        time = {name.lower(): value for name, value in headers.items()}.get("ce-time")
        why = _BAD_TIME if time is not None and not _timestamp(time) else _why(exc, body)
        raise InvalidEvent(f"not a CloudEvents 1.0 HTTP event: {why}") from exc
    return _event_of(cloud_event)


_BAD_TIME = "the time attribute must be an RFC 3339 timestamp, such as 2026-01-31T12:00:00Z"


def _why(failure: Exception, body: str | bytes) -> str:
    """The SDK's failure in the sender's terms: it reads any JSON as an event object and
    says so in Python's (``'list' object has no attribute 'get'``), and a time it cannot
    read in its parser's (``invalid literal for int() with base 10``)."""
    with contextlib.suppress(ValueError, RecursionError):
        event = json.loads(body)
        if not isinstance(event, dict):
            return "the event is not a JSON object"
        if "time" in event and not _timestamp(event["time"]):
            return _BAD_TIME
    return str(failure)


def _event_of(cloud_event: BaseCloudEvent) -> Event:
    attributes = cloud_event.get_attributes()
    tenant = attributes.get("tenant")
    if not isinstance(tenant, str) or not tenant or not tenant.isprintable():
        raise InvalidEvent("the tenant extension attribute must be printable text, and is required")
    subject = attributes.get("subject")
    if subject is not None and not (isinstance(subject, str) and subject.isprintable()):
        raise InvalidEvent("the subject attribute must be printable text")
    data = cloud_event.get_data()
    if not isinstance(data, dict):
        raise InvalidEvent("data must be a JSON object")
    extensions = {
        name: str(value)
        for name, value in attributes.items()
        if name not in _CONTEXT_ATTRIBUTES and name != "tenant"
    }
    return Event(
        id=cloud_event.get_id(),
        type=cloud_event.get_type(),
        source=cloud_event.get_source(),
        tenant=tenant,
        subject=cloud_event.get_subject(),
        time=cloud_event.get_time() or datetime.now(UTC),
        data=data,
        extensions=extensions,
    )
