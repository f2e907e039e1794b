"""A panel is checked against what it points at when it is saved: its operation template
exists in the tenant and takes the panel's fields (every required parameter has a field, no
field names an unknown parameter, secrets meet secrets), and every field's data source
exists. operation-svc and datasource-svc are asked as the admin who is waiting (their
credentials forwarded, so tenancy applies there too); a panel that could never run is a 422
now rather than a ``rejected`` submission later."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import httpx

from idp_common.errors import ProblemError, ValidationFailed, field_error
from panel_svc.datasources import DatasourceClient


class OperationsUnavailable(ProblemError):
    status_code, title, slug = 502, "Bad Gateway", "operation-svc-unavailable"


class FieldReference(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def field_type(self) -> str: ...
    @property
    def data_source(self) -> uuid.UUID | str | None: ...


class OperationTemplates:
    """operation-svc's templates, read as the caller."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def parameters(
        self, template: str, credentials: Mapping[str, str]
    ) -> list[dict[str, Any]] | None:
        """The template's parameters, or None when the tenant has no such template."""
        try:
            response = await self.http.get(
                f"/api/v1/templates/{template}", headers=dict(credentials)
            )
        except httpx.HTTPError as exc:
            raise OperationsUnavailable(
                f"operation-svc could not be reached at {self.http.base_url} to check "
                f"operation_template ({type(exc).__name__}); PANEL_OPERATION_API_URL says "
                "where it is"
            ) from exc
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.is_error:
            raise OperationsUnavailable(
                f"operation-svc refused to show template {template!r}: {response.status_code}"
            )
        parameters: list[dict[str, Any]] = response.json()["parameters"]
        return parameters


def _field_errors(
    template: str, parameters: list[dict[str, Any]], fields: Sequence[FieldReference]
) -> list[dict[str, str]]:
    by_name = {parameter["name"]: parameter for parameter in parameters}
    named = {field.name for field in fields}
    errors = [
        field_error(
            "fields",
            f"template {template!r} requires {name!r}: add a field of that name",
            "missing_parameter",
        )
        for name, parameter in by_name.items()
        if parameter.get("required", True)
        and parameter.get("default") is None
        and name not in named
    ]
    for index, field in enumerate(fields):
        parameter = by_name.get(field.name)
        if parameter is None:
            errors.append(
                field_error(
                    f"fields.{index}.name",
                    f"template {template!r} has no parameter {field.name!r}",
                    "unknown_parameter",
                )
            )
        elif mismatch := _type_mismatch(parameter.get("type", "string"), field.field_type):
            errors.append(
                field_error(
                    f"fields.{index}.field_type",
                    f"parameter {field.name!r} is {parameter.get('type', 'string')}: {mismatch}",
                    "type_mismatch",
                )
            )
    return errors


# The fields whose values a parameter of each type takes (a string takes any but a secret).
_FIELDS_OF = {
    "integer": frozenset({"integer", "select"}),
    "number": frozenset({"number", "integer", "select"}),
    "boolean": frozenset({"boolean", "select"}),
}


def _type_mismatch(parameter_type: str, field_type: str) -> str | None:
    """Why a field of ``field_type`` can never feed a parameter of ``parameter_type``: its
    every submission would be rejected after it was accepted."""
    if (parameter_type == "secret") != (field_type == "secret"):
        return "a secret parameter takes a secret field, and only it does"
    if field_type == "multiselect":
        return "a multiselect's value is a list, which no parameter takes"
    fields = _FIELDS_OF.get(parameter_type)
    if fields is not None and field_type not in fields:
        return f"it takes a field of type {' or '.join(sorted(fields))}, not {field_type}"
    return None


class PanelReferences:
    def __init__(self, templates: OperationTemplates, datasources: DatasourceClient) -> None:
        self.templates = templates
        self.datasources = datasources

    async def check(
        self, template: str, fields: Sequence[FieldReference], credentials: Mapping[str, str]
    ) -> list[uuid.UUID | None]:
        """Refuse (422, every problem at once) a panel whose references cannot work; else
        each field's data source (named by id or slug) as its id, None for a field without."""
        errors: list[dict[str, str]] = []
        parameters = await self.templates.parameters(template, credentials)
        if parameters is None:
            errors.append(
                field_error(
                    "operation_template",
                    f"this tenant has no operation template {template!r}",
                    "unknown_template",
                )
            )
        else:
            errors += _field_errors(template, parameters, fields)
        sources: list[uuid.UUID | None] = []
        for index, field in enumerate(fields):
            source = field.data_source
            found = None if source is None else await self.datasources.find(source, credentials)
            if source is not None and found is None:
                errors.append(
                    field_error(
                        f"fields.{index}.data_source",
                        f"this tenant has no data source {source}",
                        "unknown_data_source",
                    )
                )
            sources.append(found)
        if errors:
            raise ValidationFailed("The panel points at what cannot run it.", errors=errors)
        return sources
