"""Approvals: decisions on executions awaiting approval, what a caller may decide, and the
expiry of runs nobody approved in time.

Who may decide: a principal holding one of the policy's ``approver_roles`` or belonging to
one of its ``approver_groups`` (and the operator role, which the endpoint requires), never
the requester unless ``allow_self_approval``. Each principal decides once: a second
decision by the same principal is a 409 (so the same approver twice counts once). One
rejection ends the run ``rejected``; ``required`` distinct approvals make it pending and
dispatch it like any new execution."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.api_keys import is_api_key
from idp_common.audit import record_audit
from idp_common.auth import Principal, may_run
from idp_common.db import utcnow
from idp_common.errors import Conflict, Forbidden
from idp_common.events import ApprovalPolicy
from idp_common.redaction import MASK
from operation_svc.api_keys.service import keys_acting_for, withdrawn_key
from operation_svc.approvals.notices import approval_decided
from operation_svc.approvals.repository import (
    ApprovalRepository,
    AwaitingApproval,
    ExpiredApprovals,
)
from operation_svc.approvals.schemas import ApprovalOut, DecisionIn, PendingApprovalOut
from operation_svc.executions.dispatch import dispatch_or_wait, secrets_of
from operation_svc.executions.lifecycle import record_ended, tell_requesters
from operation_svc.executions.repository import ExecutionRepository
from operation_svc.executions.state import transition
from operation_svc.models import AuditEntry, Execution, ExecutionApproval, OperationTemplate
from operation_svc.safety.commands import parameter_env
from operation_svc.safety.parameters import masked
from operation_svc.templates.repository import TemplateCatalog

# The listing shows at most this many runs, and reads the tenant's waiting runs this many at
# a time (then filters them by who may decide: policies are per run, so the filter is not SQL).
MAX_AWAITING_LISTED = 500
EXPIRED_PER_SWEEP = 500
EXPIRY_ACTOR = "system:approval-expiry"


@dataclass(frozen=True, slots=True)
class Decided:
    """An execution with every decision on it so far."""

    execution: Execution
    approvals: list[ExecutionApproval]
    policy: ApprovalPolicy


def policy_of(execution: Execution) -> ApprovalPolicy:
    assert execution.approval is not None
    return ApprovalPolicy.model_validate(execution.approval)


def refusal(
    principal: Principal,
    policy: ApprovalPolicy,
    requesters: set[str],
    their_keys: frozenset[str],
) -> str | None:
    """Why ``principal`` may not decide on a run ``requesters`` asked for (its submitter and
    those of the attempts it retries, ``ExecutionRepository.requesters``), or None when they
    may. ``their_keys``: the subjects of the API keys acting for them (``keys_acting_for``)."""
    if is_api_key(principal):
        # Anyone holding a key's role could make one and approve their own run through it.
        return "Approvals are people's decisions: an API key may not make one."
    if not policy.allow_self_approval:
        if principal.subject in requesters:
            return "Its requester may not approve their own run (or a retry of it)."
        if their_requesting_keys := sorted(requesters & their_keys):
            return (
                "Its requester may not approve their own run: "
                f"{', '.join(their_requesting_keys)} is an API key they created."
            )
    if not may_run(principal, policy.approver_roles, policy.approver_groups):
        return (
            f"Approvers hold roles {policy.approver_roles} "
            f"or belong to groups {policy.approver_groups}."
        )
    return None


async def decide(
    session: AsyncSession, principal: Principal, execution_id: uuid.UUID, data: DecisionIn
) -> Decided:
    """Record ``principal``'s decision on an execution awaiting approval (locked meanwhile,
    so decisions sent at once are counted one after the other) and apply it."""
    executions = ExecutionRepository(session, principal.tenant)
    execution = await executions.get_or_404(execution_id, locked=True)
    if execution.status != "awaiting_approval":
        raise Conflict(
            f"Execution {execution_id} is {execution.status}: there is nothing to decide."
        )
    policy = policy_of(execution)
    requesters = (await executions.requesters([execution]))[execution.id]
    their_keys = await keys_acting_for(session, principal)
    if (reason := refusal(principal, policy, requesters, their_keys)) is not None:
        raise Forbidden(reason)
    if execution.approval_expires_at is not None and execution.approval_expires_at <= utcnow():
        raise Conflict(f"The approval window of execution {execution_id} has ended.")
    template = await _template_of(session, execution)
    if data.decision == "approve" and template.is_deleted:
        raise Conflict(f"The template of execution {execution_id} was deleted: it runs no more.")
    if data.decision == "approve" and (
        withdrawn := await withdrawn_key(
            session, principal.tenant, execution.submitted_by, utcnow()
        )
    ):
        # As a schedule of a withdrawn key pauses: what the key asked for is not done.
        raise Conflict(
            f"Execution {execution_id} was requested through an API key that may act no more "
            f"({withdrawn}): it may only be rejected or cancelled."
        )
    approvals = ApprovalRepository(session, principal.tenant)
    decided = (await approvals.of_executions([execution.id])).get(execution.id, [])
    if any(earlier.approver == principal.subject for earlier in decided):
        raise Conflict(f"{principal.subject} has already decided on execution {execution_id}.")
    approval = approvals.add(
        ExecutionApproval(
            tenant=principal.tenant,
            execution_id=execution.id,
            approver=principal.subject,
            decision=data.decision,
            comment=data.comment,
        )
    )
    decided.append(approval)
    approved = sum(1 for each in decided if each.decision == "approve")
    if data.decision == "reject":
        reason = f"rejected by {principal.subject}" + (f": {data.comment}" if data.comment else "")
        _end(session, execution, "rejected", reason)
    elif approved >= policy.required:
        transition(execution, "pending")
        await dispatch_or_wait(session, template, execution)
        tell_requesters(session, execution)
    record_audit(
        session,
        AuditEntry,
        principal,
        f"execution.{data.decision}",
        execution.id,
        changes={
            "comment": data.comment,
            "approvals": approved,
            "required": policy.required,
            "status": execution.status,
        },
    )
    approval_decided(session, execution, approval)
    await session.flush()
    return Decided(execution, decided, policy)


async def _template_of(session: AsyncSession, execution: Execution) -> OperationTemplate:
    assert execution.template_id is not None, "a run awaiting approval has its template"
    template = await TemplateCatalog(session).get(execution.template_id)
    assert template is not None, "templates are never deleted, only hidden"
    return template


def _end(session: AsyncSession, execution: Execution, status: str, error: str) -> None:
    transition(execution, status)
    execution.error = error
    tell_requesters(session, execution)
    record_ended(session, execution)


async def decidable(session: AsyncSession, principal: Principal) -> list[PendingApprovalOut]:
    """The oldest runs awaiting approval (``MAX_AWAITING_LISTED`` at most) that ``principal``
    may decide on and has not yet, each as it will run. The waiting runs are read a batch at
    a time until enough are found: runs the caller may not decide (anyone may ask for many)
    hide none behind them."""
    awaiting = AwaitingApproval(session, principal.tenant)
    executions = ExecutionRepository(session, principal.tenant)
    approvals = ApprovalRepository(session, principal.tenant)
    their_keys = await keys_acting_for(session, principal)
    listed: list[PendingApprovalOut] = []
    after = None
    while len(listed) < MAX_AWAITING_LISTED and (
        waiting := await awaiting.oldest(MAX_AWAITING_LISTED, after)
    ):
        after = (waiting[-1].created_at, waiting[-1].id)
        requesters = await executions.requesters(waiting)
        mine = [
            (e, policy)
            for e, policy in ((e, policy_of(e)) for e in waiting)
            if refusal(principal, policy, requesters[e.id], their_keys) is None
        ]
        decisions = await approvals.of_executions([e.id for e, _ in mine])
        listed += [
            await _preview(session, execution, policy, decisions.get(execution.id, []))
            for execution, policy in mine
            if all(d.approver != principal.subject for d in decisions.get(execution.id, []))
        ]
    return listed[:MAX_AWAITING_LISTED]


async def _preview(
    session: AsyncSession,
    execution: Execution,
    policy: ApprovalPolicy,
    decisions: list[ExecutionApproval],
) -> PendingApprovalOut:
    return PendingApprovalOut(
        execution_id=execution.id,
        template_slug=execution.template_slug,
        template_version=execution.template_version,
        submission_id=execution.submission_id,
        submitted_by=execution.submitted_by,
        requested_at=execution.created_at,
        expires_at=execution.approval_expires_at,
        approvals_required=policy.required,
        approvals=[ApprovalOut.model_validate(decision) for decision in decisions],
        argv=execution.argv,
        http_request=execution.http_request,
        env=await _shown_env(session, execution),
        parameters=masked(execution.parameters),
    )


async def _shown_env(session: AsyncSession, execution: Execution) -> dict[str, str]:
    """The environment the run will get, as an approver may see it: secrets as ***."""
    env = masked(parameter_env(execution.parameters))
    if execution.template_id is not None:
        env |= {binding.env_var: MASK for binding in await secrets_of(session, execution)}
    return env


async def expire_due(session: AsyncSession, now: datetime) -> int:
    """End ``expired`` the runs (of every tenant) whose approval window ended before
    ``now``; returns how many."""
    due = await ExpiredApprovals(session).due(now, EXPIRED_PER_SWEEP)
    for execution in due:
        _end(session, execution, "expired", "nobody approved it in time")
        record_audit(
            session,
            AuditEntry,
            EXPIRY_ACTOR,
            "execution.expire",
            execution.id,
            tenant=execution.tenant,
            changes={"status": execution.status},
        )
    return len(due)
