"""Message bodies are CloudEvents 1.0 JSON with a tenant; anything else is refused."""

from __future__ import annotations

import json

import pytest

from idp_common.messaging.envelope import (
    Event,
    InvalidEvent,
    decode_event,
    decode_http_event,
    encode_event,
    encoded_size,
)


def test_events_round_trip() -> None:
    event = Event(
        type="panel.submission.created",
        source="urn:x",
        tenant="acme",
        subject="42",
        data={"a": [1, 2]},
    )
    body = json.loads(encode_event(event))
    assert body["specversion"] == "1.0"
    assert body["datacontenttype"] == "application/json"
    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "😀" * 100,  # 12 bytes each, escaped as a surrogate pair
        "é中",
        '\x01\n\t"\\',
        {"nested": [{"deep": ["😀", 1.5, True, None]}], "n": 2**70},
        ["a", "b"],
    ],
)
def test_encoded_size_is_what_a_value_takes_in_a_message_body(value: object) -> None:
    def body(data: object) -> str:
        return encode_event(Event(type="t", source="s", tenant="acme", data={"v": data}))

    assert len(body(value).encode()) - len(body(None).encode()) == (
        encoded_size(value) - encoded_size(None)
    )


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[]",
        json.dumps({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": {}}),
        json.dumps(
            {
                "specversion": "1.0",
                "id": "1",
                "source": "s",
                "type": "t",
                "tenant": "acme",
                "data": "text",
            }
        ),
        json.dumps(
            {
                "specversion": "0.3",
                "id": "1",
                "source": "s",
                "type": "t",
                "tenant": "acme",
                "data": {},
            }
        ),
        json.dumps({"id": "1", "source": "s", "tenant": "acme", "data": {}}),
        # Without an id the library would make one up, and a redelivery would be new.
        json.dumps({"specversion": "1.0", "source": "s", "type": "t", "tenant": "a", "data": {}}),
        json.dumps(
            {"specversion": "1.0", "id": "", "source": "s", "type": "t", "tenant": "a", "data": {}}
        ),
        json.dumps(
            {"specversion": "1.0", "id": 7, "source": "s", "type": "t", "tenant": "a", "data": {}}
        ),
        json.dumps(
            {
                "specversion": "1.0",
                "id": "a\x00",
                "source": "s",
                "type": "t",
                "tenant": "a",
                "data": {},
            }
        ),
        json.dumps(
            {
                "specversion": "1.0",
                "id": "1",
                "source": "s\n",
                "type": "t",
                "tenant": "a",
                "data": {},
            }
        ),
        # Deeper than the JSON parser recurses.
        "[" * 100_000 + "]" * 100_000,
        '{"specversion": "1.0", "data": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=[
        "not-json",
        "not-an-object",
        "no-tenant",
        "data-not-object",
        "old-spec",
        "no-type",
        "no-id",
        "empty-id",
        "number-id",
        "nul-in-id",
        "newline-in-source",
        "nested-too-deeply",
        "data-nested-too-deeply",
    ],
)
def test_anything_else_is_an_invalid_event(body: str) -> None:
    with pytest.raises(InvalidEvent):
        decode_event(body)


@pytest.mark.parametrize("body", ["[1]", '"event"', "1", "null", "true"])
def test_a_body_that_is_not_an_object_is_refused_in_the_senders_terms(body: str) -> None:
    """The SDK said so in Python's words: "'list' object has no attribute 'get'"."""
    with pytest.raises(InvalidEvent, match=r"the event is not a JSON object$"):
        decode_event(body)
    structured = {"content-type": "application/cloudevents+json"}
    with pytest.raises(InvalidEvent, match=r"the event is not a JSON object$"):
        decode_http_event(structured, body.encode())


@pytest.mark.parametrize("time", ["not-a-date", "2026-13-01T00:00:00Z", "", "12:00"])
def test_a_time_that_is_no_timestamp_is_refused_saying_so(time: str) -> None:
    """The SDK's parser said "invalid literal for int() with base 10: b'not-'"."""
    said = r"the time attribute must be an RFC 3339 timestamp, such as 2026-01-31T12:00:00Z$"
    structured = {
        "specversion": "1.0",
        "id": "1",
        "source": "urn:s",
        "type": "t",
        "tenant": "acme",
        "time": time,
        "data": {},
    }
    with pytest.raises(InvalidEvent, match=said):
        decode_event(json.dumps(structured))
    with pytest.raises(InvalidEvent, match=said):
        decode_http_event(BINARY | {"ce-time": time}, b"{}")


BINARY = {
    "ce-specversion": "1.0",
    "ce-id": "1",
    "ce-source": "urn:s",
    "ce-type": "t",
    "ce-tenant": "acme",
    "content-type": "application/json",
}


def test_an_http_event_in_binary_mode_keeps_its_attributes_and_extensions() -> None:
    event = decode_http_event(BINARY | {"ce-replyto": "replies-acme"}, b'{"a": 1}')
    assert (event.id, event.source, event.tenant, event.data) == ("1", "urn:s", "acme", {"a": 1})
    assert event.extensions == {"replyto": "replies-acme"}


@pytest.mark.parametrize("missing", ["ce-id", "ce-source", "ce-type", "ce-tenant"])
def test_an_http_event_without_a_required_attribute_is_invalid(missing: str) -> None:
    headers = {name: value for name, value in BINARY.items() if name != missing}
    with pytest.raises(InvalidEvent):
        decode_http_event(headers, b"{}")


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (BINARY, b"[" * 100_000 + b"]" * 100_000),
        ({"content-type": "application/cloudevents+json"}, b"{" + b'"a":{' * 50_000 + b"}"),
    ],
    ids=["binary", "structured"],
)
def test_an_http_event_nested_too_deeply_is_invalid(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(InvalidEvent):
        decode_http_event(headers, body)
