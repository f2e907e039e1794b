"""Typed template parameters: every value is checked and normalized before rendering.
Patterns run on RE2 within a cost budget (``idp_common.patterns``), so no pattern or value
can hang the service.

A ``secret`` parameter is held sealed to the workers' key (``idp_common.sealing``): a
plaintext value given here is checked and sealed at once; panel-svc sends it already sealed.
Its value is checked where it is entered (the panel field), so it takes no constraints."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nacl.public import PublicKey

from idp_common.messaging.budget import oversized_value
from idp_common.patterns import PatternRefused, compile_pattern
from idp_common.redaction import MASK
from idp_common.sealing import is_sealed, seal
from idp_common.secret_values import MIN_SECRET_LENGTH
from idp_common.values import MAX_TEXT_LENGTH, as_boolean, as_number, one_of
from operation_svc.safety.verdict import Refusal

ParameterType = Literal["string", "integer", "number", "boolean", "secret"]
CONSTRAINTS = ("default", "enum", "minimum", "maximum", "min_length", "max_length", "pattern")


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    type: ParameterType = "string"
    required: bool = True
    default: Any = None
    enum: Sequence[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    allow_leading_dash: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParameterSpec:
        spec = cls(**{key: value for key, value in data.items() if not key.startswith("_")})
        constrained = any(getattr(spec, name) is not None for name in CONSTRAINTS)
        if spec.type == "secret" and (constrained or spec.allow_leading_dash):
            raise Refusal(
                "secret_constraints",
                "a secret parameter takes no default, enum, bounds, lengths, pattern or "
                "allow_leading_dash: check its value in the panel field that collects it",
                spec.name,
            )
        return spec

    def compiled_pattern(self) -> Any:
        """The pattern compiled (None without one), or a Refusal when it is refused: checked
        at save and wherever a value is checked (a pattern saved before a rule is not run)."""
        if self.pattern is None:
            return None
        try:
            return compile_pattern(self.pattern, self.max_length or MAX_TEXT_LENGTH)
        except PatternRefused as exc:
            raise Refusal("invalid_pattern", f"pattern {exc}", self.name) from None


def _as_number(spec: ParameterSpec, value: Any) -> float | int:
    try:
        number = as_number(value, integer=spec.type == "integer")
    except ValueError as exc:
        raise Refusal("type", str(exc), spec.name) from None
    if spec.minimum is not None and number < spec.minimum:
        raise Refusal("minimum", f"must be >= {spec.minimum:g}", spec.name)
    if spec.maximum is not None and number > spec.maximum:
        raise Refusal("maximum", f"must be <= {spec.maximum:g}", spec.name)
    return number


def _sealed(spec: ParameterSpec, value: Any, seal_to: PublicKey | None) -> str:
    """A secret value, sealed: ``seal_to`` seals a plaintext one given by a person; without
    it the value must arrive sealed. Refusals never quote the value."""
    if seal_to is None:
        if not is_sealed(value):
            raise Refusal("not_sealed", "a secret value must arrive sealed", spec.name)
        return str(value)
    text = _text(spec, value)
    if len(text) < MIN_SECRET_LENGTH:
        raise Refusal(
            "secret_too_short",
            f"a secret needs at least {MIN_SECRET_LENGTH} characters to be masked in output",
            spec.name,
        )
    return seal(seal_to, text)


def _text(spec: ParameterSpec, value: Any) -> str:
    """The value as text, within the limits of every parameter."""
    if not isinstance(value, str):
        raise Refusal("type", "must be a string", spec.name)
    if "\x00" in value:
        raise Refusal("nul_byte", "must not contain NUL bytes", spec.name)
    if len(value) > MAX_TEXT_LENGTH:
        raise Refusal("too_long", f"at most {MAX_TEXT_LENGTH} characters", spec.name)
    return value


Value = str | int | float | bool


def _normalize(spec: ParameterSpec, value: Any) -> Value:
    """The value as its declared type (see ``idp_common.values``), checked."""
    if is_sealed(value):
        raise Refusal("sealed_value", "a sealed value only fits a secret parameter", spec.name)
    if spec.type == "boolean":
        try:
            return as_boolean(value)
        except ValueError as exc:
            raise Refusal("type", str(exc), spec.name) from None
    if spec.type in ("integer", "number"):
        normalized: Value = _as_number(spec, value)
    else:
        text = _text(spec, value)
        if spec.min_length is not None and len(text) < spec.min_length:
            raise Refusal("min_length", f"at least {spec.min_length} characters", spec.name)
        if spec.max_length is not None and len(text) > spec.max_length:
            raise Refusal("max_length", f"at most {spec.max_length} characters", spec.name)
        compiled = spec.compiled_pattern()
        if compiled is not None and not compiled.fullmatch(text):
            raise Refusal("pattern", f"does not match {spec.pattern!r}", spec.name)
        normalized = text
    if spec.enum is not None and normalized not in [_normalize_enum(spec, v) for v in spec.enum]:
        raise Refusal("enum", one_of(spec.enum), spec.name)
    return normalized


def _normalize_enum(spec: ParameterSpec, value: Any) -> Value:
    return _as_number(spec, value) if spec.type in ("integer", "number") else str(value)


def validate_values(
    specs: Sequence[ParameterSpec], values: Mapping[str, Any], seal_to: PublicKey | None = None
) -> tuple[dict[str, Value], list[Refusal]]:
    """Check every value at once: the values as their declared types (secrets sealed), and
    every refusal; together they must fit in a job (``messaging.budget``).
    ``seal_to`` is given where a person typed the values (API, preview): plaintext secrets
    are sealed to it; elsewhere secrets must arrive sealed."""
    refusals = [
        Refusal("unknown_parameter", "this template has no such parameter", name)
        for name in sorted(set(values) - {spec.name for spec in specs})
    ]
    normalized: dict[str, Value] = {}
    for spec in specs:
        value = values.get(spec.name, spec.default)
        if value is None or value == "":
            if spec.required:
                refusals.append(Refusal("required", "a value is required", spec.name))
            else:
                normalized[spec.name] = ""
            continue
        try:
            normalized[spec.name] = (
                _sealed(spec, value, seal_to) if spec.type == "secret" else _normalize(spec, value)
            )
        except Refusal as refusal:
            refusals.append(refusal)
    if not refusals and (oversized := oversized_value(normalized)) is not None:
        refusals.append(Refusal("too_large", oversized.message, oversized.name))
    return normalized, refusals


def secret_names(specs: Iterable[ParameterSpec]) -> set[str]:
    return {spec.name for spec in specs if spec.type == "secret"}


def masked(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values as they may be shown: a sealed secret as ``***``."""
    return {name: MASK if is_sealed(value) else value for name, value in values.items()}


def without_plaintext_secrets(
    specs: Iterable[ParameterSpec], values: Mapping[str, Any]
) -> dict[str, Any]:
    """Refused values as they may be kept: a secret that did not arrive sealed as ``***``."""
    secret = secret_names(specs)
    return {
        name: MASK if name in secret and not is_sealed(value) else value
        for name, value in values.items()
    }
