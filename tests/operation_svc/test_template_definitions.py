"""Definitions that could never work are refused when they are saved, naming the problem."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from operation_svc.templates.schemas import ParameterIn


@pytest.mark.parametrize(
    ("parameter", "problem"),
    [
        ({"type": "integer", "enum": ["a", "b"]}, "enum value 'a' does not fit"),
        ({"type": "integer", "enum": [1, 2.5]}, "enum value 2.5 does not fit"),
        ({"type": "number", "enum": ["nan"]}, "enum value 'nan' does not fit"),
        ({"enum": ["a", "b"], "default": "c"}, "default 'c' does not fit"),
        ({"type": "integer", "default": "seven"}, "default 'seven' does not fit"),
        ({"type": "integer", "minimum": 1, "default": 0}, "default 0 does not fit"),
        ({"pattern": "[a-z]+", "default": "ABC"}, "default 'ABC' does not fit"),
        ({"pattern": "[a-z]+", "enum": ["ok", "NO"]}, "enum value 'NO' does not fit"),
        ({"max_length": 2, "default": "long"}, "default 'long' does not fit"),
        ({"pattern": "(a?){1000}" * 14}, "pattern is too costly"),
        ({"pattern": "(?:.*a){200}"}, "pattern is too costly"),
        ({"pattern": "[a-z0-9-]{1,63}"}, "pattern is too costly"),
    ],
)
def test_enum_values_and_defaults_must_fit_the_parameter(
    parameter: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        ParameterIn.model_validate({"name": "p", **parameter})


@pytest.mark.parametrize(
    "parameter",
    [
        {"type": "integer", "enum": [1, "2"], "default": 2},
        {"type": "boolean", "default": "true"},
        {"enum": ["a", "b"], "default": "a"},
        {"pattern": "[a-z0-9-]{1,63}", "max_length": 63},
    ],
)
def test_coherent_definitions_are_saved(parameter: dict[str, Any]) -> None:
    ParameterIn.model_validate({"name": "p", **parameter})
