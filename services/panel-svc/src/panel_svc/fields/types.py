"""Field types: how each one's value is checked, and how it is described in JSON Schema.
No I/O here; patterns run on RE2 within a cost budget (``idp_common.patterns``)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeVar

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
NUMBER_TYPES = frozenset({"number", "integer"})
# Kept as text (a multiselect's each choice): lengths and a pattern apply to them.
TEXT_TYPES = frozenset(
    {"text", "textarea", "secret", "email", "url", "select", "multiselect", "date", "datetime"}
)
Kept = TypeVar("Kept", str, int | float, bool)
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

    def check_one(self, value: Any) -> Any:
        """One value as the field takes it (a multiselect's: one choice), normalized, or
        Invalid."""
        return self._choice(value) if self.field_type == "multiselect" else self.check(value)

    def _text(self, value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be a string", "type")
        if "\x00" in value:
            raise Invalid("must not contain NUL bytes", "nul_byte")
        if len(value) > MAX_TEXT_LENGTH:
            raise Invalid(f"at most {MAX_TEXT_LENGTH} characters", "too_long")
        return value

    def _constrained(self, text: str) -> str:
        """Text as kept (a date's or date-time's normalized) within the lengths, the pattern
        and the allowed values."""
        if self.min_length is not None and len(text) < self.min_length:
            raise Invalid(f"at least {self.min_length} characters", "min_length")
        if self.max_length is not None and len(text) > self.max_length:
            raise Invalid(f"at most {self.max_length} characters", "max_length")
        compiled = self.compiled_pattern()
        if compiled is not None and not compiled.fullmatch(text):
            raise Invalid(f"does not match {self.pattern!r}", "pattern")
        return self._allowed(text)

    def _allowed(self, value: Kept) -> Kept:
        allowed = self.allowed()
        if allowed is not None and value not in allowed:
            raise Invalid(one_of(allowed), "allowed_values")
        return value

    def allowed(self) -> list[Any] | None:
        """The allowed values as the field's type (numbers, booleans; they are kept as
        text), Invalid for one that is not of it."""
        if self.allowed_values is None or self.field_type in TEXT_TYPES:
            return self.allowed_values
        if self.field_type in NUMBER_TYPES:
            return [self._as_number(text) for text in self.allowed_values]
        return [self._as_boolean(text) for text in self.allowed_values]

    def _string(self, value: Any) -> str:
        text = self._constrained(self._text(value))
        if self.field_type == "email" and not EMAIL.fullmatch(text):
            raise Invalid("must be an email address", "email")
        if self.field_type == "url":
            parts = urllib.parse.urlsplit(text)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise Invalid("must be an http(s) URL", "url")
        return text

    def _secret(self, value: Any) -> str:
        text = self._string(value)
        if len(text) < MIN_SECRET_LENGTH:
            raise Invalid(
                f"a secret needs at least {MIN_SECRET_LENGTH} characters to be masked in output",
                "secret_too_short",
            )
        return text

    def _as_number(self, value: Any) -> int | float:
        try:
            return as_number(value, integer=self.field_type == "integer")
        except ValueError as exc:
            raise Invalid(str(exc), "type") from None

    def _number(self, value: Any) -> int | float:
        number = self._as_number(value)
        if self.min_value is not None and number < self.min_value:
            raise Invalid(f"must be >= {self.min_value:g}", "minimum")
        if self.max_value is not None and number > self.max_value:
            raise Invalid(f"must be <= {self.max_value:g}", "maximum")
        return self._allowed(number)

    def _boolean(self, value: Any) -> bool:
        return self._allowed(self._as_boolean(value))

    @staticmethod
    def _as_boolean(value: Any) -> bool:
        try:
            return as_boolean(value)
        except ValueError as exc:
            raise Invalid(str(exc), "type") from None

    def _choice(self, value: Any) -> str:
        text = self._constrained(self._text(value))
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
            day = date.fromisoformat(self._text(value))
        except ValueError:
            raise Invalid("must be a date (YYYY-MM-DD)", "date") from None
        return self._constrained(day.isoformat())

    def _datetime(self, value: Any) -> str:
        try:
            parsed = datetime.fromisoformat(self._text(value))
        except ValueError:
            raise Invalid("must be an ISO 8601 date-time", "datetime") from None
        if parsed.tzinfo is None:
            raise Invalid("must include a timezone", "datetime")
        return self._constrained(parsed.isoformat())


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
    # A multiselect's text constraints hold for each choice.
    each = schema["items"] if rules.field_type == "multiselect" else schema
    limits = {
        "minimum": rules.min_value,
        "maximum": rules.max_value,
        "minLength": rules.min_length,
        "maxLength": rules.max_length,
        # Anchored: a value must match as a whole, as it is checked here, where a JSON Schema
        # pattern matches anywhere in it. Still RE2 syntax (the schema endpoint says so).
        "pattern": None if rules.pattern is None else f"^(?:{rules.pattern})$",
    }
    each |= {key: value for key, value in limits.items() if value is not None}
    try:
        allowed = rules.allowed()
    except Invalid:  # saved before allowed values were checked: nothing fits, here as there
        allowed = rules.allowed_values
    if rules.options is not None:
        each["enum"] = [option for option in rules.options if allowed is None or option in allowed]
    elif allowed is not None:
        each["enum"] = allowed
    if default is not None and rules.field_type != "secret":
        schema["default"] = default
    return schema
