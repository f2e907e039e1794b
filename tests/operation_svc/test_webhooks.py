"""Outbound webhooks, from the change that causes them to the receiver: the outbox (nothing
for a rolled-back change), Standard Webhooks signatures, retries with every attempt
recorded, filters, the outbound guard at each delivery, disabling, resends, and one attempt
per due delivery however many replicas send."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from standardwebhooks import Webhook
from starlette.responses import Response, StreamingResponse

from idp_common.auth import Principal
from idp_common.clock import SYSTEM_CLOCK, Clock
from idp_common.db import Database, utcnow
from idp_common.loops import Supervisor
from idp_common.pagination import PageParams
from operation_svc.config import WebhookSettings
from operation_svc.executions.lifecycle import record_ended
from operation_svc.executions.worker_protocol import mark_lost
from operation_svc.models import (
    AuditEntry,
    Execution,
    OperationTemplate,
    WebhookAttempt,
    WebhookDelivery,
)
from operation_svc.webhooks import service
from operation_svc.webhooks.deliveries import RESPONSE_EXCERPT_BYTES, WebhookDeliveryLoop
from operation_svc.webhooks.schemas import WebhookIn, WebhookUpdate
from operation_svc.webhooks.signing import ROTATION_OVERLAP
from tests.clock import ManualClock
from tests.common.test_content_decoding import gzip_bomb
from tests.harness import eventually, migrated_database
from tests.operation_svc.webhook_receiver import Received, Receiver

ADMIN = Principal("alice", "acme", frozenset({"admin"}))
LOCAL = ["127.0.0.1"]


def settings(**changes: Any) -> WebhookSettings:
    return WebhookSettings.model_validate({"allowed_hosts": LOCAL} | changes)


def ended(
    status: str = "succeeded",
    template: OperationTemplate | None = None,
    panel_id: uuid.UUID | None = None,
) -> Execution:
    """An execution that has just ended (nothing reads it from the database)."""
    now = utcnow()
    return Execution(
        id=uuid.uuid4(),
        tenant="acme",
        template_id=template.id if template else None,
        template_slug=template.slug if template else "noop",
        panel_id=panel_id,
        submitted_by="alice",
        attempt=1,
        parameters={},
        timeout_seconds=10,
        status=status,
        exit_code=0 if status == "succeeded" else 1,
        output="hello\n",
        started_at=now,
        finished_at=now,
    )


def a_template(slug: str) -> OperationTemplate:
    return OperationTemplate(
        id=uuid.uuid4(),
        tenant="acme",
        slug=slug,
        name=slug,
        argv=["true"],
        command_template="true",
        created_by="admin",
        updated_by="admin",
    )


async def subscribe(db: Database, url: str, **fields: Any) -> tuple[uuid.UUID, str]:
    data = WebhookIn.model_validate(
        {"url": url, "event_types": ["operation.execution.finished"]} | fields
    )
    async with db.transaction() as session:
        hook, secret = await service.create_webhook(session, ADMIN, data, LOCAL)
        return hook.id, secret


async def end_execution(db: Database, execution: Execution) -> None:
    async with db.transaction() as session:
        record_ended(session, execution)


async def deliveries(
    db: Database, hook_id: uuid.UUID, status: str | None = None
) -> list[dict[str, Any]]:
    """The deliveries as the API lists them."""
    async with db.transaction() as session:
        page = PageParams(limit=50, cursor=None)
        found, _ = await service.list_deliveries(session, ADMIN, hook_id, page, status)
    return [
        {
            "status": delivery.status,
            "attempts": [
                (a.number, a.trigger, a.status_code, a.latency_ms, a.response_excerpt, a.error)
                for a in attempts
            ],
        }
        for delivery, attempts in found
    ]


def attempts_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("idp_webhook_attempts_total", {"outcome": outcome}) or 0.0


@asynccontextmanager
async def delivering(
    db: Database, clock: Clock = SYSTEM_CLOCK, **changes: Any
) -> AsyncIterator[WebhookDeliveryLoop]:
    """A delivery loop (one replica's), its passes run by the test."""
    loop = WebhookDeliveryLoop(db, settings(**changes), clock=clock)
    try:
        yield loop
    finally:
        await loop.after_stop()


@asynccontextmanager
async def receiving(
    backend: str, tmp_path: Path, *statuses: int
) -> AsyncIterator[tuple[Database, Receiver, str]]:
    receiver = Receiver(list(statuses))
    async with migrated_database(backend, tmp_path, "operation") as db, receiver.app() as app:
        yield db, receiver, f"{app.url}/hook"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_delivery_is_signed_retried_and_every_attempt_is_recorded(
    backend: str, tmp_path: Path
) -> None:
    async with receiving(backend, tmp_path, 500, 503) as (db, receiver, url):
        hook_id, secret = await subscribe(db, url)
        execution = ended("failed")
        await end_execution(db, execution)
        clock = ManualClock()  # deliveries are due from when they were asked for
        failed_before, succeeded_before = attempts_counted("failed"), attempts_counted("succeeded")
        async with delivering(db, clock) as loop:
            for _ in range(3):
                assert await loop.send_due() == 1
                assert await loop.send_due() == 0  # not due before its backoff
                clock.advance(30 * 2**4)

        assert attempts_counted("failed") - failed_before == 2
        assert attempts_counted("succeeded") - succeeded_before == 1

        first = receiver.received[0]
        event = Webhook(secret).verify(first.body, first.headers)
        assert event["type"] == "operation.execution.finished"
        assert event["data"]["execution_id"] == str(execution.id)
        assert (event["data"]["status"], event["data"]["exit_code"]) == ("failed", 1)
        assert event["data"]["output_excerpt"] == "hello\n"
        # Every attempt is the same message: one id, one body.
        assert {r.headers["webhook-id"] for r in receiver.received} == {first.headers["webhook-id"]}
        assert {r.body for r in receiver.received} == {first.body}
        [delivery] = await deliveries(db, hook_id)
        assert delivery["status"] == "succeeded"
        assert [(n, trigger, code) for n, trigger, code, *_ in delivery["attempts"]] == [
            (1, "automatic", 500),
            (2, "automatic", 503),
            (3, "automatic", 200),
        ]
        for *_, latency_ms, excerpt, error in delivery["attempts"]:
            assert latency_ms > 0
            assert excerpt.startswith("receiver says")
            assert error is None


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("body", "encoding", "recorded"),
    [
        (b"ok\x00\xff done", "identity", "ok\ufffd\ufffd done"),
        (gzip_bomb(64), "gzip", "\ufffd" * RESPONSE_EXCERPT_BYTES),
    ],
    ids=["nul-and-invalid-utf8", "gzip-bomb"],
)
async def test_whatever_a_receiver_answers_its_attempt_is_recorded(
    backend: str, tmp_path: Path, body: bytes, encoding: str, recorded: str
) -> None:
    async with receiving(backend, tmp_path) as (db, receiver, url):
        receiver.answer = Response(body, headers={"content-encoding": encoding})
        hook_id, _ = await subscribe(db, url)
        await end_execution(db, ended())
        async with delivering(db) as loop:
            assert await loop.send_due() == 1
        [delivery] = await deliveries(db, hook_id)
        assert delivery["status"] == "succeeded"
        [(_, _, code, _, excerpt, error)] = delivery["attempts"]
        assert (code, excerpt, error) == (200, recorded, None)


async def test_an_answer_trickled_past_the_timeout_is_a_failed_attempt(tmp_path: Path) -> None:
    async def bytes_apart() -> AsyncIterator[bytes]:
        for _ in range(40):  # each read is quick; the answer takes 4 s
            await asyncio.sleep(0.1)
            yield b"."

    async with receiving("sqlite", tmp_path) as (db, receiver, url):
        receiver.answer = StreamingResponse(bytes_apart())
        hook_id, _ = await subscribe(db, url)
        await end_execution(db, ended())
        async with delivering(db, request_timeout_seconds=0.5) as loop:
            assert await loop.send_due() == 1
        [delivery] = await deliveries(db, hook_id)
        assert delivery["status"] == "pending"
        [(_, _, code, _, excerpt, error)] = delivery["attempts"]
        assert (code, excerpt, error) == (None, None, "no answer within 0.5s")


async def test_a_receiver_that_answers_late_holds_up_no_other_delivery(tmp_path: Path) -> None:
    # The loop waited for a whole batch's answers before it claimed the next: a receiver
    # answering at the timeout held every tenant's deliveries back by as much, each batch.
    answered = asyncio.Event()

    async def later() -> AsyncIterator[bytes]:
        await answered.wait()
        yield b"late"

    slow_one, other = a_template("slow"), a_template("other")
    async with (
        receiving("sqlite", tmp_path) as (db, slow, slow_url),
        Receiver().app() as served,
    ):
        async with db.transaction() as session:
            session.add_all([slow_one, other])
        slow.answer = StreamingResponse(later())
        await subscribe(db, slow_url, templates=["slow"])
        fast_id, _ = await subscribe(db, f"{served.url}/hook", templates=["other"])
        loop = WebhookDeliveryLoop(db, settings(poll_seconds=0.05), clock=SYSTEM_CLOCK)
        async with Supervisor([loop]).running():
            await end_execution(db, ended(template=slow_one))

            async def asked() -> list[Received]:
                return slow.received

            await eventually(asked)
            await end_execution(db, ended(template=other))

            async def delivered() -> list[dict[str, Any]]:
                return [d for d in await deliveries(db, fast_id) if d["status"] == "succeeded"]

            await eventually(delivered, timeout=5)  # the slow one still waits for its answer
            answered.set()


async def test_a_rolled_back_change_delivers_nothing(tmp_path: Path) -> None:
    async with receiving("sqlite", tmp_path) as (db, receiver, url):
        hook_id, _ = await subscribe(db, url)
        with pytest.raises(RuntimeError):
            async with db.transaction() as session:
                record_ended(session, ended())
                raise RuntimeError("the change fails after the event was asked for")
        async with delivering(db) as loop:
            assert await loop.send_due() == 0
        assert await deliveries(db, hook_id) == []
        assert receiver.received == []


async def test_filters_by_tenant_template_panel_and_event_type(tmp_path: Path) -> None:
    wanted, other = a_template("wanted"), a_template("other")
    panel = uuid.uuid4()
    async with receiving("sqlite", tmp_path) as (db, _, url):
        async with db.transaction() as session:
            session.add_all([wanted, other])
        only_wanted, _ = await subscribe(db, url, templates=["wanted"])
        everything, _ = await subscribe(db, url)
        failures, _ = await subscribe(db, url, templates=[str(other.id)])
        of_the_panel, _ = await subscribe(db, url, panel_ids=[panel])
        async with db.transaction() as session:
            await service.update_webhook(
                session,
                ADMIN,
                failures,
                WebhookUpdate(event_types=["operation.execution.failed"]),
                LOCAL,
            )
        await end_execution(db, ended("succeeded", wanted, panel))
        await end_execution(db, ended("succeeded", other))
        await end_execution(db, ended("timed_out", other))
        elsewhere = ended("failed", wanted, panel)
        elsewhere.tenant = "globex"  # the same template and panel ids, another tenant's event
        await end_execution(db, elsewhere)
        assert len(await deliveries(db, only_wanted)) == 1
        assert len(await deliveries(db, everything)) == 3
        assert len(await deliveries(db, failures)) == 1
        assert len(await deliveries(db, of_the_panel)) == 1


async def test_a_cookie_a_receiver_sets_goes_with_no_later_delivery(tmp_path: Path) -> None:
    # The loop's one client kept a cookie jar: a receiver's cookie went with every later
    # delivery to its host, another tenant's too.
    async with receiving("sqlite", tmp_path) as (db, receiver, url):
        receiver.answer = Response("ok", headers={"set-cookie": "session=acme-only; Path=/"})
        await subscribe(db, url)
        async with db.transaction() as session:
            globex = Principal("bob", "globex", frozenset({"admin"}))
            data = WebhookIn(url=url, event_types=["operation.execution.finished"])
            await service.create_webhook(session, globex, data, LOCAL)
        elsewhere = ended()
        elsewhere.tenant = "globex"
        async with delivering(db) as loop:
            await end_execution(db, ended())
            assert await loop.send_due() == 1
            await end_execution(db, elsewhere)
            assert await loop.send_due() == 1
        assert [received.headers.get("cookie") for received in receiver.received] == [None, None]


async def test_a_lost_execution_is_told_as_failed(tmp_path: Path) -> None:
    """The sweeper's path: an execution whose worker went silent ends ``lost``."""
    async with receiving("sqlite", tmp_path) as (db, _, url):
        hook_id, _ = await subscribe(db, url, event_types=["operation.execution.failed"])
        silent = ended("running")
        silent.finished_at, silent.worker_id = None, "gone"
        silent.heartbeat_at = utcnow() - timedelta(minutes=5)
        async with db.transaction() as session:
            session.add(silent)
        async with db.transaction() as session:
            assert await mark_lost(session, utcnow() - timedelta(minutes=1)) == 1
        async with db.transaction() as session:
            [row] = await session.scalars(select(WebhookDelivery))
        event = json.loads(row.body)
        assert (row.subscription_id, event["type"]) == (hook_id, "operation.execution.failed")
        assert (event["data"]["execution_id"], event["data"]["status"]) == (str(silent.id), "lost")


async def test_an_event_told_twice_is_delivered_once(tmp_path: Path) -> None:
    async with receiving("sqlite", tmp_path) as (db, _, url):
        hook_id, _ = await subscribe(db, url)
        execution = ended()
        await end_execution(db, execution)
        await end_execution(db, execution)
        assert len(await deliveries(db, hook_id)) == 1


async def test_a_host_resolving_inside_is_refused_at_delivery_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that passes the check at save (it is no address) but resolves to loopback
    when the delivery is made (an attacker's DNS)."""
    resolve = anyio.getaddrinfo

    async def attacker_dns(host: Any, port: Any, **options: Any) -> Any:
        if host == "hooks.attacker.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return await resolve(host, port, **options)

    monkeypatch.setattr(anyio, "getaddrinfo", attacker_dns)
    async with receiving("sqlite", tmp_path) as (db, receiver, url):
        port = url.split(":")[2].split("/")[0]
        hook_id, _ = await subscribe(db, f"http://hooks.attacker.example:{port}/hook")
        await end_execution(db, ended())
        async with delivering(db, allowed_hosts=[]) as loop:
            assert await loop.send_due() == 1
        assert receiver.received == []
        [delivery] = await deliveries(db, hook_id)
        [(number, _, status_code, _, _, error)] = delivery["attempts"]
        assert (number, status_code, delivery["status"]) == (1, None, "pending")
        assert "refused by the outbound rules" in error
        assert "hooks.attacker.example resolves to a non-public address" in error
        assert "127.0.0.1" not in error  # where the name leads inside is not the tenant's to learn


async def test_a_subscription_failing_too_long_is_disabled_and_stops_receiving(
    tmp_path: Path,
) -> None:
    async with receiving("sqlite", tmp_path, *[500] * 10) as (db, receiver, url):
        hook_id, _ = await subscribe(db, url)
        await end_execution(db, ended())
        clock = ManualClock()
        async with delivering(db, clock, disable_after_seconds=3600) as loop:
            assert await loop.send_due() == 1
            clock.advance(3600)
            assert await loop.send_due() == 1
            async with db.transaction() as session:
                hook = await service.get_webhook(session, ADMIN, hook_id)
                assert not hook.active
                assert hook.disabled_reason is not None
                assert "every delivery attempt has failed since" in hook.disabled_reason
                assert "HTTP 500" in hook.disabled_reason
            await end_execution(db, ended())
            clock.advance(3600 * 24)
            assert await loop.send_due() == 0
        assert len(receiver.received) == 2
        assert [d["status"] for d in await deliveries(db, hook_id)] == ["failed"]
        assert len(await deliveries(db, hook_id, "failed")) == 1
        assert await deliveries(db, hook_id, "pending") == []
        async with db.transaction() as session:
            actions = await session.scalars(
                select(AuditEntry.action).order_by(AuditEntry.created_at)
            )
            assert list(actions) == ["webhook.create", "webhook.disable"]


async def test_a_delivery_given_up_after_its_last_attempt_can_be_resent(tmp_path: Path) -> None:
    async with receiving("sqlite", tmp_path, 500, 500) as (db, receiver, url):
        hook_id, _ = await subscribe(db, url)
        await end_execution(db, ended())
        clock = ManualClock()
        async with delivering(db, clock, max_attempts=2) as loop:
            assert await loop.send_due() == 1
            clock.advance(60)
            assert await loop.send_due() == 1
            clock.advance(3600)
            assert await loop.send_due() == 0  # given up
            [delivery] = await deliveries(db, hook_id)
            assert delivery["status"] == "failed"
            async with db.transaction() as session:
                [(row, _)], _ = await service.list_deliveries(
                    session, ADMIN, hook_id, PageParams(limit=50, cursor=None)
                )
                await service.resend(session, ADMIN, hook_id, row.id)
            assert await loop.send_due() == 1
        [delivery] = await deliveries(db, hook_id)
        assert delivery["status"] == "succeeded"
        assert [(n, trigger, code) for n, trigger, code, *_ in delivery["attempts"]] == [
            (1, "automatic", 500),
            (2, "automatic", 500),
            (3, "manual", 200),
        ]
        assert len(receiver.received) == 3


def signed_with(received: Received, secret: str) -> bool:
    """Whether one of the attempt's signatures is ``secret``'s (its time left unchecked: the
    test's clock runs ahead of the receiver's)."""
    headers = received.headers
    timestamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    signature = Webhook(secret).sign(headers["webhook-id"], timestamp, received.body)
    return signature in headers["webhook-signature"].split(" ")


async def test_a_rotated_secret_signs_beside_the_new_one_until_its_overlap_ends(
    tmp_path: Path,
) -> None:
    """A receiver switching to the new secret refuses no delivery meanwhile (Standard
    Webhooks' list of signatures); a second rotation drops the older secret at once."""
    async with receiving("sqlite", tmp_path, 500, 500, 500) as (db, receiver, url):
        hook_id, first = await subscribe(db, url)
        rotations: list[str] = []

        async def rotate() -> None:
            async with db.transaction() as session:
                rotations.append(
                    (await service.rotate_secret(session, ADMIN, hook_id)).signing_secret
                )

        await rotate()
        await end_execution(db, ended())
        clock = ManualClock()
        async with delivering(db, clock) as loop:
            assert await loop.send_due() == 1
            await rotate()
            clock.advance(60)
            assert await loop.send_due() == 1
            clock.advance(ROTATION_OVERLAP.total_seconds())
            assert await loop.send_due() == 1
        second, third = rotations
        signers = [
            [secret for secret in (first, second, third) if signed_with(received, secret)]
            for received in receiver.received
        ]
        assert signers == [[first, second], [second, third], [third]]


async def test_a_delivery_whose_sender_stopped_is_taken_over_once_its_lease_ends(
    tmp_path: Path,
) -> None:
    async with receiving("sqlite", tmp_path) as (db, receiver, url):
        hook_id, _ = await subscribe(db, url)
        await end_execution(db, ended())
        clock = ManualClock()
        async with delivering(db, clock) as stopped, delivering(db, clock) as other:
            token = uuid.uuid4()
            [claimed] = await stopped._claim(token, 1)  # and then its replica stopped
            assert await other.send_due() == 0  # leased
            clock.advance(other.settings.request_timeout_seconds + 61)
            assert await other.send_due() == 1
            late = await stopped._post(claimed)  # the stopped sender's attempt, recorded late
            async with db.transaction() as session:
                await stopped._record(session, claimed, token, late)
        [delivery] = await deliveries(db, hook_id)
        assert delivery["status"] == "succeeded"
        assert len(delivery["attempts"]) == 1  # the late record was not the lease holder's
        assert len(receiver.received) == 2


async def test_ended_deliveries_are_forgotten_after_the_retention(tmp_path: Path) -> None:
    async with receiving("sqlite", tmp_path) as (db, _, url):
        hook_id, _ = await subscribe(db, url)
        await end_execution(db, ended())
        clock = ManualClock()
        async with delivering(db, clock, retention_days=30) as loop:
            await loop.run_once()  # sending; nothing old enough to forget

            async def sent() -> list[str]:
                return [
                    d["status"] for d in await deliveries(db, hook_id) if d["status"] != "sending"
                ]

            assert await eventually(sent) == ["succeeded"]
            await end_execution(db, ended())  # pending: kept however old
            clock.advance(31 * 24 * 3600)
            assert await loop.forget_old() == 1
        [kept] = await deliveries(db, hook_id)
        assert kept["status"] == "pending"
        async with db.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(WebhookAttempt)) == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_replicas_never_send_one_attempt_twice(backend: str, tmp_path: Path) -> None:
    async with receiving(backend, tmp_path) as (db, receiver, url):
        await subscribe(db, url)
        for _ in range(30):
            await end_execution(db, ended())

        async def drain() -> int:
            sent = 0
            async with delivering(db, batch_size=7) as loop:
                while made := await loop.send_due():
                    sent += made
            return sent

        assert sum(await asyncio.gather(drain(), drain(), drain())) == 30
        ids = [r.headers["webhook-id"] for r in receiver.received]
        assert len(ids) == len(set(ids)) == 30
        async with db.transaction() as session:
            count = await session.scalar(
                select(func.count()).where(WebhookDelivery.status == "succeeded")
            )
        assert count == 30
