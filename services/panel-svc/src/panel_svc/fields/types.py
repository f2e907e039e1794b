"""Field types: how each one's value is checked, and how it is described in JSON Schema.
No I/O here; patterns run on RE2 within a cost budget (``idp_common.patterns``)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import re2

from idp_common.patterns import PatternRefused, compile_pattern
from idp_common.secret_values import MIN_SECRET_LENGTH
from idp_common.values import MAX_TEXT_LENGTH, as_boolean, as_number, one_of

FieldType = Literal[
    "text",
    "textarea",
    "number",
    "integer",
    "boolean",
    "select",
    "multiselect",
    "secret",
    "email",
    "url",
    "date",
    "datetime",
]
CHOICE_TYPES = frozenset({"select", "multiselect"})
EMAIL = re2.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class Invalid(ValueError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class FieldRules:
    """What one field accepts (built from a stored field definition)."""

    field_type: str
    min_value: float | None = None
    max_value: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    allowed_values: list[str] | None = None
    options: list[str] | None = None  # static choices; None for a dynamic source

    @classmethod
    def of(cls, definition: Any, options: list[str] | None) -> FieldRules:
        """The rules of a field definition (stored or submitted) with its static options."""
        return cls(
            field_type=definition.field_type,
            min_value=definition.min_value,
            max_value=definition.max_value,
            min_length=definition.min_length,
            max_length=definition.max_length,
            pattern=definition.pattern,
            allowed_values=definition.allowed_values,
            options=options,
        )

    def compiled_pattern(self) -> Any:
        """The pattern compiled (None without one), or Invalid when it is refused."""
        if self.pattern is None:
            return None
        try:
            return compile_pattern(self.pattern, self.max_length or MAX_TEXT_LENGTH)
        except PatternRefused as exc:
            raise Invalid(f"pattern {exc}", "invalid_pattern") from None

    def check(self, value: Any) -> Any:
        """The value, normalized, or Invalid naming what is wrong."""
        checker = {
            "number": self._number,
            "integer": self._number,
            "boolean": self._boolean,
            "select": self._choice,
            "multiselect": self._choices,
            "date": self._date,
            "datetime": self._datetime,
            "secret": self._secret,
        }.get(self.field_type, self._string)
        return checker(value)

    def _text(self, value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be a string", "type")
        if "\x00" in value:
            raise Invalid("must not contain NUL bytes", "nul_byte")
        if len(value) > MAX_TEXT_LENGTH:
            raise Invalid(f"at most {MAX_TEXT_LENGTH} characters", "too_long")
        return value

    def _string(self, value: Any) -> str:
        text = self._text(value)
        if self.min_length is not None and len(text) < self.min_length:
            raise Invalid(f"at least {self.min_length} characters", "min_length")
        if self.max_length is not None and len(text) > self.max_length:
            raise Invalid(f"at most {self.max_length} characters", "max_length")
        compiled = self.compiled_pattern()
        if compiled is not None and not compiled.fullmatch(text):
            raise Invalid(f"does not match {self.pattern!r}", "pattern")
        if self.field_type == "email" and not EMAIL.fullmatch(text):
            raise Invalid("must be an email address", "email")
        if self.field_type == "url":
            parts = urllib.parse.urlsplit(text)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise Invalid("must be an http(s) URL", "url")
        if self.allowed_values is not None and text not in self.allowed_values:
            raise Invalid(one_of(self.allowed_values), "allowed_values")
        return text

    def _secret(self, value: Any) -> str:
        text = self._string(value)
        if len(text) < MIN_SECRET_LENGTH:
            raise Invalid(
                f"a secret needs at least {MIN_SECRET_LENGTH} characters to be masked in output",
                "secret_too_short",
            )
        return text

    def _number(self, value: Any) -> int | float:
        try:
            number = as_number(value, integer=self.field_type == "integer")
        except ValueError as exc:
            raise Invalid(str(exc), "type") from None
        if self.min_value is not None and number < self.min_value:
            raise Invalid(f"must be >= {self.min_value:g}", "minimum")
        if self.max_value is not None and number > self.max_value:
            raise Invalid(f"must be <= {self.max_value:g}", "maximum")
        return number

    def _boolean(self, value: Any) -> bool:
        try:
            return as_boolean(value)
        except ValueError as exc:
            raise Invalid(str(exc), "type") from None

    def _choice(self, value: Any) -> str:
        text = self._text(value)
        if self.options is not None and text not in self.options:
            raise Invalid("is not one of the options", "not_an_option")
        return text

    def _choices(self, value: Any) -> list[str]:
        if not isinstance(value, list):
            raise Invalid("must be a list", "type")
        chosen = [self._choice(item) for item in value]
        if len(set(chosen)) != len(chosen):
            raise Invalid("must not repeat an option", "duplicate")
        return chosen

    def _date(self, value: Any) -> str:
        try:
            return date.fromisoformat(self._text(value)).isoformat()
        except ValueError:
            raise Invalid("must be a date (YYYY-MM-DD)", "date") from None

    def _datetime(self, value: Any) -> str:
        try:
            parsed = datetime.fromisoformat(self._text(value))
        except ValueError:
            raise Invalid("must be an ISO 8601 date-time", "datetime") from None
        if parsed.tzinfo is None:
            raise Invalid("must include a timezone", "datetime")
        return parsed.isoformat()


def json_schema(rules: FieldRules, *, title: str, description: str, default: Any) -> dict[str, Any]:
    """The field as a JSON Schema (draft 2020-12) property."""
    kinds: Mapping[str, dict[str, Any]] = {
        "text": {"type": "string"},
        "textarea": {"type": "string"},
        "secret": {"type": "string", "format": "password", "writeOnly": True},
        "email": {"type": "string", "format": "email"},
        "url": {"type": "string", "format": "uri"},
        "number": {"type": "number"},
        "integer": {"type": "integer"},
        "boolean": {"type": "boolean"},
        "select": {"type": "string"},
        "multiselect": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "date": {"type": "string", "format": "date"},
        "datetime": {"type": "string", "format": "date-time"},
    }
    schema: dict[str, Any] = {"title": title, **kinds[rules.field_type]}
    if description:
        schema["description"] = description
    limits = {
        "minimum": rules.min_value,
        "maximum": rules.max_value,
        "minLength": rules.min_length,
        "maxLength": rules.max_length,
        # Anchored: a value must match as a whole, as it is checked here, where a JSON Schema
        # pattern matches anywhere in it. Still RE2 syntax (the schema endpoint says so).
        "pattern": None if rules.pattern is None else f"^(?:{rules.pattern})$",
    }
    schema |= {key: value for key, value in limits.items() if value is not None}
    if rules.allowed_values is not None:
        schema["enum"] = rules.allowed_values
    if rules.options is not None:
        target = schema["items"] if rules.field_type == "multiselect" else schema
        target["enum"] = rules.options
    if default is not None and rules.field_type != "secret":
        schema["default"] = default
    return schema
