"""Validation of submitted values against the panel's fields, reporting every bad field."""

from __future__ import annotations

from typing import Any

from idp_common.errors import field_error
from panel_svc.models import PanelField


def validate_values(fields: list[PanelField], data: dict[str, Any]) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    known = {field.name: field for field in fields}
    for name in sorted(set(data) - set(known)):
        errors.append(field_error(f"data.{name}", "unknown field", "unknown_field"))
    for field in fields:
        location = f"data.{field.name}"
        if field.name not in data or data[field.name] in (None, ""):
            if field.is_required:
                errors.append(field_error(location, "this field is required", "required"))
            continue
        value = data[field.name]
        if not isinstance(value, str):
            errors.append(field_error(location, "must be a string", "type"))
        elif "\x00" in value:
            errors.append(field_error(location, "must not contain NUL bytes", "nul_byte"))
        elif field.max_length is not None and len(value) > field.max_length:
            errors.append(
                field_error(location, f"at most {field.max_length} characters", "max_length")
            )
    return errors
