"""The queues and their dead letters, for operators: Flower and the AWS console's redrive
in one API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi import Path as PathParam

from idp_common.audit import record_audit
from idp_common.auth import Principal, QueueOperator
from idp_common.dependencies import SessionDep
from idp_common.messaging.signing import MessageSigner
from idp_common.messaging.sqs import QueueDirectory
from idp_common.pagination import Page, PageParamsDep
from idp_common.schemas import UtcTimestamp
from operation_svc.models import AuditEntry
from operation_svc.queues import service
from operation_svc.queues.schemas import (
    ActionOut,
    DeadLetterFilter,
    DeadLetterOut,
    DeleteSelection,
    QueueOut,
    Selection,
)
from operation_svc.queues.service import QueueAction, QueueActions

router = APIRouter(prefix="/api/v1/queues", tags=["queues"])
QueueName = Annotated[
    str, PathParam(max_length=100, description="A queue of the topology, e.g. operation-jobs.")
]


def _queues(request: Request) -> QueueDirectory:
    queues: QueueDirectory = request.app.state.bus.queues
    return queues


def _signer(request: Request) -> MessageSigner:
    signer: MessageSigner = request.app.state.bus.publisher.signer
    return signer


def _actions(request: Request) -> QueueActions:
    actions: QueueActions = request.app.state.queue_actions
    return actions


Queues = Annotated[QueueDirectory, Depends(_queues)]
Actions = Annotated[QueueActions, Depends(_actions)]
Signer = Annotated[MessageSigner, Depends(_signer)]


@router.get("")
async def list_queues(queues: Queues, _principal: QueueOperator) -> list[QueueOut]:
    """Every queue of the topology: visible, in-flight and delayed messages, and its DLQ's
    depth and the age of its oldest message."""
    return await service.queue_stats(queues)


def _filter(
    type: Annotated[str | None, Query(max_length=200, description="The event type.")] = None,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    since: UtcTimestamp | None = None,
    until: UtcTimestamp | None = None,
    reason: Annotated[
        str | None, Query(max_length=200, description="Text in the failure reason.")
    ] = None,
) -> DeadLetterFilter:
    return DeadLetterFilter(type=type, tenant=tenant, since=since, until=until, reason=reason)


@router.get("/{name}/dead-letters")
async def list_dead_letters(
    name: QueueName,
    queues: Queues,
    signer: Signer,
    principal: QueueOperator,
    page: PageParamsDep,
    criteria: Annotated[DeadLetterFilter, Depends(_filter)],
) -> Page[DeadLetterOut]:
    """The messages of ``<name>-dlq``, oldest failure first, peeked (left in place): why
    each failed, its receive count, its event (redacted) and its trace id."""
    spec = service.queue_named(name)
    items, cursor = await service.list_dead_letters(queues, signer, principal, spec, criteria, page)
    return Page(items=items, next_cursor=cursor)


def _answer(action: QueueAction, response: Response) -> ActionOut:
    if action.status == "running":
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = f"/api/v1/queues/{action.queue}/actions/{action.id}"
    return action.out()


def _audit(
    session: SessionDep, principal: Principal, action: QueueAction, selection: Selection
) -> None:
    """One row in each tenant whose messages the action took, naming those only (a
    platform operator acts across tenants); the rest, or nothing matched, in the actor's."""
    if action.dry_run:
        return
    by_tenant: dict[str, list[str]] = {}
    for tenant, message_ids in action.tenants.items():
        by_tenant.setdefault(tenant or principal.tenant, []).extend(message_ids)
    taken = {message_id for message_ids in by_tenant.values() for message_id in message_ids}
    if not by_tenant or not taken.issuperset(selection.message_ids):
        by_tenant.setdefault(principal.tenant, [])
    for tenant, message_ids in by_tenant.items():
        # The ids the actor named, as far as they are this tenant's: another tenant's admins
        # read this row. Those that matched nothing go with the actor's tenant.
        named = [
            message_id
            for message_id in selection.message_ids
            if message_id in message_ids or (tenant == principal.tenant and message_id not in taken)
        ]
        shown = selection.model_copy(update={"message_ids": named})
        record_audit(
            session,
            AuditEntry,
            principal,
            f"dead_letters.{action.action}",
            action.queue,
            tenant=tenant,
            object_type="queue",
            changes={
                "selection": shown.model_dump(mode="json", exclude={"dry_run", "confirm"}),
                "matched": len(message_ids),
                "message_ids": message_ids,
            },
        )


@router.post("/{name}/dead-letters/replay")
async def replay_dead_letters(
    name: QueueName,
    selection: Selection,
    session: SessionDep,
    principal: QueueOperator,
    actions: Actions,
    response: Response,
) -> ActionOut:
    """Send the selected messages back to ``name``, throttled, body and trace attributes as
    they were (consumers are idempotent: a message replayed twice is handled once). With
    ``dry_run`` nothing moves: the answer counts and lists them. A replay that takes longer
    than a few seconds answers 202 and goes on; follow it at ``Location``."""
    action = await actions.start(principal, service.queue_named(name), "replay", selection)
    _audit(session, principal, action, selection)
    return _answer(action, response)


@router.post("/{name}/dead-letters/delete")
async def delete_dead_letters(
    name: QueueName,
    selection: DeleteSelection,
    session: SessionDep,
    principal: QueueOperator,
    actions: Actions,
    response: Response,
) -> ActionOut:
    """Delete the selected messages from ``<name>-dlq`` (``confirm`` must be true)."""
    action = await actions.start(principal, service.queue_named(name), "delete", selection)
    _audit(session, principal, action, selection)
    return _answer(action, response)


@router.get("/{name}/actions/{action_id}")
async def get_action(
    name: QueueName,
    action_id: Annotated[str, PathParam(max_length=100)],
    principal: QueueOperator,
    actions: Actions,
) -> ActionOut:
    """A replay or delete started by this process: how far it got."""
    return actions.get(principal, service.queue_named(name), action_id).out()
