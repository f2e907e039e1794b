"""W3C trace context through SQS MessageAttributes (botocore instrumentation does not do it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate
from opentelemetry.context import Context

# traceparent and tracestate use 2 of the 10 attributes SQS allows per message.
TRACE_ATTRIBUTE_NAMES = ("traceparent", "tracestate")


def current_trace_carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {key: value for key, value in carrier.items() if key in TRACE_ATTRIBUTE_NAMES}


def to_message_attributes(carrier: Mapping[str, str]) -> dict[str, dict[str, str]]:
    return {key: {"DataType": "String", "StringValue": value} for key, value in carrier.items()}


def extract_context(message_attributes: Mapping[str, Any] | None) -> Context:
    carrier = {
        key: value["StringValue"]
        for key, value in (message_attributes or {}).items()
        if key in TRACE_ATTRIBUTE_NAMES and "StringValue" in value
    }
    return propagate.extract(carrier)
