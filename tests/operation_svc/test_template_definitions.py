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
    ],
)
def test_coherent_definitions_are_saved(parameter: dict[str, Any]) -> None:
    ParameterIn.model_validate({"name": "p", **parameter})
