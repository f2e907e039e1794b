"""What admins do with schedules (create, change, pause, resume, delete: each audited) and
what viewers read (schedules, their runs, the next fire times).

A schedule runs as its owner: the principal (subject, roles, groups) who created it or
last changed what it runs. Their access to the template is checked when it is saved and
again at every fire (``firing``); the parameters are checked and normalized when saved,
secret values sealed to the workers' key then.

A panel schedule's panel is looked up at panel-svc as the waiting admin (their credentials
forwarded): it must exist in their tenant, they must be allowed to submit it, and its data
may give no secret field a value (panel-svc would keep it in plain text here until each
fire: a template schedule seals its secret parameters instead). panel-svc validates the
data itself at every fire."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from itertools import islice
from typing import Any

from nacl.public import PublicKey
from pydantic_core import to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import record_audit
from idp_common.auth import Principal, check_run_access, may_run
from idp_common.db import Database
from idp_common.errors import Conflict, Forbidden, ValidationFailed, field_error
from idp_common.messaging.budget import oversized_errors
from idp_common.pagination import PageParams
from idp_common.unit_of_work import with_defaults
from operation_svc.api_keys.service import withdrawn_key
from operation_svc.config import OperationSettings
from operation_svc.executions.intake import checked_values, template_to_run
from operation_svc.models import AuditEntry, Schedule, ScheduleRun
from operation_svc.safety.parameters import masked
from operation_svc.schedules.firing import owner_of
from operation_svc.schedules.panels import PanelClient, PanelsUnavailable, PanelTarget
from operation_svc.schedules.repository import (
    ScheduleBoard,
    ScheduleRepository,
    ScheduleRunRepository,
)
from operation_svc.schedules.scheduler import timing_of
from operation_svc.schedules.schemas import FireTime, ScheduleIn, SchedulePreview, ScheduleUpdate
from operation_svc.schedules.slots import cron_problem, cron_shortest_gap, jittered

MIN_INTERVAL_SETTING = "OPERATION_SCHEDULE_MIN_INTERVAL_SECONDS"
TIMING_FIELDS = frozenset({"cron", "interval_seconds", "timezone", "starts_at", "ends_at"})


def check_timing(schedule: Schedule, min_interval_seconds: int) -> None:
    """A 422 naming each field of an impossible timing."""
    errors = []
    if (schedule.cron is None) == (schedule.interval_seconds is None):
        errors.append(field_error("cron", "give either cron or interval_seconds", "one_of"))
    interval = schedule.interval_seconds
    if interval is not None and interval < min_interval_seconds:
        errors.append(
            field_error(
                "interval_seconds",
                f"must be at least {min_interval_seconds} seconds ({MIN_INTERVAL_SETTING})",
                "below_minimum",
            )
        )
    gap = interval
    if schedule.cron is not None:
        gap = int(cron_shortest_gap(schedule.cron).total_seconds())
        if gap < min_interval_seconds:
            errors.append(
                field_error(
                    "cron",
                    f"fires {gap} seconds apart; two fires must be at least "
                    f"{min_interval_seconds} seconds apart ({MIN_INTERVAL_SETTING})",
                    "below_minimum",
                )
            )
    jitter = schedule.jitter_seconds
    if gap is not None and gap >= min_interval_seconds and gap - jitter < min_interval_seconds:
        # A fire delayed by the jitter would come closer to the next one than the minimum
        # (past it, when the jitter is longer than the gap: slots would fire out of turn).
        errors.append(
            field_error(
                "jitter_seconds",
                f"delays a fire by up to {jitter} seconds where slots are {gap} seconds "
                f"apart: two fires could be {gap - jitter} seconds apart, under "
                f"{min_interval_seconds} ({MIN_INTERVAL_SETTING})",
                "below_minimum",
            )
        )
    if schedule.starts_at and schedule.ends_at and schedule.ends_at <= schedule.starts_at:
        errors.append(field_error("ends_at", "must be after starts_at", "before_start"))
    if errors:
        fields = ", ".join(error["field"] for error in errors)
        raise ValidationFailed(f"Invalid schedule: {fields}", errors=errors)


def check_target(
    *, template: bool, panel: bool, parameters: bool, data: bool, is_panel: bool
) -> None:
    """A 422 naming the field when what a schedule runs is ambiguous: exactly one of
    template and panel (``is_panel``: which one it is then), parameters only with a
    template, data only with a panel."""
    errors = []
    if template and panel:
        errors.append(field_error("panel", "give either template or panel, not both", "one_of"))
    elif is_panel and parameters:
        errors.append(
            field_error("parameters", "a panel schedule takes data, not parameters", "panel")
        )
    elif not is_panel and data:
        errors.append(
            field_error("data", "a template schedule takes parameters, not data", "template")
        )
    if errors:
        fields = ", ".join(error["field"] for error in errors)
        raise ValidationFailed(f"Invalid schedule: {fields}", errors=errors)


def _set_owner(schedule: Schedule, principal: Principal) -> None:
    schedule.owner_subject = principal.subject
    schedule.owner_roles = sorted(principal.roles)
    schedule.owner_groups = sorted(principal.groups)


async def find_panel(
    panels: PanelClient | None, reference: str, credentials: Mapping[str, str]
) -> PanelTarget:
    """The panel ``reference`` names at panel-svc for whoever ``credentials`` are (a 422
    naming ``panel`` when their tenant has none). Asked with no transaction open: SQLite's
    write turn is never held across a call to another service."""
    if panels is None:
        raise PanelsUnavailable("panel-svc is not configured (OPERATION_PANEL_API_URL)")
    if not panels.acts_as_owners:
        raise Conflict(
            "Panel schedules submit as their owner with a token signed by AUTH_JWT_SECRET, "
            "and AUTH_JWT_ALGORITHMS does not accept HS256 here: schedule the template instead."
        )
    panel = await panels.find(reference, credentials)
    if panel is None:
        raise ValidationFailed(
            "Invalid schedule: panel",
            errors=[
                field_error("panel", f"this tenant has no panel {reference!r}", "unknown_panel")
            ],
        )
    return panel


def _set_panel(
    schedule: Schedule, principal: Principal, panel: PanelTarget, data: dict[str, Any]
) -> None:
    """Point ``schedule`` at ``panel`` (as ``principal`` found it) with ``data``, which may
    give no secret field a value and must fit in a run's job (``messaging.budget``);
    ``principal``, who must be allowed to submit it, becomes its owner."""
    errors = [
        field_error(
            f"data.{name}",
            "a panel schedule cannot keep a secret value (it would be stored in plain text): "
            "schedule the panel's template instead, whose secret parameters are sealed",
            "secret_value",
        )
        for name in sorted(data.keys() & panel.secret_fields)
    ] + [
        field_error(f"data.{name}", f"panel {panel.slug!r} has no field {name!r}", "unknown_field")
        for name in sorted(data.keys() - panel.fields)
    ]
    errors += oversized_errors(data, "data")
    if errors:
        fields = ", ".join(error["field"] for error in errors)
        raise ValidationFailed(f"Invalid schedule: {fields}", errors=errors)
    check_run_access(principal, panel.allowed_roles, panel.allowed_groups, f"Panel {panel.slug!r}")
    schedule.panel_id = panel.id
    schedule.panel_slug = panel.slug
    schedule.data = data
    schedule.template_id = schedule.template_slug = None
    schedule.parameters = {}
    _set_owner(schedule, principal)


def _target_audit(schedule: Schedule) -> dict[str, Any]:
    if schedule.panel_id is not None:
        return {"panel": schedule.panel_slug, "data": schedule.data}
    return {"template": schedule.template_slug, "parameters": masked(schedule.parameters)}


def _plan_slots(schedule: Schedule, now: datetime) -> None:
    """From now on: the next slot after ``now`` (what was due while paused is not run)."""
    schedule.next_slot_at = timing_of(schedule).next_slot(now)


async def _set_target(
    session: AsyncSession,
    schedule: Schedule,
    principal: Principal,
    template: str,
    parameters: dict[str, Any],
    seal_to: PublicKey,
) -> None:
    """Point ``schedule`` at ``template`` with ``parameters`` (checked for ``principal``,
    who becomes its owner)."""
    target = await template_to_run(session, principal.tenant, template)
    rendered = checked_values(target, principal, parameters, seal_to)
    schedule.template_id = target.template.id
    schedule.template_slug = target.template.slug
    schedule.parameters = rendered.values
    schedule.panel_id = schedule.panel_slug = schedule.data = None
    _set_owner(schedule, principal)


async def create_schedule(
    session: AsyncSession,
    principal: Principal,
    data: ScheduleIn,
    settings: OperationSettings,
    now: datetime,
    *,
    panels: PanelClient | None = None,
    credentials: Mapping[str, str] | None = None,
) -> Schedule:
    """A new schedule of ``principal``'s; a panel is looked up at panel-svc as them
    (``credentials``) before anything is read here."""
    is_panel = data.panel is not None
    check_target(
        template=data.template is not None,
        panel=is_panel,
        parameters=data.parameters is not None,
        data=data.data is not None,
        is_panel=is_panel,
    )
    panel = await find_panel(panels, data.panel, credentials or {}) if data.panel else None
    fields = data.model_dump(exclude={"template", "parameters", "panel", "data"})
    schedule = with_defaults(
        Schedule(
            tenant=principal.tenant,
            created_at=now,  # an interval without starts_at counts from here
            created_by=principal.subject,
            updated_by=principal.subject,
            **fields,
        )
    )
    check_timing(schedule, settings.schedule_min_interval_seconds)
    if panel is not None:
        _set_panel(schedule, principal, panel, data.data or {})
    elif data.template is not None:
        await _set_target(
            session,
            schedule,
            principal,
            data.template,
            data.parameters or {},
            settings.sealing.key(),
        )
    else:
        raise ValidationFailed(
            "Invalid schedule: template",
            errors=[field_error("template", "give a template or a panel to run", "missing")],
        )
    _plan_slots(schedule, now)
    ScheduleRepository(session, principal.tenant).add(schedule)
    await session.flush()
    record_audit(
        session,
        AuditEntry,
        principal,
        "schedule.create",
        schedule.id,
        changes=to_jsonable_python(fields) | _target_audit(schedule),
    )
    return schedule


async def get_schedule(
    session: AsyncSession, principal: Principal, schedule_id: uuid.UUID
) -> Schedule:
    return await ScheduleRepository(session, principal.tenant).get_or_404(schedule_id)


async def list_schedules(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[Schedule], str | None]:
    return await ScheduleRepository(session, principal.tenant).page(page)


async def update_schedule(
    session: AsyncSession,
    principal: Principal,
    schedule_id: uuid.UUID,
    data: ScheduleUpdate,
    settings: OperationSettings,
    now: datetime,
    *,
    panel: PanelTarget | None = None,
) -> Schedule:
    """Apply the fields given. Giving ``cron`` drops ``interval_seconds`` and the reverse;
    changing what it runs makes the caller the owner. A new panel or new data need the
    panel found before the transaction (``panel_of_change``)."""
    schedule = await get_schedule(session, principal, schedule_id)
    is_panel = data.panel is not None or (data.template is None and schedule.panel_id is not None)
    check_target(
        template=data.template is not None,
        panel=data.panel is not None,
        parameters=data.parameters is not None,
        data=data.data is not None,
        is_panel=is_panel,
    )
    changes = data.model_dump(
        exclude_unset=True, exclude={"template", "parameters", "panel", "data"}
    )
    if changes.get("cron") is not None and "interval_seconds" not in changes:
        changes["interval_seconds"] = None
    if changes.get("interval_seconds") is not None and "cron" not in changes:
        changes["cron"] = None
    for name, value in changes.items():
        setattr(schedule, name, value)
    check_timing(schedule, settings.schedule_min_interval_seconds)
    if is_panel and (data.panel is not None or data.data is not None):
        if panel is None or (data.panel is None and panel.id != schedule.panel_id):
            raise Conflict("The schedule changed meanwhile: send the change again.")
        _set_panel(
            schedule,
            principal,
            panel,
            data.data if data.data is not None else (schedule.data or {}),
        )
        changes |= _target_audit(schedule) | {"owner": principal.subject}
    elif not is_panel and (data.template is not None or data.parameters is not None):
        await _set_target(
            session,
            schedule,
            principal,
            data.template or str(schedule.template_id),
            schedule.parameters if data.parameters is None else data.parameters,
            settings.sealing.key(),
        )
        changes |= _target_audit(schedule) | {"owner": principal.subject}
    if TIMING_FIELDS & changes.keys():
        _plan_slots(schedule, now)
    schedule.updated_by = principal.subject
    record_audit(
        session,
        AuditEntry,
        principal,
        "schedule.update",
        schedule.id,
        changes=to_jsonable_python(changes),
    )
    return schedule


async def panel_of_change(
    db: Database,
    principal: Principal,
    schedule_id: uuid.UUID,
    data: ScheduleUpdate,
    panels: PanelClient | None,
    credentials: Mapping[str, str],
) -> PanelTarget | None:
    """The panel a change of a schedule needs, found at panel-svc before the change's
    transaction (the schedule read on a snapshot when only its data changes); None when the
    change needs none."""
    if data.template is not None or (data.panel is None and data.data is None):
        return None
    reference = data.panel
    if reference is None:
        async with db.snapshot() as session:
            current = await get_schedule(session, principal, schedule_id)
        if current.panel_id is None:
            return None  # data for a template schedule: refused by update_schedule
        reference = str(current.panel_id)
    return await find_panel(panels, reference, credentials)


async def delete_schedule(
    session: AsyncSession, principal: Principal, schedule_id: uuid.UUID
) -> None:
    """Retire a schedule: it never fires again; its runs and executions are kept."""
    schedule = await get_schedule(session, principal, schedule_id)
    schedule.is_deleted = True
    schedule.updated_by = principal.subject
    record_audit(session, AuditEntry, principal, "schedule.delete", schedule.id)


async def pause_schedule(
    session: AsyncSession, principal: Principal, schedule_id: uuid.UUID
) -> Schedule:
    # Locked: a turn in flight may queue another slot, which the pause must see to skip.
    schedule = await ScheduleRepository(session, principal.tenant).get_or_404(
        schedule_id, locked=True
    )
    if not schedule.is_paused:
        schedule.is_paused = True
        schedule.paused_reason = f"paused by {principal.subject}"
        schedule.updated_by = principal.subject
        if (queued := schedule.queued_slot_at) is not None:
            # It would fire at the resume, however long after its time (queue_one).
            schedule.queued_slot_at = None
            await ScheduleBoard(session).settle_queued(
                schedule.id, queued, outcome="skipped", reason=f"paused: {schedule.paused_reason}"
            )
        record_audit(session, AuditEntry, principal, "schedule.pause", schedule.id)
    return schedule


async def _check_owner_may_submit(schedule: Schedule, panels: PanelClient | None) -> None:
    """A 409 unless the panel exists for the owner and the owner may submit it (panel-svc
    asked as the owner; the data is checked at the next fire)."""
    if panels is None:
        raise PanelsUnavailable("panel-svc is not configured (OPERATION_PANEL_API_URL)")
    owner = owner_of(schedule)
    panel = await panels.find(str(schedule.panel_id), panels.owner_credentials(owner))
    if panel is None:
        why = f"panel {schedule.panel_slug!r} no longer exists."
    elif not may_run(owner, panel.allowed_roles, panel.allowed_groups):
        why = f"Panel {panel.slug!r} may not be submitted by them."
    else:
        return
    raise Conflict(
        f"The schedule cannot run as {schedule.owner_subject}: {why} Change its panel or data "
        "to run it as yourself."
    )


async def check_panel_owner(
    db: Database, principal: Principal, schedule_id: uuid.UUID, panels: PanelClient | None
) -> None:
    """Before a resume's transaction: a 409 unless a paused panel schedule's owner may
    still submit its panel (panel-svc asked with no transaction open)."""
    async with db.snapshot() as session:
        schedule = await get_schedule(session, principal, schedule_id)
    if schedule.is_paused and schedule.panel_id is not None:
        await _check_owner_may_submit(schedule, panels)


async def resume_schedule(
    session: AsyncSession, principal: Principal, schedule_id: uuid.UUID, now: datetime
) -> Schedule:
    """Fire again from the next slot on (slots while paused are not run). A 409 while the
    owner may not run the template (a panel schedule's owner is checked before the
    transaction: ``check_panel_owner``); changing what it runs takes the schedule over."""
    schedule = await get_schedule(session, principal, schedule_id)
    if not schedule.is_paused:
        return schedule
    if schedule.cron is not None and (problem := cron_problem(schedule.cron)) is not None:
        raise Conflict(f"Its cron cannot run: {problem}. Change its cron, then resume it.")
    if withdrawn := await withdrawn_key(session, schedule.tenant, schedule.owner_subject, now):
        raise Conflict(
            f"The schedule cannot run as {schedule.owner_subject}: {withdrawn}. Change its "
            "template or parameters to run it as yourself."
        )
    if schedule.panel_id is None:
        try:
            target = await template_to_run(session, schedule.tenant, str(schedule.template_id))
            checked_values(target, owner_of(schedule), schedule.parameters, None)
        except (Forbidden, ValidationFailed) as refusal:
            raise Conflict(
                f"The schedule cannot run as {schedule.owner_subject}: {refusal.detail} Change "
                "its template or parameters to run it as yourself."
            ) from refusal
    schedule.is_paused = False
    schedule.paused_reason = None
    schedule.updated_by = principal.subject
    _plan_slots(schedule, now)
    record_audit(session, AuditEntry, principal, "schedule.resume", schedule.id)
    return schedule


async def list_runs(
    session: AsyncSession, principal: Principal, schedule_id: uuid.UUID, page: PageParams
) -> tuple[list[tuple[ScheduleRun, uuid.UUID | None, str | None]], str | None]:
    """The schedule's slots handled, newest first, each with its execution and that
    execution's status now (a panel schedule's: its submission's latest execution)."""
    schedule = await get_schedule(session, principal, schedule_id)
    runs = ScheduleRunRepository(session, principal.tenant)
    found, cursor = await runs.page(page, runs.of(schedule.id))
    statuses = await runs.execution_statuses(
        {run.execution_id for run in found if run.execution_id is not None}
    )
    of_submissions = await runs.latest_executions(
        {run.submission_id for run in found if run.submission_id is not None}
    )
    listed: list[tuple[ScheduleRun, uuid.UUID | None, str | None]] = []
    for run in found:
        if run.execution_id is not None:
            listed.append((run, run.execution_id, statuses.get(run.execution_id)))
        elif run.submission_id is not None and run.submission_id in of_submissions:
            listed.append((run, *of_submissions[run.submission_id]))
        else:
            listed.append((run, None, None))
    return listed, cursor


async def preview(
    session: AsyncSession, principal: Principal, schedule_id: uuid.UUID, count: int, now: datetime
) -> SchedulePreview:
    """The next ``count`` fire times (jitter included) from now, paused or not."""
    schedule = await get_schedule(session, principal, schedule_id)
    timing = timing_of(schedule)
    fires = []
    for slot in islice(timing.slots(now), count):
        at = jittered(slot, schedule.id, schedule.jitter_seconds)
        fires.append(FireTime(slot=slot, at=at, local=at.astimezone(timing.timezone)))
    return SchedulePreview(timezone=schedule.timezone, fires=fires)
