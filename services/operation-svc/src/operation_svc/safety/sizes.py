"""What a template renders must leave its job room in a queue message
(``idp_common.messaging.budget``): checked when it is saved, and again with each run's
values, so a run that could not be queued is refused where it is asked for."""

from __future__ import annotations

from typing import Any

from idp_common.messaging.budget import MAX_RENDERED_BYTES
from idp_common.messaging.envelope import encoded_size
from operation_svc.safety.verdict import Refusal


def check_rendered_size(what: str, rendered: Any) -> None:
    """Refuse ``rendered`` (an argv, a request) past ``MAX_RENDERED_BYTES`` as its job
    carries it; ``what`` names it."""
    size = encoded_size(rendered)
    if size > MAX_RENDERED_BYTES:
        raise Refusal(
            "too_large",
            f"{what} takes {size} bytes in its job (JSON, non-ASCII escaped: an emoji takes "
            f"12), more than {MAX_RENDERED_BYTES}",
        )
