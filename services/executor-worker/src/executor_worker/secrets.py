"""Secret values exist only here, in the worker, at run time: resolved from their
reference, handed to the child as environment variables, and masked in every line of
output and every error (raw, base64, URL-encoded, JSON-escaped, and each line of a
multi-line secret)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from idp_common.events import SecretBinding

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values cannot be masked without masking ordinary text


class SecretUnavailable(Exception):
    """A secret could not be resolved; the message never contains a value."""


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


class SecretResolver:
    def __init__(self, aws_client: Any = None) -> None:
        self._aws = aws_client

    async def resolve(self, bindings: Iterable[SecretBinding]) -> dict[str, str]:
        values: dict[str, str] = {}
        for binding in bindings:
            value = await self._value(binding)
            if len(value) < MIN_SECRET_LENGTH:
                raise SecretUnavailable(
                    f"secret for {binding.env_var} is shorter than {MIN_SECRET_LENGTH} "
                    "characters and cannot be masked safely"
                )
            values[binding.env_var] = value
        return values

    async def _value(self, binding: SecretBinding) -> str:
        if binding.provider == "env":
            value = os.environ.get(binding.key)
            if value is None:
                raise SecretUnavailable(f"environment variable {binding.key} is not set")
            return value
        if binding.provider == "file":
            try:
                return (await asyncio.to_thread(Path(binding.key).read_text)).rstrip("\n")
            except OSError as exc:
                raise SecretUnavailable(
                    f"cannot read secret file {binding.key}: {exc.strerror}"
                ) from None
        if self._aws is None:
            raise SecretUnavailable("AWS Secrets Manager is not configured on this worker")
        try:
            response = await self._aws.get_secret_value(SecretId=binding.key)
        except Exception as exc:
            raise SecretUnavailable(
                f"AWS Secrets Manager refused {binding.key}: {type(exc).__name__}"
            ) from None
        return str(response["SecretString"])
