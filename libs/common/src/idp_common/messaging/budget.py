"""What a run may take of a queue message, so that every message made of it fits in one
(SQS: ``MAX_MESSAGE_BYTES``), and a run that could not be queued is refused where it is
asked for: a 422 naming what to shorten, never a message the broker refuses (a 500 at
intake, or a consumer failing until its message is dead-lettered and sent again).

A run's values travel in ``panel.submission.created``, then in its job
(``operation.execution.requested``) as its ``IDP_PARAM_<NAME>`` environment, beside the
command or request they render. The values get ``MAX_VALUES_BYTES``, what they render
``MAX_RENDERED_BYTES``, and the rest of a message (the envelope, ids, slugs, a panel's
approval policy, a template's secret references) the 32 KiB left. Sizes are those of the
message body (``encoded_size``): JSON with non-ASCII escaped, where an emoji takes 12
bytes, so 4,096 of them take 48 KiB."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from idp_common.errors import ValidationFailed, field_error
from idp_common.messaging.envelope import Event, encoded_size
from idp_common.messaging.outbox import OutboxRow, outbox_row
from idp_common.messaging.publisher import MessageTooLarge
from idp_common.messaging.topology import QueueSpec

MAX_VALUES_BYTES = 128 * 1024
MAX_RENDERED_BYTES = 96 * 1024


@dataclass(frozen=True, slots=True)
class Oversized:
    """Values past ``MAX_VALUES_BYTES``: the largest of them (the one to shorten), and why."""

    name: str
    message: str


def oversized_value(values: Mapping[str, Any]) -> Oversized | None:
    """None when ``values`` fit in ``MAX_VALUES_BYTES`` (one encode of the values alone);
    else the largest of them, for the refusal to name."""
    total = encoded_size(values)
    if total <= MAX_VALUES_BYTES:
        return None
    sizes = {name: encoded_size(value) for name, value in values.items()}
    largest = max(sizes, key=sizes.__getitem__)
    return Oversized(
        largest,
        f"the values take {total} bytes in a queue message (JSON, non-ASCII escaped: an "
        f"emoji takes 12), more than {MAX_VALUES_BYTES}; this one takes {sizes[largest]}",
    )


def oversized_errors(values: Mapping[str, Any], prefix: str) -> list[dict[str, str]]:
    """The field error naming ``<prefix>.<the largest value>`` when ``values`` do not fit."""
    oversized = oversized_value(values)
    if oversized is None:
        return []
    return [field_error(f"{prefix}.{oversized.name}", oversized.message, "too_large")]


def queued_or_refused(queue: QueueSpec, event: Event, field: str) -> OutboxRow:
    """``event``'s outbox row for ``queue``; a 422 naming ``field`` when no message can hold
    it. The budget leaves the rest of a message 32 KiB, which a person's many groups or a
    template's many secret references can pass: better refused than a 500."""
    try:
        return outbox_row(queue, event)
    except MessageTooLarge as too_large:
        raise ValidationFailed(
            "The request cannot be queued.",
            errors=[field_error(field, str(too_large), "too_large")],
        ) from too_large
