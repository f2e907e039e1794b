"""Credentials shown masked, sent back by an editor: kept only for the host they were given
for. Whoever may edit a data source, webhook or HTTP template need not know its credentials,
and a change of its URL's host that kept them would send them to a host of the editor's
choosing."""

from __future__ import annotations

import urllib.parse
from typing import Any

from idp_common.errors import ValidationFailed, field_error
from idp_common.redaction import kept_where_masked


def _destination(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:  # "https://[::1/", checked after this: no destination but itself
        return "", url, None
    try:
        port = parts.port
    except ValueError:  # not a number: the URL's own check names it
        port = None
    scheme = parts.scheme.lower()
    return (
        scheme,
        (parts.hostname or "").rstrip("."),
        port or {"http": 80, "https": 443}.get(scheme),
    )


def kept_for_their_host(
    sent: Any, stored: Any, *, sent_url: str, stored_url: str, field: str, key: str = ""
) -> Any:
    """``kept_where_masked``, or a 422 naming ``field`` (the URL) where a mask sent back would
    keep a credential for another scheme, host or port than ``stored_url``'s."""
    kept = kept_where_masked(sent, stored, key)
    if kept != sent and _destination(sent_url) != _destination(stored_url):
        message = (
            f"credentials shown masked are kept for {_destination(stored_url)[1]} only: "
            "give them again to send them to another host"
        )
        raise ValidationFailed(message, errors=[field_error(field, message, "masked_credential")])
    return kept
