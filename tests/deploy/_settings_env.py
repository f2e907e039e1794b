"""Environment variables each deployable accepts, derived from its pydantic-settings class.

Shared by the compose and kustomize tests, so that a deployment file can only set
variables the service actually reads: a misspelt or stale name would otherwise be
ignored silently (the settings classes use ``extra="ignore"``).
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

from console.config import ConsoleSettings
from datasource_svc.config import DatasourceSettings
from executor_worker.config import WorkerSettings
from idp_common.settings import ServiceSettings
from operation_svc.config import OperationSettings
from panel_svc.config import PanelSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
# The executor-worker runs as root so that each run gets a uid of its own, with only what
# that takes: chown its work folder, remove what it left in shared folders, kill and clean
# up as its uid, and give the launched command that uid.
WORKER_CAPABILITIES = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}
SettingsT = typing.TypeVar("SettingsT", bound=BaseSettings)

# Deployable name (Dockerfile target, compose service, Kubernetes app name) -> settings.
SETTINGS_BY_SERVICE: dict[str, type[ServiceSettings]] = {
    "panel-svc": PanelSettings,
    "operation-svc": OperationSettings,
    "datasource-svc": DatasourceSettings,
    "executor-worker": WorkerSettings,
}
# Deployables that serve people rather than the bus: no broker, no database.
FRONTENDS: dict[str, type[BaseSettings]] = {"console": ConsoleSettings}
DEPLOYABLES: dict[str, type[BaseSettings]] = {**SETTINGS_BY_SERVICE, **FRONTENDS}
# Services that own a database and therefore have a `<svc> migrate` command.
DATABASE_SERVICES = ("panel-svc", "operation-svc", "datasource-svc")

# Standard variables read by libraries rather than by our settings classes.
STANDARD_PREFIXES = ("OTEL_",)


def env_prefix(cls: type[BaseSettings]) -> str:
    return str(cls.model_config.get("env_prefix", ""))


def _nested_settings(annotation: object) -> type[BaseSettings] | None:
    """The BaseSettings subclass a field holds (directly or in an Optional), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            nested = _nested_settings(arg)
            if nested is not None:
                return nested
    return None


def accepted_env_names(cls: type[BaseSettings]) -> frozenset[str]:
    """Upper-cased variable names `cls` reads: its own prefix, and the prefix of each
    nested settings class (SQS_*, AUTH_*) for the fields of that class."""
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        nested = _nested_settings(field.annotation)
        if nested is not None:
            names.update(f"{env_prefix(nested)}{sub}".upper() for sub in nested.model_fields)
        else:
            names.add(f"{env_prefix(cls)}{field_name}".upper())
    return frozenset(names)


def rejected_env_names(cls: type[BaseSettings], names: Iterable[str]) -> list[str]:
    accepted = accepted_env_names(cls)
    return sorted(
        name
        for name in names
        if name.upper() not in accepted and not name.upper().startswith(STANDARD_PREFIXES)
    )


def default_port(cls: type[BaseSettings]) -> int:
    port = cls.model_fields["port"].default
    assert isinstance(port, int)
    return port


def _owned_prefixes() -> tuple[str, ...]:
    prefixes = {env_prefix(cls) for cls in DEPLOYABLES.values()}
    for cls in DEPLOYABLES.values():
        for field in cls.model_fields.values():
            nested = _nested_settings(field.annotation)
            if nested is not None:
                prefixes.add(env_prefix(nested))
    return tuple(sorted(prefixes))


def load_settings(
    cls: type[SettingsT], env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> SettingsT:
    """Instantiate `cls` from exactly `env` (the host's own PANEL_*, SQS_*, ... are
    removed first), as the process would in its container."""
    prefixes = _owned_prefixes()
    for name in list(os.environ):
        if name.upper().startswith(prefixes):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cls()


_COMPOSE_VARIABLE = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?[-?](?P<default>[^}]*))?\}"
)


def compose_interpolate(value: str) -> str:
    """Resolve ``${VAR:-default}`` the way Compose does when VAR is unset."""
    resolved = _COMPOSE_VARIABLE.sub(lambda m: m.group("default") or "", value)
    return resolved.replace("$$", "$")


def load_yaml_documents(path: Path) -> list[object]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]
