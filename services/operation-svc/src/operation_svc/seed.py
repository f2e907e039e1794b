"""The demo template of the embedded default (``make run``)."""

from __future__ import annotations

from collections.abc import Collection

from idp_common.db import Database
from operation_svc.models import OperationTemplate
from operation_svc.rendering import split_command
from operation_svc.templates.repository import TemplateRepository

DEMO_TENANT = "demo"
DEMO_COMMAND = "echo {{message}}"


async def seed_demo_template(db: Database, allowed_executables: Collection[str]) -> None:
    async with db.transaction() as session:
        templates = TemplateRepository(session, DEMO_TENANT)
        if await templates.get_by_slug("echo-message") is not None:
            return
        templates.add(
            OperationTemplate(
                tenant=DEMO_TENANT,
                slug="echo-message",
                name="Echo a message",
                description="Prints the message: proves the whole bus end to end.",
                command_template=DEMO_COMMAND,
                argv=split_command(DEMO_COMMAND, allowed_executables),
                timeout_seconds=30,
                created_by="seed",
            )
        )
