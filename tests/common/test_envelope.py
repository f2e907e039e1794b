"""Message bodies are CloudEvents 1.0 JSON with a tenant; anything else is refused."""

from __future__ import annotations

import json

import pytest

from idp_common.messaging.envelope import Event, InvalidEvent, decode_event, encode_event


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
    ],
    ids=["not-json", "not-an-object", "no-tenant", "data-not-object", "old-spec", "no-type"],
)
def test_anything_else_is_an_invalid_event(body: str) -> None:
    with pytest.raises(InvalidEvent):
        decode_event(body)
