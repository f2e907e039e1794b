"""The demo template of the embedded default (``make run``)."""

from __future__ import annotations

from idp_common.db import Database
from idp_common.executables import ExecutableAllowlist
from operation_svc.models import OperationTemplate, TemplateVersion
from operation_svc.safety.commands import compile_command
from operation_svc.safety.parameters import ParameterSpec
from operation_svc.templates.definition import TemplateDefinition
from operation_svc.templates.repository import TemplateRepository

DEMO_TENANT = "demo"
DEMO_COMMAND = "echo {{message}}"
DEMO_PARAMETERS = [{"name": "message", "type": "string", "max_length": 200}]


async def seed_demo_template(db: Database, executables: ExecutableAllowlist) -> None:
    async with db.transaction() as session:
        templates = TemplateRepository(session, DEMO_TENANT)
        if await templates.get_by_slug("echo-message") is not None:
            return
        specs = [ParameterSpec.from_dict(parameter) for parameter in DEMO_PARAMETERS]
        template = templates.add(
            OperationTemplate(
                tenant=DEMO_TENANT,
                slug="echo-message",
                name="Echo a message",
                description="Prints the message: proves the whole bus end to end.",
                command_template=DEMO_COMMAND,
                argv=compile_command(DEMO_COMMAND, specs, executables),
                parameters=DEMO_PARAMETERS,
                operation_type="command",
                timeout_seconds=30,
                retry_safe=True,
                version=1,
                created_by="seed",
                updated_by="seed",
            )
        )
        await session.flush()
        session.add(
            TemplateVersion(
                template_id=template.id,
                version=1,
                definition=TemplateDefinition.of(template).snapshot(),
                created_by="seed",
            )
        )
