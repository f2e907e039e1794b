"""Every field type accepts good values and refuses bad ones, naming why."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import ValidationError

from panel_svc.fields.types import FieldRules, Invalid, json_schema
from panel_svc.panels.schemas import FieldIn

CASES: list[tuple[FieldRules, list[Any], list[tuple[Any, str]]]] = [
    (
        FieldRules("text", min_length=2, max_length=5, pattern="[a-z]+"),
        ["ab", "abcde"],
        [
            ("a", "min_length"),
            ("abcdef", "max_length"),
            ("AB", "pattern"),
            (3, "type"),
            ("a\x00b", "nul_byte"),
            ("x" * 20_000, "too_long"),
        ],
    ),
    (FieldRules("textarea"), ["line one\nline two"], [(["x"], "type")]),
    (FieldRules("secret", min_length=8), ["correct-horse"], [("short", "min_length")]),
    (FieldRules("secret"), ["abcd"], [("abc", "secret_too_short"), (1234, "type")]),
    (FieldRules("email"), ["ops@example.com"], [("not-an-email", "email"), ("a@b", "email")]),
    (FieldRules("url"), ["https://example.com/x"], [("ftp://x", "url"), ("example.com", "url")]),
    (
        FieldRules("number", min_value=0, max_value=10),
        [0, 2.5, 10, "5", "2.5"],
        [
            (-1, "minimum"),
            (11, "maximum"),
            ("5 ", "type"),
            ("0x5", "type"),
            ("nan", "type"),
            (True, "type"),
            (float("nan"), "type"),
        ],
    ),
    (
        FieldRules("integer", min_value=1),
        [1, 7, 3.0, "2", 2.0**53, "1e15", 10**30],
        [
            (1.5, "type"),
            (0, "minimum"),
            ("2.5", "type"),
            ("2_000", "type"),
            (" 2", "type"),
            (1.5e300, "type"),  # not exact: would run with digits nobody wrote
            ("1e300", "type"),
        ],
    ),
    (
        FieldRules("boolean"),
        [True, False, "true"],
        [("yes", "type"), ("TRUE", "type"), (1, "type")],
    ),
    (FieldRules("select", options=["eu", "us"]), ["eu"], [("ap", "not_an_option"), (1, "type")]),
    (
        FieldRules("multiselect", options=["a", "b", "c"]),
        [["a"], ["a", "c"]],
        [(["a", "a"], "duplicate"), (["z"], "not_an_option"), ("a", "type")],
    ),
    (FieldRules("date"), ["2026-11-22"], [("22/11/2026", "date"), ("2026-13-01", "date")]),
    (
        FieldRules("datetime"),
        ["2026-11-22T10:00:00+00:00"],
        [("2026-11-22T10:00:00", "datetime"), ("yesterday", "datetime")],
    ),
    (
        FieldRules("text", allowed_values=["small", "large"]),
        ["small"],
        [("medium", "allowed_values")],
    ),
    # Every constraint the form publishes holds for every type, not for text alone.
    (
        FieldRules(
            "select", options=["us", "eu", "use"], allowed_values=["us", "use"], max_length=2
        ),
        ["us"],
        [("eu", "allowed_values"), ("use", "max_length")],
    ),
    (
        FieldRules("select", allowed_values=["us"], pattern="u.", max_length=2),  # dynamic
        ["us"],
        [("eu", "pattern"), ("uk", "allowed_values"), ("usa", "max_length"), ("", "pattern")],
    ),
    (
        FieldRules("multiselect", options=["a", "b", "c"], allowed_values=["a", "b"]),
        [["a", "b"], []],
        [(["a", "c"], "allowed_values"), (["c"], "allowed_values")],
    ),
    (
        FieldRules("integer", allowed_values=["1", "2"]),
        [1, "2", 2.0],
        [(7, "allowed_values"), ("3", "allowed_values")],
    ),
    (
        FieldRules("number", allowed_values=["0.5", "1e2"]),
        [0.5, 100, "100"],
        [(0.25, "allowed_values"), ("1e3", "allowed_values")],
    ),
    (FieldRules("boolean", allowed_values=["true"]), [True, "true"], [(False, "allowed_values")]),
    (
        FieldRules("date", allowed_values=["2025-01-01"], pattern="2025-.*"),
        ["2025-01-01", "20250101"],
        [("1999-12-31", "pattern"), ("2025-01-02", "allowed_values"), ("2025-W01-1", "pattern")],
    ),
    (
        FieldRules("datetime", pattern=r"2024-.*\+00:00", min_length=25, max_length=25),
        ["2024-01-01T00:00:00Z", "2024-06-01T10:00:00+00:00"],
        [("2024-01-01T00:00:00+01:00", "pattern"), ("2024-01-01T00:00:00.5Z", "max_length")],
    ),
]


@pytest.mark.parametrize(("rules", "good", "bad"), CASES, ids=[c[0].field_type for c in CASES])
def test_field_types(rules: FieldRules, good: list[Any], bad: list[tuple[Any, str]]) -> None:
    for value in good:
        rules.check(value)
    for value, code in bad:
        with pytest.raises(Invalid) as refused:
            rules.check(value)
        assert refused.value.code == code, value


def test_a_catastrophic_pattern_returns_promptly() -> None:
    rules = FieldRules("text", pattern="(a+)+$")
    started = time.perf_counter()
    with pytest.raises(Invalid):
        rules.check("a" * 9_999 + "!")
    assert time.perf_counter() - started < 2  # run, it took seconds or more


@pytest.mark.parametrize("pattern", ["(unclosed", r"\C", r"a\C+", r"\\\C", r"[a-z]\C"])
def test_a_pattern_that_does_not_compile_here_or_in_the_console_is_refused(pattern: str) -> None:
    with pytest.raises(Invalid) as refused:
        FieldRules("text", pattern=pattern).compiled_pattern()
    assert refused.value.code == "invalid_pattern"


@pytest.mark.parametrize("pattern", [r"\\C", r"[\\]C", r"(?i)c", r"\pL+"])
def test_a_pattern_both_engines_run_is_kept(pattern: str) -> None:
    FieldRules("text", pattern=pattern).compiled_pattern()


COSTLY = "(a?){1000}" * 20  # 29 s per 4,096-character value when it was run


def test_a_costly_pattern_saved_before_is_refused_when_used_never_run() -> None:
    stored = FieldRules("text", pattern=COSTLY)
    started = time.perf_counter()
    with pytest.raises(Invalid) as refused:
        stored.check("a" * 4096)
    assert time.perf_counter() - started < 2  # run, it took seconds or more
    assert refused.value.code == "invalid_pattern"
    assert "max_length" in str(refused.value)


@pytest.mark.parametrize(
    ("pattern", "max_length"),
    [(COSTLY, None), ("(?:a?){300}", None), (r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", None)],
)
def test_a_costly_pattern_is_refused_at_save(pattern: str, max_length: int | None) -> None:
    with pytest.raises(ValidationError, match="pattern is too costly"):
        FieldIn.model_validate(
            {"name": "t", "label": "t", "field_type": "text", "pattern": pattern}
            | {"max_length": max_length}
        )


def test_a_max_length_makes_room_for_a_larger_pattern() -> None:
    FieldIn.model_validate(
        {"name": "t", "label": "t", "field_type": "text", "max_length": 63}
        | {"pattern": r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"}
    )


@pytest.mark.parametrize(
    ("field_type", "constraint"),
    [
        ("integer", {"pattern": "[12]"}),
        ("number", {"max_length": 2}),
        ("boolean", {"min_length": 1}),
        ("text", {"min_value": 1}),
        ("date", {"max_value": 1}),
    ],
)
def test_a_constraint_that_does_not_apply_to_the_type_is_refused_naming_it(
    field_type: str, constraint: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as refused:
        FieldIn.model_validate({"name": "n", "label": "n", "field_type": field_type} | constraint)
    (error,) = refused.value.errors()
    assert error["ctx"]["path"] == list(constraint)
    assert f"does not apply to a {field_type} field" in error["msg"]


@pytest.mark.parametrize(
    ("field_type", "allowed"), [("integer", ["1", "1.5"]), ("number", ["nan"]), ("boolean", ["1"])]
)
def test_allowed_values_not_of_the_type_are_refused_naming_them(
    field_type: str, allowed: list[str]
) -> None:
    with pytest.raises(ValidationError) as refused:
        FieldIn.model_validate(
            {"name": "n", "label": "n", "field_type": field_type, "allowed_values": allowed}
        )
    (error,) = refused.value.errors()
    assert error["ctx"]["path"] == ["allowed_values"]


@pytest.mark.parametrize(
    "bounds",
    [
        {"field_type": "number", "min_value": 5, "max_value": 1.5},
        {"min_length": 5, "max_length": 2},
    ],
)
def test_a_maximum_below_its_minimum_is_refused_naming_the_maximum(
    bounds: dict[str, Any],
) -> None:
    """The 422 named the field alone (fields.0), not which of its bounds."""
    with pytest.raises(ValidationError) as refused:
        FieldIn.model_validate({"name": "n", "label": "n"} | bounds)
    (error,) = refused.value.errors()
    low, high = list(bounds)[-2:]
    assert error["ctx"]["path"] == [high]
    assert f"({low} 5)" in error["msg"]


def options(*values: str) -> list[dict[str, str]]:
    return [{"value": value, "label": value} for value in values]


@pytest.mark.parametrize(
    ("field", "path"),
    [
        ({"allowed_values": ["ok", "abc"], "max_length": 2}, ["allowed_values", 1]),
        ({"allowed_values": ["abc"], "pattern": "x+"}, ["allowed_values", 0]),
        ({"field_type": "number", "allowed_values": ["5"], "max_value": 2}, ["allowed_values", 0]),
        (
            {"field_type": "select", "options": options("a"), "allowed_values": ["b"]},
            ["allowed_values"],
        ),
        (
            {"field_type": "multiselect", "options": options("a", "bb"), "max_length": 1},
            ["options", 1],
        ),
    ],
)
def test_constraints_that_refuse_an_allowed_value_or_an_offered_option_are_refused(
    field: dict[str, Any], path: list[str | int]
) -> None:
    """Each was saved: a form offering what its submission refuses, or a required field
    nothing could fill (a select of no option)."""
    with pytest.raises(ValidationError) as refused:
        FieldIn.model_validate({"name": "n", "label": "n"} | field)
    (error,) = refused.value.errors()
    assert error["ctx"]["path"] == path


def test_allowed_values_may_leave_out_options_and_name_values_of_a_dynamic_source() -> None:
    hidden = {"field_type": "select", "options": options("a", "abc"), "allowed_values": ["a"]}
    FieldIn.model_validate({"name": "n", "label": "n", "max_length": 2} | hidden)
    dynamic = {"field_type": "select", "data_source": "regions", "allowed_values": ["eu"]}
    FieldIn.model_validate({"name": "n", "label": "n"} | dynamic)


def test_a_default_outside_the_allowed_values_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        FieldIn.model_validate(
            {"name": "h", "label": "h", "field_type": "select", "default": "eu"}
            | {
                "options": [{"value": v, "label": v} for v in ("us", "eu")],
                "allowed_values": ["us"],
            }
        )
    (error,) = refused.value.errors()
    assert error["ctx"]["path"] == ["default"]


@pytest.mark.parametrize(
    ("field", "default", "kept"),
    [
        ({"field_type": "integer", "min_value": 1, "max_value": 10}, "5", 5),
        ({"field_type": "integer"}, 5.0, 5),
        ({"field_type": "number"}, "2.5", 2.5),
        ({"field_type": "boolean"}, "true", True),
        ({"field_type": "datetime"}, "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+00:00"),
        ({"field_type": "date"}, "20240101", "2024-01-01"),
        ({"field_type": "text"}, "5", "5"),
    ],
)
def test_a_default_is_kept_as_the_fields_type(
    field: dict[str, Any], default: Any, kept: Any
) -> None:
    stored = FieldIn.model_validate({"name": "n", "label": "n", "default": default} | field)
    assert stored.default == kept
    assert type(stored.default) is type(kept)
    schema = json_schema(stored.rules(), title="n", description="", default=stored.default)
    assert type(schema["default"]) is type(kept)


@pytest.mark.parametrize(
    ("field", "default"),
    [
        ({"field_type": "integer", "max_value": 4}, "5"),
        ({"field_type": "integer"}, "5.5"),
        ({"field_type": "integer"}, str(2**53 + 1)),  # would be kept as other digits
        ({"field_type": "boolean"}, "yes"),
        ({"field_type": "boolean"}, 1),
        ({"field_type": "number"}, " 5"),
        ({"field_type": "text"}, 5),
        ({"field_type": "datetime"}, "2024-01-01T00:00:00"),
        ({"field_type": "multiselect", "options": [{"value": "a", "label": "a"}]}, "a"),
    ],
)
def test_a_default_not_of_the_fields_type_is_refused_naming_it(
    field: dict[str, Any], default: Any
) -> None:
    with pytest.raises(ValidationError) as refused:
        FieldIn.model_validate({"name": "n", "label": "n", "default": default} | field)
    (error,) = refused.value.errors()
    assert error["ctx"]["path"] == ["default"]


def test_json_schema_publishes_the_constraints_as_they_are_checked() -> None:
    multi = json_schema(
        FieldRules("multiselect", options=["a", "b", "c"], allowed_values=["a", "c"], pattern="."),
        title="Pick",
        description="",
        default=None,
    )
    assert multi["items"] == {"type": "string", "enum": ["a", "c"], "pattern": "^(?:.)$"}
    number = json_schema(
        FieldRules("integer", allowed_values=["1", "2"]), title="N", description="", default=None
    )
    assert number["enum"] == [1, 2]


def test_json_schema_describes_each_type() -> None:
    schema = json_schema(
        FieldRules("multiselect", options=["a", "b"]), title="Pick", description="", default=None
    )
    assert schema == {
        "title": "Pick",
        "type": "array",
        "uniqueItems": True,
        "items": {"type": "string", "enum": ["a", "b"]},
    }
    secret = json_schema(
        FieldRules("secret", max_length=64), title="Token", description="x", default="never-shown"
    )
    assert secret == {
        "title": "Token",
        "description": "x",
        "type": "string",
        "format": "password",
        "writeOnly": True,
        "maxLength": 64,
    }
