from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.auth import Principal
from idp_common.errors import Conflict, ValidationFailed, field_error
from idp_common.pagination import PageParams, paginate
from operation_svc.models import OperationTemplate
from operation_svc.rendering import Refusal, placeholders, split_command
from operation_svc.templates.repository import TemplateRepository
from operation_svc.templates.schemas import TemplateIn, TemplateOut


def to_out(template: OperationTemplate) -> TemplateOut:
    fields = {
        name: getattr(template, name) for name in TemplateOut.model_fields if name != "parameters"
    }
    return TemplateOut(**fields, parameters=placeholders(template.argv))


async def create_template(
    session: AsyncSession,
    principal: Principal,
    data: TemplateIn,
    allowed_executables: Collection[str],
) -> OperationTemplate:
    try:
        argv = split_command(data.command_template, allowed_executables)
    except Refusal as refusal:
        raise ValidationFailed(
            f"The command template is refused ({refusal.rule}).",
            errors=[field_error("command_template", refusal.message, refusal.rule)],
        ) from refusal
    templates = TemplateRepository(session, principal.tenant)
    if await templates.get_by_slug(data.slug) is not None:
        raise Conflict(f"A template with slug {data.slug!r} already exists.")
    template = templates.add(
        OperationTemplate(
            tenant=principal.tenant,
            argv=argv,
            created_by=principal.subject,
            **data.model_dump(),
        )
    )
    await session.flush()
    return template


async def get_template(
    session: AsyncSession, principal: Principal, template_id: uuid.UUID
) -> OperationTemplate:
    return await TemplateRepository(session, principal.tenant).get_or_404(template_id)


async def list_templates(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[OperationTemplate], str | None]:
    stmt = TemplateRepository(session, principal.tenant).scoped()
    rows, cursor = await paginate(session, stmt, OperationTemplate, page)
    return list(rows), cursor
