"""Validation of submitted values against the panel's fields, reporting every bad field."""

from __future__ import annotations

from typing import Any

from idp_common.errors import field_error
from panel_svc.datasources import OptionsLookup
from panel_svc.fields.types import Invalid
from panel_svc.models import PanelField


def validate_values(
    fields: list[PanelField], data: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The values normalized per field type (defaults applied), and every error at once."""
    errors = [
        field_error(f"data.{name}", "unknown field", "unknown_field")
        for name in sorted(set(data) - {field.name for field in fields})
    ]
    clean: dict[str, Any] = {}
    for field in fields:
        value = data.get(field.name, field.default)
        if value is None or value == "" or value == []:
            if field.is_required:
                errors.append(
                    field_error(f"data.{field.name}", "this field is required", "required")
                )
            continue
        try:
            clean[field.name] = field.rules().check(value)
        except Invalid as exc:
            errors.append(field_error(f"data.{field.name}", str(exc), exc.code))
    return clean, errors


def sent_to_source(field: PanelField, fields: list[PanelField]) -> list[str]:
    """The fields whose values ``field``'s data source is sent: those it depends on, but a
    secret (refused since; a panel saved before may still name one)."""
    secret = {other.name for other in fields if other.field_type == "secret"}
    return [name for name in field.depends_on if name not in secret]


async def dynamic_errors(
    fields: list[PanelField], values: dict[str, Any], lookup: OptionsLookup
) -> list[dict[str, str]]:
    """Values of dynamic fields must be among the options their source offers now."""
    errors = []
    for field in fields:
        if field.data_source is None or field.name not in values:
            continue
        dependent = {name: values.get(name) for name in sent_to_source(field, fields)}
        offered = await lookup.values(field.data_source, dependent)
        chosen = values[field.name]
        for value in chosen if isinstance(chosen, list) else [chosen]:
            if value not in offered:
                errors.append(
                    field_error(
                        f"data.{field.name}",
                        f"{value!r} is not among the options the source offers now",
                        "not_an_option",
                    )
                )
                break
    return errors
