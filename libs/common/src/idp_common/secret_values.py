"""Secret references (env, file, AWS Secrets Manager), confined per tenant by configuration,
and resolved into values only where a value is used: inside the worker at run time, or in
datasource-svc for an upstream's auth. Values are never stored, logged or sent.

Each tenant has its own corner of each provider, and a reference outside it is refused when
it is created and again when it is resolved (always for the tenant of the job or source, never
anything the reference says):

- ``env``: variables named ``<SECRETS_ENV_PREFIX><TENANT>__<NAME>`` (``IDP_SECRET_ACME__DB``),
  never the process's own settings;
- ``file``: regular files under ``<SECRETS_FILE_ROOT>/<tenant>/``, opened one path component
  at a time without following any symbolic link;
- ``aws-secretsmanager``: names under ``<SECRETS_AWS_PREFIX><tenant>/``.

Tenants are written into names by an injective encoding (``tenant_label``), so no two
tenants share a corner: ``a-b`` and ``a_b`` do not collide.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import string
from collections.abc import Iterable
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from idp_common.errors import ValidationFailed, field_error
from idp_common.events import SecretBinding

MIN_SECRET_LENGTH = 4  # shorter values cannot be masked without masking ordinary text
MAX_SECRET_BYTES = 64 * 1024
# Prefixes of the platform's own settings (and of what changes the code a program runs):
# a secret prefix may not reach them.
_RESERVED_PREFIXES = (
    "WORKER_",
    "OPERATION_",
    "PANEL_",
    "DATASOURCE_",
    "SQS_",
    "AUTH_",
    "AWS_",
    "OTEL_",
    "SEALING_",
    "RATELIMIT_",
    "SECRETS_",
    "IDP_PARAM_",
    "LD_",
    "PYTHON",
    "PATH",
    "HOME",
)
_ENV_NAME = re.compile(r"^[A-Z0-9_]{1,200}$")
_AWS_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_LOWER_ALNUM = string.ascii_lowercase + string.digits
_FILE_COMPONENT = re.compile(r"^[A-Za-z0-9._+@=-]{1,255}$")


class SecretUnavailable(Exception):
    """A secret could not be resolved; the message never contains a value."""


class SecretOutsideConfinement(SecretUnavailable):
    """A reference outside its tenant's corner of the provider; ``rule`` names which."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def tenant_label(tenant: str, kept: str) -> str:
    """``tenant`` with every character not in ``kept`` written as ``_XX`` (its UTF-8 bytes
    in hex): injective, since ``_`` itself is never kept."""
    return "".join(
        character if character in kept else "".join(f"_{byte:02X}" for byte in character.encode())
        for character in tenant
    )


class SecretStoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SECRETS_", extra="ignore")

    env_prefix: str = Field(
        default="IDP_SECRET_",
        description="env secrets are variables {prefix}{TENANT}__{NAME} (tenant upper-cased; "
        "other characters as _XX); no other variable can be referenced.",
    )
    file_root: str | None = Field(
        default=None,
        description="file secrets are files under {root}/{tenant}/ (no symbolic links); "
        "unset, the file provider is off.",
    )
    aws_prefix: str = Field(
        default="idp/",
        description="aws-secretsmanager secrets are names under {prefix}{tenant}/.",
    )

    @field_validator("env_prefix")
    @classmethod
    def _own_prefix(cls, prefix: str) -> str:
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*_", prefix):
            raise ValueError(
                "SECRETS_ENV_PREFIX must be upper-case letters, digits and _, end in _"
            )
        clash = [reserved for reserved in _RESERVED_PREFIXES if prefix.startswith(reserved)]
        if clash:
            raise ValueError(
                f"SECRETS_ENV_PREFIX may not start with {clash[0]}: those variables are the "
                "platform's own"
            )
        return prefix

    @field_validator("file_root")
    @classmethod
    def _absolute_root(cls, root: str | None) -> str | None:
        if root is not None and not os.path.isabs(root):
            raise ValueError("SECRETS_FILE_ROOT must be an absolute path")
        return root

    def env_prefix_of(self, tenant: str) -> str:
        return f"{self.env_prefix}{tenant_label(tenant, _LOWER_ALNUM).upper()}__"

    def aws_prefix_of(self, tenant: str) -> str:
        return f"{self.aws_prefix}{self.tenant_folder(tenant)}/"

    def tenant_folder(self, tenant: str) -> str:
        return tenant_label(tenant, _LOWER_ALNUM + "-")

    def check(self, tenant: str, provider: str, key: str) -> None:
        """Refuse a reference outside ``tenant``'s corner of ``provider``."""
        if provider == "env":
            prefix = self.env_prefix_of(tenant)
            if not (_ENV_NAME.fullmatch(key) and key.startswith(prefix) and len(key) > len(prefix)):
                raise SecretOutsideConfinement(
                    "env_outside_prefix",
                    f"an env secret of this tenant is a variable named {prefix}<NAME> "
                    "(upper-case letters, digits, _); the prefix comes from SECRETS_ENV_PREFIX",
                )
        elif provider == "file":
            if self.file_root is None:
                raise SecretOutsideConfinement(
                    "file_provider_off",
                    "file secrets are off: set SECRETS_FILE_ROOT to the folder that holds a "
                    "folder per tenant",
                )
            parts = key.split("/")
            if not all(
                _FILE_COMPONENT.fullmatch(part) and part not in (".", "..") for part in parts
            ):
                raise SecretOutsideConfinement(
                    "file_outside_root",
                    "a file secret is a relative path inside this tenant's folder of "
                    "SECRETS_FILE_ROOT (no leading /, no . or .. or empty parts)",
                )
        else:
            prefix = self.aws_prefix_of(tenant)
            parts = key.split("/")
            if not (
                _AWS_NAME.fullmatch(key)
                and key.startswith(prefix)
                and len(key) > len(prefix)
                and all(part not in ("", ".", "..") for part in parts)
            ):
                raise SecretOutsideConfinement(
                    "aws_outside_prefix",
                    f"an AWS secret of this tenant is a name under {prefix} (no ARN, no . or "
                    ".. parts); the prefix comes from SECRETS_AWS_PREFIX",
                )


def refuse_unconfined(
    store: SecretStoreSettings, tenant: str, provider: str, key: str, field: str
) -> None:
    """``store.check`` for a reference a client gave: a 422 naming ``field`` and the rule."""
    try:
        store.check(tenant, provider, key)
    except SecretOutsideConfinement as refused:
        raise ValidationFailed(
            "The secret reference is outside this tenant's confinement.",
            errors=[field_error(field, str(refused), refused.rule)],
        ) from None


def _read_confined(root: str, folder: str, key: str) -> bytes:
    """The file ``root/folder/key``, opened component by component, refusing symbolic links
    anywhere below ``root`` and anything but a regular file."""
    nofollow = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in [folder, *key.split("/")[:-1]]:
            inner = os.open(part, nofollow | os.O_DIRECTORY, dir_fd=directory)
            os.close(directory)
            directory = inner
        descriptor = os.open(key.split("/")[-1], nofollow | os.O_NONBLOCK, dir_fd=directory)
    finally:
        os.close(directory)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise SecretUnavailable(f"secret file {key} is not a regular file")
        with os.fdopen(descriptor, "rb", closefd=False) as reader:
            content = reader.read(MAX_SECRET_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(content) > MAX_SECRET_BYTES:
        raise SecretUnavailable(f"secret file {key} is larger than {MAX_SECRET_BYTES} bytes")
    return content


class SecretResolver:
    def __init__(self, store: SecretStoreSettings, aws_client: Any = None) -> None:
        self.store = store
        self._aws = aws_client

    async def resolve(self, tenant: str, bindings: Iterable[SecretBinding]) -> dict[str, str]:
        """The values of ``tenant``'s ``bindings``, by environment variable; refused when a
        reference leaves the tenant's confinement or a value cannot be used safely."""
        values: dict[str, str] = {}
        for binding in bindings:
            self.store.check(tenant, binding.provider, binding.key)
            value = await self._value(tenant, binding)
            if len(value) < MIN_SECRET_LENGTH:
                raise SecretUnavailable(
                    f"secret for {binding.env_var} is shorter than {MIN_SECRET_LENGTH} "
                    "characters and cannot be masked safely"
                )
            if "\x00" in value:
                raise SecretUnavailable(
                    f"secret for {binding.env_var} holds a NUL byte, which an environment "
                    "variable cannot carry"
                )
            values[binding.env_var] = value
        return values

    async def _value(self, tenant: str, binding: SecretBinding) -> str:
        if binding.provider == "env":
            value = os.environ.get(binding.key)
            if value is None:
                raise SecretUnavailable(f"environment variable {binding.key} is not set")
            return value
        if binding.provider == "file":
            assert self.store.file_root is not None  # check() refused it otherwise
            folder = self.store.tenant_folder(tenant)
            try:
                content = await asyncio.to_thread(
                    _read_confined, self.store.file_root, folder, binding.key
                )
            except OSError as exc:
                raise SecretUnavailable(
                    f"cannot read secret file {binding.key} (symbolic links are not followed): "
                    f"{exc.strerror}"
                ) from None
            try:
                return content.decode().rstrip("\n")
            except UnicodeDecodeError:
                raise SecretUnavailable(f"secret file {binding.key} is not UTF-8 text") from None
        if self._aws is None:
            raise SecretUnavailable("AWS Secrets Manager is not configured on this worker")
        try:
            response = await self._aws.get_secret_value(SecretId=binding.key)
        except Exception as exc:
            raise SecretUnavailable(
                f"AWS Secrets Manager refused {binding.key}: {type(exc).__name__}"
            ) from None
        if "SecretString" not in response:
            raise SecretUnavailable(f"AWS secret {binding.key} is binary, not text")
        return str(response["SecretString"])
