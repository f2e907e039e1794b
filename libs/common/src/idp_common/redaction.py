"""What stands in for a secret wherever records are shown (audit rows, dead letters, argv,
HTTP requests): kept apart from the audit log's model so that code without a database can
use it."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

MASK = "***"
SECRET_KEY_HINTS = (
    "secret",
    "password",
    "token",
    "api_key",
    "apikey",
    "credential",
    "private",
    "authorization",
    "cookie",
)
# A header or a query parameter carries a key under names no body field would use
# (X-Api-Key, Ocp-Apim-Subscription-Key, ?key=).
CREDENTIAL_NAME_HINTS = (*SECRET_KEY_HINTS, "key", "signature", "session")
# Where a record holds an HTTP request's headers or query parameters, by name.
REQUEST_PARTS = frozenset({"headers", "query"})


def secret_looking(key: str) -> bool:
    """Whether a field named ``key`` holds a secret (``X-Api-Key`` as ``x_api_key``)."""
    name = key.lower().replace("-", "_")
    return any(hint in name for hint in SECRET_KEY_HINTS)


def credential_name(name: str) -> bool:
    """Whether a header or query parameter named ``name`` carries a credential."""
    lowered = name.lower().replace("-", "_")
    return any(hint in lowered for hint in CREDENTIAL_NAME_HINTS)


def masked_credentials(values: Mapping[str, Any]) -> dict[str, Any]:
    """Headers or query parameters with the values of the credential ones masked."""
    return {name: MASK if credential_name(str(name)) else value for name, value in values.items()}


def _url_key(key: str) -> bool:
    return key == "url" or key.endswith("_url")


def mask_secrets(changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` as anyone may read them: the values of secret-looking keys, and of the
    credential headers and query parameters of an HTTP request (``headers``, ``query``, a
    ``url``'s query) masked."""
    masked: dict[str, Any] = {}
    for key, value in changes.items():
        if secret_looking(key):
            masked[key] = MASK
        elif key in REQUEST_PARTS and isinstance(value, Mapping):
            masked[key] = masked_credentials(value)
        elif _url_key(key) and isinstance(value, str):
            masked[key] = masked_url(value)
        elif isinstance(value, Mapping):
            masked[key] = mask_secrets(value)
        else:
            masked[key] = value
    return masked


def _query_pairs(query: str) -> list[tuple[str, str | None]]:
    """Each ``name=value`` of a query as written (None: no ``=``), the name decoded."""
    pairs: list[tuple[str, str | None]] = []
    for pair in query.split("&"):
        raw_name, sign, raw_value = pair.partition("=")
        pairs.append((urllib.parse.unquote_plus(raw_name), raw_value if sign else None))
    return pairs


def _with_query_values(url: str, value_of: Any) -> str:
    """``url`` with each query value ``value_of(name, value)`` says, the rest as written (all
    of it when it is no URL: ``https://[::1/``, which its own check refuses)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    written = parts.query.split("&")
    query = "&".join(
        pair if value is None else f"{pair.partition('=')[0]}={value_of(name, value)}"
        for pair, (name, value) in zip(written, _query_pairs(parts.query), strict=True)
    )
    return urllib.parse.urlunsplit(parts._replace(query=query))


def masked_url(url: str) -> str:
    """``url`` with the values of its credential query parameters (``?token=``) masked."""
    return _with_query_values(url, lambda name, value: MASK if credential_name(name) else value)


def kept_where_masked(sent: Any, stored: Any, key: str = "") -> Any:
    """What an editor ``sent`` back, each value it sends as ``MASK`` where ``mask_secrets``
    masks one (a header's, a query parameter's, a secret-looking field's) replaced by the
    ``stored`` value it stands for: a change that keeps what it was shown keeps the
    credential. A mask with nothing stored at its place stays as sent."""
    if isinstance(sent, Mapping) and isinstance(stored, Mapping):
        in_request = key in REQUEST_PARTS
        kept: dict[str, Any] = {}
        for name, value in sent.items():
            hidden = credential_name(name) if in_request else secret_looking(name)
            if hidden and value == MASK and name in stored:
                kept[name] = stored[name]
            else:
                kept[name] = kept_where_masked(value, stored.get(name), name)
        return kept
    if _url_key(key) and isinstance(sent, str) and isinstance(stored, str):
        stored_values = dict(_query_pairs(urllib.parse.urlsplit(stored).query))
        return _with_query_values(
            sent,
            lambda name, value: (
                stored_values[name]
                if value == MASK and credential_name(name) and stored_values.get(name)
                else value
            ),
        )
    return sent
