"""What one template version renders: the planner shared by preview and execution creation,
so a preview shows exactly the argv a worker will run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from nacl.public import PublicKey

from operation_svc.models import OperationTemplate
from operation_svc.safety.commands import RenderedCommand, render_command
from operation_svc.safety.http import RenderedHttp, render_http
from operation_svc.safety.parameters import ParameterSpec, validate_values
from operation_svc.safety.verdict import Refusal

Rendered = RenderedCommand | RenderedHttp


@dataclass(frozen=True)
class TemplateDefinition:
    operation_type: str
    command_template: str | None
    argv: list[str] | None
    http_spec: dict[str, Any] | None
    parameters: list[dict[str, Any]]
    timeout_seconds: float
    retry_safe: bool

    @classmethod
    def of(cls, template: OperationTemplate) -> TemplateDefinition:
        return cls(
            operation_type=template.operation_type,
            command_template=template.command_template,
            argv=template.argv,
            http_spec=template.http_spec,
            parameters=template.parameters,
            timeout_seconds=template.timeout_seconds,
            retry_safe=template.retry_safe,
        )

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> TemplateDefinition:
        return cls(**snapshot)

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)

    def parameter_specs(self) -> list[ParameterSpec]:
        return [ParameterSpec.from_dict(parameter) for parameter in self.parameters]

    def plan(
        self, values: Mapping[str, Any], seal_to: PublicKey | None = None
    ) -> tuple[Rendered | None, list[Refusal]]:
        """Validate every value, then render; all refusals at once, or what will run.
        ``seal_to`` seals plaintext secret values typed by a person (see validate_values)."""
        specs = self.parameter_specs()
        normalized, refusals = validate_values(specs, values, seal_to)
        if refusals:
            return None, refusals
        try:
            if self.http_spec is not None:
                return render_http(self.http_spec, normalized), []
            assert self.argv is not None
            return render_command(self.argv, specs, normalized), []
        except Refusal as refusal:
            return None, [refusal]
