"""Secret values are masked in every line of output and every error: the raw value, its
base64, URL-encoded and JSON-escaped forms, and each line of a multi-line secret."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterable

from idp_common.secret_values import MIN_SECRET_LENGTH

MASK = "***"


def _variants(value: str) -> set[str]:
    raw = value.encode()
    forms = {
        value,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        json.dumps(value)[1:-1],
    }
    forms |= {line for line in value.splitlines() if len(line) >= MIN_SECRET_LENGTH}
    return {form for form in forms if form}


class SecretMasker:
    def __init__(self, values: Iterable[str] = ()) -> None:
        # Longest first, so a secret is masked whole before any of its parts.
        self._forms = sorted(
            {form for value in values for form in _variants(value)}, key=len, reverse=True
        )

    def mask(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text
