"""Resolving secret references (env, file, AWS Secrets Manager) into values, only where a
value is used: inside the worker at run time, or in datasource-svc for an upstream's auth.
Values are never stored, logged or sent."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from idp_common.events import SecretBinding

MIN_SECRET_LENGTH = 4  # shorter values cannot be masked without masking ordinary text


class SecretUnavailable(Exception):
    """A secret could not be resolved; the message never contains a value."""


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
