from __future__ import annotations

import uuid
from typing import Any

from nacl.public import PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import record_audit
from idp_common.auth import Principal
from idp_common.errors import ValidationFailed, field_error
from idp_common.kept_credentials import kept_for_their_host
from idp_common.outbound import internal_literal_host
from idp_common.pagination import PageParams
from idp_common.redaction import MASK
from idp_common.uniqueness import Unique, freed_slug
from operation_svc.config import OperationSettings
from operation_svc.executions.dispatch import fill_free_slots
from operation_svc.executions.repository import SystemExecutions
from operation_svc.executions.service import cancel_unstarted
from operation_svc.models import AuditEntry, OperationTemplate, TemplateVersion
from operation_svc.safety.commands import RenderedCommand, compile_command
from operation_svc.safety.http import RenderedHttp, compile_http
from operation_svc.safety.parameters import ParameterSpec, masked
from operation_svc.safety.sizes import check_rendered_size
from operation_svc.safety.verdict import Refusal
from operation_svc.templates.definition import TemplateDefinition
from operation_svc.templates.repository import TemplateCatalog, TemplateRepository
from operation_svc.templates.schemas import PreviewOut, TemplateIn, TemplateUpdate

SLUG = Unique(OperationTemplate.tenant, OperationTemplate.slug, field="slug")


def _compile(
    operation_type: str,
    command_template: str | None,
    http: dict[str, Any] | None,
    parameters: list[dict[str, Any]],
    settings: OperationSettings,
) -> tuple[list[str] | None, dict[str, Any] | None]:
    """Check a template at save time: its argv (command) or its normalized request (http)."""
    field = "command_template" if operation_type == "command" else "http"
    try:
        specs = [ParameterSpec.from_dict(parameter) for parameter in parameters]
        if operation_type == "http":
            assert http is not None
            compiled = compile_http(http, specs)
            _refuse_internal_destination(compiled["url"], settings.outbound_allowed_hosts)
            check_rendered_size("the request, before any value,", compiled)
            return None, compiled
        assert command_template is not None
        argv = compile_command(command_template, specs, settings.executables)
        check_rendered_size("the command, before any value,", argv)
        return argv, None
    except Refusal as refusal:
        raise ValidationFailed(
            f"The template is refused ({refusal.rule}).",
            errors=[
                field_error(
                    f"{field}.{refusal.at}" if refusal.at else field, refusal.message, refusal.rule
                )
            ],
        ) from refusal


def _refuse_internal_destination(url: str, allowed_hosts: list[str]) -> None:
    host = internal_literal_host(url)
    if host is not None and host not in {allowed.lower() for allowed in allowed_hosts}:
        raise Refusal(
            "internal_address",
            f"{host} is not a public address: HTTP operations may not call inside the "
            "platform's network. If this destination is intended, add it to "
            "OPERATION_OUTBOUND_ALLOWED_HOSTS and WORKER_OUTBOUND_ALLOWED_HOSTS",
            at="url",
        )


def _check_timeout(timeout_seconds: float, max_timeout_seconds: float) -> None:
    if timeout_seconds > max_timeout_seconds:
        raise ValidationFailed(
            "timeout_seconds is above the platform's limit.",
            errors=[
                field_error(
                    "timeout_seconds",
                    f"at most {max_timeout_seconds:g} (OPERATION_MAX_TIMEOUT_SECONDS)",
                    "maximum",
                )
            ],
        )


def _keep_version(session: AsyncSession, template: OperationTemplate, actor: str) -> None:
    session.add(
        TemplateVersion(
            template_id=template.id,
            version=template.version,
            definition=TemplateDefinition.of(template).snapshot(),
            created_by=actor,
        )
    )


async def create_template(
    session: AsyncSession,
    principal: Principal,
    data: TemplateIn,
    settings: OperationSettings,
) -> OperationTemplate:
    parameters = [parameter.model_dump() for parameter in data.parameters]
    http = data.http.model_dump() if data.http else None
    argv, http_spec = _compile(
        data.operation_type, data.command_template, http, parameters, settings
    )
    _check_timeout(data.timeout_seconds, settings.max_timeout_seconds)
    template = TemplateRepository(session, principal.tenant).add(
        OperationTemplate(
            tenant=principal.tenant,
            **data.model_dump(exclude={"parameters", "http"}),
            parameters=parameters,
            argv=argv,
            http_spec=http_spec,
            version=1,
            created_by=principal.subject,
            updated_by=principal.subject,
        )
    )
    async with SLUG.claimed(f"A template with slug {data.slug!r} already exists."):
        await session.flush()
    _keep_version(session, template, principal.subject)
    record_audit(
        session,
        AuditEntry,
        principal,
        "template.create",
        template.id,
        changes=data.model_dump(),
    )
    return template


async def update_template(
    session: AsyncSession,
    principal: Principal,
    template_id: uuid.UUID | str,
    data: TemplateUpdate,
    settings: OperationSettings,
) -> OperationTemplate:
    """The change as the template's next version. Changes sent at once take their turns on
    the template's row, so each is a version of its own, numbered without gaps."""
    templates = TemplateRepository(session, principal.tenant)
    template = await templates.get_or_404(template_id, locked=True)
    changes = data.model_dump(exclude_unset=True)
    foreign = "http" if template.operation_type == "command" else "command_template"
    if foreign in changes:
        raise ValidationFailed(
            f"A {template.operation_type} template has no {foreign}.",
            errors=[field_error(foreign, f"this is a {template.operation_type} template", "type")],
        )
    if "parameters" in changes:
        changes["parameters"] = [parameter.model_dump() for parameter in data.parameters or []]
    # Its credentials were shown masked: a mask sent back keeps the value it stands for.
    http = changes.pop("http", template.http_spec)
    if http and template.http_spec:
        http = kept_for_their_host(
            http,
            template.http_spec,
            sent_url=http.get("url", ""),
            stored_url=template.http_spec["url"],
            field="http.url",
        )
    argv, http_spec = _compile(
        template.operation_type,
        changes.get("command_template", template.command_template),
        http,
        changes.get("parameters", template.parameters),
        settings,
    )
    _check_timeout(
        changes.get("timeout_seconds", template.timeout_seconds), settings.max_timeout_seconds
    )
    for name, value in changes.items():
        setattr(template, name, value)
    template.argv = argv
    template.http_spec = http_spec
    template.version += 1
    template.updated_by = principal.subject
    _keep_version(session, template, principal.subject)
    if "max_concurrency" in changes:
        await fill_free_slots(session, template.id)  # a raised or lifted limit frees slots
    record_audit(
        session,
        AuditEntry,
        principal,
        "template.update",
        template.id,
        changes=changes | {"version": template.version},
    )
    return template


async def delete_template(
    session: AsyncSession, principal: Principal, template_id: uuid.UUID | str
) -> None:
    """Soft delete: past executions keep their template; no new ones can start, and those
    no worker has yet (awaiting approval, waiting for a slot) are cancelled."""
    template = await get_template(session, principal, template_id)
    reason = f"cancelled: its template was deleted by {principal.subject}"
    for execution in await SystemExecutions(session).not_started(template.id):
        cancel_unstarted(session, execution, reason)
    template.is_deleted = True
    template.slug = freed_slug(template.slug, template.id)
    record_audit(
        session,
        AuditEntry,
        principal,
        "template.delete",
        template.id,
    )


async def get_template(
    session: AsyncSession, principal: Principal, reference: uuid.UUID | str
) -> OperationTemplate:
    return await TemplateRepository(session, principal.tenant).get_or_404(reference)


async def list_templates(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[OperationTemplate], str | None]:
    return await TemplateRepository(session, principal.tenant).page(page)


async def preview(
    session: AsyncSession,
    principal: Principal,
    template_id: uuid.UUID | str,
    values: dict[str, Any],
    seal_to: PublicKey,
) -> PreviewOut:
    """The exact argv and environment a worker would run (secrets as ***); nothing queued."""
    template = await get_template(session, principal, template_id)
    rendered, refusals = TemplateDefinition.of(template).plan(values, seal_to)
    env = None
    if isinstance(rendered, RenderedCommand):
        bindings = await TemplateCatalog(session).secret_bindings({template.id})
        secrets = {binding.env_var: MASK for binding in bindings.get(template.id, [])}
        env = masked(rendered.env) | secrets
    return PreviewOut(
        allowed=rendered is not None,
        argv=rendered.argv if isinstance(rendered, RenderedCommand) else None,
        http=rendered.as_dict() if isinstance(rendered, RenderedHttp) else None,
        env=env,
        refusals=[refusal.as_dict() for refusal in refusals],
        template_version=template.version,
    )
