"""Operators' dead-letter tools against the real queue: why each message failed (redacted),
peek without consuming, dry runs, replay (once, even when replayed twice), delete only when
confirmed, tenants kept apart, and every action audited."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from idp_common.events import SubmissionCreated
from idp_common.messaging.consumer import UNSIGNED, EventHandler
from idp_common.messaging.dead_letters import (
    FAILED_AT,
    RECEIVES,
    DeadLetter,
    DeadLetterQueue,
    dead_letter,
)
from idp_common.messaging.envelope import Event, encode_event
from idp_common.messaging.signing import SIGNATURE, MessageSigner
from idp_common.messaging.topology import OPERATION_JOBS, PANEL_SUBMISSIONS
from idp_common.runtime import open_messaging
from idp_common.sealing import SEALED_PREFIX
from tests.factories import template
from tests.harness import (
    SIGNER,
    LocalSQSServer,
    Platform,
    assert_field_refused,
    auth_headers,
    eventually,
    running_platform,
    sqs_settings,
    worker_for,
)

ADMIN = auth_headers(roles=("admin",))
OTHER_ADMIN = auth_headers(tenant="globex", roles=("admin",))
PLATFORM_OPERATOR = auth_headers(tenant="ops", roles=("platform-operator",))
OPERATOR = auth_headers(roles=("operator",))
DEAD_LETTERS = f"/api/v1/queues/{PANEL_SUBMISSIONS.name}/dead-letters"
SECRET = "hunter2-very-secret"


class Failing:
    """Events with the subject ``fails`` fail in operation-svc until ``fixed``."""

    fixed = False


@pytest.fixture
def failing_handler(monkeypatch: pytest.MonkeyPatch) -> type[Failing]:
    """operation-svc's consumers fail on events with the subject ``fails`` (quoting the
    event's data in the error, as a careless handler might) until ``Failing.fixed``."""
    import operation_svc.app
    from idp_common.messaging.inbox import transactional_handler

    Failing.fixed = False

    def failing(*args: Any) -> EventHandler:
        handle = transactional_handler(*args)

        async def maybe_fail(event: Event) -> None:
            if event.subject == "fails" and not Failing.fixed:
                raise RuntimeError(f"cannot handle {json.dumps(event.data)}")
            await handle(event)

        return maybe_fail

    monkeypatch.setattr(operation_svc.app, "transactional_handler", failing)
    return Failing


@pytest.fixture
async def platform(
    failing_handler: type[Failing], tmp_path: Path, sqs_server: LocalSQSServer
) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite", tmp_path, sqs_server, allowed_executables=["echo"], with_worker=False
    ) as running:
        yield running


def submission_event(tenant: str = "acme") -> Event:
    created = SubmissionCreated(
        submission_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
        panel_id=uuid.UUID("00000000-0000-4000-8000-000000000002"),
        panel_slug="restart",
        operation_template="missing",
        submitted_by="bob",
        parameters={"password": SECRET, "key": f"{SEALED_PREFIX}abc", "service": "api"},
    )
    return created.to_event(source="urn:test", tenant=tenant, subject="fails")


async def send(platform: Platform, queue: str, *bodies: str) -> None:
    """Each body as one of the platform's services would send it (signed)."""
    async with open_messaging(platform.sqs, SIGNER) as bus:
        url = await bus.queues.url(queue)
        for body in bodies:
            await bus.queues.client.send_message(
                QueueUrl=url,
                MessageBody=body,
                MessageAttributes={SIGNATURE: SIGNER.attribute(body)},
            )


async def dead_letters(platform: Platform, headers: dict[str, str], **query: str) -> Any:
    response = await platform.operation.get(DEAD_LETTERS, params=query, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def poisoned_and_failed(platform: Platform) -> tuple[dict[str, Any], dict[str, Any]]:
    """A poison message and an always-failing event of acme, both in the DLQ."""
    await send(platform, PANEL_SUBMISSIONS.name, "{not an event", encode_event(submission_event()))

    async def both() -> list[Any] | None:
        letters = await dead_letters(platform, PLATFORM_OPERATOR)
        return letters if len(letters) == 2 else None

    letters = await eventually(both, timeout=30)
    poison = next(letter for letter in letters if letter["event_id"] is None)
    failed = next(letter for letter in letters if letter["event_id"] is not None)
    return poison, failed


async def test_dead_letters_say_why_redacted_and_peeking_consumes_nothing(
    platform: Platform,
) -> None:
    poison, failed = await poisoned_and_failed(platform)
    assert poison["reason"].startswith("invalid event")
    assert poison["body"] == "{not an event"
    assert poison["tenant"] is None
    assert failed["reason"].startswith("RuntimeError: cannot handle")
    assert failed["receive_count"] == 5
    assert failed["type"] == "panel.submission.created"
    assert failed["tenant"] == "acme"
    assert SECRET not in json.dumps(failed)  # neither in the reason nor in the data
    assert failed["data"]["parameters"] == {"password": "***", "key": "[sealed]", "service": "api"}
    again = await dead_letters(platform, PLATFORM_OPERATOR)
    assert {letter["message_id"] for letter in again} == {
        poison["message_id"],
        failed["message_id"],
    }
    queues = await platform.operation.get("/api/v1/queues", headers=PLATFORM_OPERATOR)
    by_name = {queue["name"]: queue for queue in queues.json()}
    assert by_name[PANEL_SUBMISSIONS.name]["dead_letters"]["depth"] == 2
    assert by_name[PANEL_SUBMISSIONS.name]["dead_letters"]["oldest_age_seconds"] >= 0
    assert by_name[OPERATION_JOBS.name]["dead_letters"]["oldest_age_seconds"] is None


async def test_filters_and_pages(platform: Platform) -> None:
    poison, failed = await poisoned_and_failed(platform)
    operator = PLATFORM_OPERATOR
    assert await dead_letters(platform, operator, type="panel.submission.created") == [failed]
    assert await dead_letters(platform, operator, reason="INVALID EVENT") == [poison]
    assert await dead_letters(platform, operator, tenant="acme") == [failed]
    assert await dead_letters(platform, operator, since="2999-01-01T00:00:00Z") == []
    first = await platform.operation.get(DEAD_LETTERS, params={"limit": 1}, headers=operator)
    cursor = first.json()["next_cursor"]
    second = await platform.operation.get(
        DEAD_LETTERS, params={"limit": 1, "cursor": cursor}, headers=operator
    )
    pages = first.json()["items"] + second.json()["items"]
    assert {letter["message_id"] for letter in pages} == {
        poison["message_id"],
        failed["message_id"],
    }
    assert second.json()["next_cursor"] is None
    # Its time without the offset every cursor names was compared with the letters' (a 500).
    time, message_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    naive = json.dumps([time[:19], message_id]).encode()
    refused = await platform.operation.get(
        DEAD_LETTERS,
        params={"cursor": base64.urlsafe_b64encode(naive).decode()},
        headers=operator,
    )
    assert_field_refused(refused, "cursor", "invalid")


async def test_a_tenant_admin_sees_only_their_tenants_messages(platform: Platform) -> None:
    _, failed = await poisoned_and_failed(platform)
    assert await dead_letters(platform, ADMIN) == [failed]  # not the unreadable one
    assert await dead_letters(platform, OTHER_ADMIN) == []
    for headers in (OPERATOR, auth_headers(roles=("viewer",))):
        response = await platform.operation.get(DEAD_LETTERS, headers=headers)
        assert response.status_code == 403
    other_replay = await platform.operation.post(
        f"{DEAD_LETTERS}/replay", json={"message_ids": [failed["message_id"]]}, headers=OTHER_ADMIN
    )
    assert other_replay.json()["matched"] == 0
    assert len(await dead_letters(platform, PLATFORM_OPERATOR)) == 2


async def test_a_dry_run_moves_nothing_and_a_replay_is_handled_once(
    platform: Platform, failing_handler: type[Failing]
) -> None:
    _, failed = await poisoned_and_failed(platform)
    dry = await platform.operation.post(
        f"{DEAD_LETTERS}/replay",
        json={"filter": {"type": "panel.submission.created"}, "dry_run": True},
        headers=ADMIN,
    )
    assert dry.status_code == 200
    assert (dry.json()["status"], dry.json()["matched"]) == ("dry_run", 1)
    assert dry.json()["message_ids"] == [failed["message_id"]]
    assert len(await dead_letters(platform, PLATFORM_OPERATOR)) == 2

    failing_handler.fixed = True
    replay = {"message_ids": [failed["message_id"]]}
    replayed = await platform.operation.post(f"{DEAD_LETTERS}/replay", json=replay, headers=ADMIN)
    assert replayed.status_code == 200, replayed.text
    assert (replayed.json()["status"], replayed.json()["done"]) == ("completed", 1)
    # Followed by its tenant and the platform's operators; another tenant learns nothing.
    action = f"/api/v1/queues/{PANEL_SUBMISSIONS.name}/actions/{replayed.json()['id']}"
    for headers, status in ((ADMIN, 200), (PLATFORM_OPERATOR, 200), (OTHER_ADMIN, 404)):
        assert (await platform.operation.get(action, headers=headers)).status_code == status
    # Handled now: the submission's template is missing, so its execution is rejected.
    rejected = await eventually(lambda: _executions(platform, "rejected"))
    assert len(rejected) == 1
    again = await platform.operation.post(f"{DEAD_LETTERS}/replay", json=replay, headers=ADMIN)
    assert again.json()["matched"] == 0  # it left the DLQ
    audit = await platform.operation.get(
        "/api/v1/audit", params={"action": "dead_letters.replay"}, headers=ADMIN
    )
    assert [entry["changes"]["message_ids"] for entry in audit.json()["items"]] == [
        [],
        [failed["message_id"]],
    ]


@pytest.mark.parametrize("replica", ["same", "another"])
async def test_a_replay_waits_for_a_listing_of_the_same_dlq_to_show_its_messages_again(
    sqs_server: LocalSQSServer, monkeypatch: pytest.MonkeyPatch, replica: str
) -> None:
    """A listing hides the messages it reads until it shows them again: a replay that read
    the DLQ meanwhile found none and replayed 0 of 0 (the console's DLQ page, under load).
    In the same process the replay waits its turn; another replica's reads again."""
    show_again = DeadLetterQueue._show_again
    listing_has_them, slow_listing_done = asyncio.Event(), asyncio.Event()

    async def slow_listing(dlq: DeadLetterQueue, url: str, letters: list[DeadLetter]) -> None:
        if letters and not slow_listing_done.is_set():
            listing_has_them.set()
            await slow_listing_done.wait()
        await show_again(dlq, url, letters)

    monkeypatch.setattr(DeadLetterQueue, "_show_again", slow_listing)
    settings = sqs_settings(sqs_server)
    async with (
        open_messaging(settings, SIGNER) as bus,
        open_messaging(settings, SIGNER) as other_bus,
    ):
        await dead_letter(
            bus.queues,
            PANEL_SUBMISSIONS,
            {"Body": "poison"},
            "it failed",
            1,
            signer=bus.publisher.signer,
        )
        listing = asyncio.ensure_future(DeadLetterQueue(bus.queues, PANEL_SUBMISSIONS).peek())
        await listing_has_them.wait()
        replaying_bus = bus if replica == "same" else other_bus

        async def replay() -> list[str]:
            dlq = DeadLetterQueue(replaying_bus.queues, PANEL_SUBMISSIONS)
            async with dlq.take(bool, expected=1) as taken:
                return [letter.body for letter in taken.letters]

        replaying = asyncio.ensure_future(replay())
        await asyncio.sleep(1.5)  # longer than a read's long poll of the hidden DLQ
        slow_listing_done.set()
        assert [letter.body for letter in await listing] == ["poison"]
        assert await replaying == ["poison"]


@pytest.mark.parametrize("signature", [None, "0" * 64, "another-secret"])
async def test_an_event_not_signed_by_the_platform_is_dead_lettered_and_runs_nothing(
    platform: Platform, signature: str | None
) -> None:
    """Whoever could write the broker (a command the worker runs reaches a local one) made a
    ``panel.submission.created`` run a template as anyone, with any roles."""
    await template(platform, "hello", "echo hello", [])
    forged = encode_event(
        SubmissionCreated(
            submission_id=uuid.uuid4(),
            panel_id=uuid.uuid4(),
            panel_slug="nope",
            operation_template="hello",
            submitted_by="mallory",
            submitter_roles=["admin"],
            parameters={},
        ).to_event(source="urn:idp:panel-svc", tenant="acme", subject="forged")
    )
    attributes = {}
    if signature == "another-secret":
        attributes = {SIGNATURE: MessageSigner("another-secret").attribute(forged)}
    elif signature is not None:
        attributes = {SIGNATURE: {"DataType": "String", "StringValue": signature}}
    async with open_messaging(platform.sqs, SIGNER) as bus:
        await bus.queues.client.send_message(
            QueueUrl=await bus.queues.url(PANEL_SUBMISSIONS.name),
            MessageBody=forged,
            MessageAttributes=attributes,
        )
    letters = await eventually(lambda: dead_letters(platform, PLATFORM_OPERATOR), timeout=30)
    assert letters[0]["reason"] == f"refused: {UNSIGNED}"
    # Not acme's to read or replay: nothing admitted it as acme's.
    assert await dead_letters(platform, ADMIN) == []
    listed = await platform.operation.get("/api/v1/executions", headers=ADMIN)
    assert listed.json()["items"] == []


async def _executions(platform: Platform, status: str) -> list[Any] | None:
    response = await platform.operation.get(
        "/api/v1/executions", params={"status": status}, headers=ADMIN
    )
    return response.json()["items"] or None


async def test_a_job_dead_lettered_twice_and_replayed_runs_once(platform: Platform) -> None:
    created = await platform.operation.post(
        "/api/v1/templates",
        json={"slug": "hello", "name": "hello", "command_template": "echo hello", "parameters": []},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    execution = (
        await platform.operation.post(
            "/api/v1/executions", json={"template": "hello"}, headers=ADMIN
        )
    ).json()
    async with open_messaging(platform.sqs, SIGNER) as bus:  # the job, twice in its DLQ
        url = await bus.queues.url(OPERATION_JOBS.name)
        job = (await bus.queues.client.receive_message(QueueUrl=url, WaitTimeSeconds=3))[
            "Messages"
        ][0]
        await bus.queues.client.delete_message(QueueUrl=url, ReceiptHandle=job["ReceiptHandle"])
    await send(platform, OPERATION_JOBS.dlq_name, job["Body"], job["Body"])
    async with worker_for(platform, allowed_executables=["echo"]):
        replayed = await platform.operation.post(
            f"/api/v1/queues/{OPERATION_JOBS.name}/dead-letters/replay",
            json={"all": True},
            headers=ADMIN,
        )
        assert replayed.json()["matched"] == 2

        async def done() -> dict[str, Any] | None:
            found = await platform.operation.get(
                f"/api/v1/executions/{execution['id']}", headers=ADMIN
            )
            return found.json() if found.json()["status"] == "succeeded" else None

        await eventually(done, timeout=20)
        await eventually(lambda: _queues_empty(platform), timeout=20)
    audit = await platform.operation.get(
        "/api/v1/audit", params={"action": "execution.start"}, headers=ADMIN
    )
    assert [entry["object_id"] for entry in audit.json()["items"]] == [execution["id"]]


async def _queues_empty(platform: Platform) -> bool:
    queues = await platform.operation.get("/api/v1/queues", headers=PLATFORM_OPERATOR)
    jobs = next(queue for queue in queues.json() if queue["name"] == OPERATION_JOBS.name)
    left: int = jobs["visible"] + jobs["in_flight"] + jobs["dead_letters"]["depth"]
    return left == 0


async def test_the_platform_operator_replays_a_whole_dlq_with_the_brokers_move_task(
    platform: Platform, failing_handler: type[Failing]
) -> None:
    await poisoned_and_failed(platform)
    failing_handler.fixed = True
    moved = await platform.operation.post(
        f"{DEAD_LETTERS}/replay", json={"all": True}, headers=PLATFORM_OPERATOR
    )
    assert moved.status_code in (200, 202), moved.text
    assert moved.json()["matched"] == 2

    async def finished() -> dict[str, Any] | None:
        action: dict[str, Any] = moved.json()
        if action["status"] == "completed":
            return action
        followed = await platform.operation.get(
            f"/api/v1/queues/{PANEL_SUBMISSIONS.name}/actions/{action['id']}",
            headers=PLATFORM_OPERATOR,
        )
        progress: dict[str, Any] = followed.json()
        return progress if progress["status"] == "completed" else None

    assert (await eventually(finished, timeout=20))["done"] == 2
    # The poison one fails again, at once, and is back; the fixed one is handled.
    await eventually(lambda: _executions(platform, "rejected"), timeout=20)
    back = await eventually(lambda: dead_letters(platform, PLATFORM_OPERATOR), timeout=20)
    assert [letter["body"] for letter in back] == ["{not an event"]


async def test_a_delete_must_be_confirmed(platform: Platform) -> None:
    poison, _ = await poisoned_and_failed(platform)
    selection = {"message_ids": [poison["message_id"]]}
    for body in (selection, selection | {"confirm": False}, selection | {"confirm": "yes"}):
        refused = await platform.operation.post(
            f"{DEAD_LETTERS}/delete", json=body, headers=PLATFORM_OPERATOR
        )
        assert refused.status_code == 422
        assert any(error["field"] == "confirm" for error in refused.json()["errors"])
    deleted = await platform.operation.post(
        f"{DEAD_LETTERS}/delete", json=selection | {"confirm": True}, headers=PLATFORM_OPERATOR
    )
    assert (deleted.json()["status"], deleted.json()["done"]) == ("completed", 1)
    assert [letter["event_id"] for letter in await dead_letters(platform, PLATFORM_OPERATOR)] != [
        None
    ]


async def test_a_platform_operators_action_is_audited_in_each_tenant_it_touched(
    platform: Platform,
) -> None:
    """It was audited in the operator's own tenant, naming every tenant's messages; the
    tenants whose messages it deleted saw nothing."""
    poison, failed = await poisoned_and_failed(platform)
    deleted = await platform.operation.post(
        f"{DEAD_LETTERS}/delete", json={"all": True, "confirm": True}, headers=PLATFORM_OPERATOR
    )
    assert deleted.json()["matched"] == 2

    async def audited(headers: dict[str, str]) -> list[Any]:
        rows = await platform.operation.get(
            "/api/v1/audit", params={"action": "dead_letters.delete"}, headers=headers
        )
        return [(row["actor"], row["changes"]["message_ids"]) for row in rows.json()["items"]]

    operator_admin = auth_headers(tenant="ops", roles=("admin",))
    assert await audited(ADMIN) == [("alice", [failed["message_id"]])]
    assert await audited(operator_admin) == [("alice", [poison["message_id"]])]  # no tenant's
    assert await audited(OTHER_ADMIN) == []


async def test_a_tenants_audit_row_names_only_its_own_messages_of_those_selected(
    platform: Platform,
) -> None:
    """The row in acme's trail repeated the whole selection: the ids of the messages of
    every other tenant the operator named, read by acme's admins."""
    poison, failed = await poisoned_and_failed(platform)
    unknown = str(uuid.uuid4())
    named = [poison["message_id"], failed["message_id"], unknown]
    deleted = await platform.operation.post(
        f"{DEAD_LETTERS}/delete",
        json={"message_ids": named, "confirm": True},
        headers=PLATFORM_OPERATOR,
    )
    assert deleted.json()["matched"] == 2

    async def selected(headers: dict[str, str]) -> list[Any]:
        rows = await platform.operation.get(
            "/api/v1/audit", params={"action": "dead_letters.delete"}, headers=headers
        )
        return [row["changes"]["selection"]["message_ids"] for row in rows.json()["items"]]

    assert await selected(ADMIN) == [[failed["message_id"]]]
    operator_admin = auth_headers(tenant="ops", roles=("admin",))
    assert await selected(operator_admin) == [[poison["message_id"], unknown]]


async def test_ids_that_matched_nothing_are_audited_in_the_actors_tenant(
    platform: Platform,
) -> None:
    """When none of the messages taken was the actor's tenant's, it had no row: the ids
    named that matched nothing were in no tenant's trail."""
    _, failed = await poisoned_and_failed(platform)
    unknown = str(uuid.uuid4())
    deleted = await platform.operation.post(
        f"{DEAD_LETTERS}/delete",
        json={"message_ids": [failed["message_id"], unknown], "confirm": True},
        headers=PLATFORM_OPERATOR,
    )
    assert deleted.json()["matched"] == 1
    rows = await platform.operation.get(
        "/api/v1/audit",
        params={"action": "dead_letters.delete"},
        headers=auth_headers(tenant="ops", roles=("admin",)),
    )
    [row] = rows.json()["items"]
    assert row["changes"]["selection"]["message_ids"] == [unknown]
    assert row["changes"]["matched"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"all": True, "message_ids": ["x"]},
        {"all": False},
        {"filter": {"type": "x"}, "all": True},
        {"message_ids": [], "filter": None},
        {"filter": {"since": "yesterday"}},
        {"all": True, "unknown": 1},
    ],
)
async def test_a_selection_must_name_exactly_one_selector(
    platform: Platform, body: dict[str, Any]
) -> None:
    response = await platform.operation.post(f"{DEAD_LETTERS}/replay", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_queues_are_404_and_selections_matching_nothing_are_zero(
    platform: Platform,
) -> None:
    for path in (
        "/api/v1/queues/nope/dead-letters",
        "/api/v1/queues/panel-submissions-dlq/dead-letters",
        "/api/v1/queues/..%2Fpanel-submissions/dead-letters",
    ):
        response = await platform.operation.get(path, headers=PLATFORM_OPERATOR)
        assert response.status_code == 404, path
    none = await platform.operation.post(
        f"{DEAD_LETTERS}/replay", json={"filter": {"type": "nothing.like.this"}}, headers=ADMIN
    )
    assert (none.status_code, none.json()["matched"], none.json()["done"]) == (200, 0, 0)


async def test_a_broker_that_is_down_is_a_503_naming_it(tmp_path: Path) -> None:
    server = LocalSQSServer()
    await asyncio.to_thread(server.start)
    try:
        async with running_platform("sqlite", tmp_path, server, with_worker=False) as platform:
            await asyncio.to_thread(server.stop)
            for call in (
                platform.operation.get("/api/v1/queues", headers=PLATFORM_OPERATOR),
                platform.operation.get(DEAD_LETTERS, headers=PLATFORM_OPERATOR),
                platform.operation.post(
                    f"{DEAD_LETTERS}/replay", json={"all": True}, headers=PLATFORM_OPERATOR
                ),
            ):
                response = await call
                assert response.status_code == 503, response.text
                assert "message broker" in response.json()["detail"]
    finally:
        await asyncio.to_thread(server.stop)


@asynccontextmanager
async def forty_dead_letters_replayed_slowly(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> AsyncIterator[Platform]:
    """A platform whose replays move 5 letters a second, with 40 in panel-submissions' DLQ."""
    async with running_platform(
        "sqlite",
        tmp_path,
        sqs_server,
        with_worker=False,
        operation={"dlq_replay_per_second": 5},
    ) as platform:
        bodies = [encode_event(submission_event()) for _ in range(40)]
        await send(platform, PANEL_SUBMISSIONS.dlq_name, *bodies)
        yield platform


async def test_a_long_replay_answers_at_once_and_reports_its_progress(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """Thousands would take minutes: the request answers 202 within seconds, and the
    action is followed to its end (here 40 messages at 5 a second)."""
    async with forty_dead_letters_replayed_slowly(tmp_path, sqs_server) as platform:
        started = await platform.operation.post(
            f"{DEAD_LETTERS}/replay", json={"all": True}, headers=ADMIN
        )
        assert started.status_code == 202, started.text
        assert 0 < started.json()["done"] < 40
        assert started.json()["matched"] == 40
        location = started.headers["location"]
        progress = []

        async def finished() -> bool:
            followed = (await platform.operation.get(location, headers=ADMIN)).json()
            progress.append(followed["done"])
            return bool(followed["status"] == "completed")

        await eventually(finished, timeout=20, interval=0.5)
        assert progress[-1] == 40
        assert progress == sorted(progress)


async def test_failure_attributes_not_as_a_consumer_writes_them_are_not_believed(
    platform: Platform,
) -> None:
    """SQS's redrive moves a message with the attributes its producer wrote: a failure time
    that is no timestamp (or has no offset) or a receive count that is no number made every
    read of the DLQ raise (a listing's 500, or an empty listing: the queue monitor's failed
    read left the messages hidden)."""
    async with open_messaging(platform.sqs, SIGNER) as bus:
        url = await bus.queues.url(PANEL_SUBMISSIONS.dlq_name)
        for failed_at, receives in (
            ("yesterday", "many"),
            ("2026-01-01T00:00:00", "9" * 5000),
            ("0001-01-01T00:00:00+14:00", "1"),
        ):
            await bus.queues.client.send_message(
                QueueUrl=url,
                MessageBody=encode_event(submission_event()),
                MessageAttributes={
                    FAILED_AT: {"DataType": "String", "StringValue": failed_at},
                    RECEIVES: {"DataType": "String", "StringValue": receives},
                },
            )
    listed = await dead_letters(platform, PLATFORM_OPERATOR, since="2026-01-02T00:00:00Z")
    assert len(listed) == 3
    assert all(0 < letter["receive_count"] < 100 for letter in listed)  # SQS's
    assert all(letter["failed_at"].endswith("Z") for letter in listed)  # when sent to the DLQ
    queues = await platform.operation.get("/api/v1/queues", headers=PLATFORM_OPERATOR)
    by_name = {queue["name"]: queue for queue in queues.json()}
    assert by_name[PANEL_SUBMISSIONS.name]["dead_letters"]["depth"] == 3
    paged, cursor = [], None
    for _ in range(3):  # one a page: each page's cursor is one the API takes
        query = {"limit": "1"} | ({"cursor": cursor} if cursor else {})
        page = await platform.operation.get(DEAD_LETTERS, params=query, headers=PLATFORM_OPERATOR)
        assert page.status_code == 200, page.text
        paged += page.json()["items"]
        cursor = page.json()["next_cursor"]
    assert len({letter["message_id"] for letter in paged}) == 3


async def test_a_message_nested_deeper_than_the_json_parser_goes_is_dead_lettered_at_once(
    platform: Platform,
) -> None:
    """Redacting its reason parsed the body again and raised: the consumer could not move it
    to the DLQ, and it was received again and again until SQS's redrive (without why)."""
    await send(platform, PANEL_SUBMISSIONS.name, '{"data": ' + "[" * 5000 + "]" * 5000 + "}")

    async def dead_lettered() -> list[Any]:
        return list(await dead_letters(platform, PLATFORM_OPERATOR))

    [letter] = await eventually(dead_lettered, timeout=30)
    assert letter["reason"].startswith("invalid event: ")  # the consumer's, at its first receive
    assert letter["receive_count"] == 1


async def test_a_message_using_all_of_sqss_attributes_is_dead_lettered_at_once(
    platform: Platform,
) -> None:
    """SQS carries 10 attributes a message: with the failure's, the DLQ copy of one using
    them all could not be sent, and it was received again until SQS's redrive (without
    why). The failure's are kept, and the message's own that the platform reads."""
    body = "{not an event"
    own = {f"x-producer-{index}": {"DataType": "String", "StringValue": "v"} for index in range(9)}
    async with open_messaging(platform.sqs, SIGNER) as bus:
        await bus.queues.client.send_message(
            QueueUrl=await bus.queues.url(PANEL_SUBMISSIONS.name),
            MessageBody=body,
            MessageAttributes={SIGNATURE: SIGNER.attribute(body)} | own,
        )

    async def dead_lettered() -> list[Any]:
        return list(await dead_letters(platform, PLATFORM_OPERATOR))

    [letter] = await eventually(dead_lettered, timeout=30)
    assert letter["reason"].startswith("invalid event: ")  # the consumer's, at its first receive
    assert letter["receive_count"] == 1
    async with open_messaging(platform.sqs, SIGNER) as bus:
        [held] = await DeadLetterQueue(bus.queues, PANEL_SUBMISSIONS).peek()
    assert SIGNATURE in held.message_attributes


async def test_large_letters_are_replayed_in_batches_sqs_takes(platform: Platform) -> None:
    """Ten letters of 120 KB went back in one SendMessageBatch, past SQS's limit on a batch:
    the replay failed whole, and none of them could be replayed."""
    large = Event(type="x.large", source="urn:test", tenant="acme", data={"pad": "x" * 120_000})
    await send(platform, PANEL_SUBMISSIONS.dlq_name, *[encode_event(large) for _ in range(10)])
    replayed = await platform.operation.post(
        f"{DEAD_LETTERS}/replay", json={"filter": {"type": "x.large"}}, headers=ADMIN
    )
    assert replayed.status_code in (200, 202), replayed.text
    location = f"/api/v1/queues/{PANEL_SUBMISSIONS.name}/actions/{replayed.json()['id']}"

    async def ended() -> dict[str, Any] | None:
        action: dict[str, Any] = (await platform.operation.get(location, headers=ADMIN)).json()
        return action if action["status"] != "running" else None

    action = await eventually(ended, timeout=30)
    assert (action["status"], action["matched"], action["done"]) == ("completed", 10, 10)


async def test_a_whole_dlq_replay_while_one_runs_is_a_409_and_claims_nothing(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """The broker moves a DLQ with one task at a time: a second replay of the whole of it
    moved nothing, yet it answered 200 with every message matched, and its audit row said
    it had replayed them."""
    async with forty_dead_letters_replayed_slowly(tmp_path, sqs_server) as platform:
        replay = f"{DEAD_LETTERS}/replay"
        first = await platform.operation.post(replay, json={"all": True}, headers=PLATFORM_OPERATOR)
        assert first.status_code == 202, first.text
        second = await platform.operation.post(
            replay, json={"all": True}, headers=PLATFORM_OPERATOR
        )
        assert second.status_code == 409, second.text
        assert "being moved back already" in second.json()["detail"]
        audited = await platform.operation.get(
            "/api/v1/audit",
            params={"action": "dead_letters.replay"},
            headers=ADMIN,  # the tenant whose messages the first one moves
        )
        assert [row["changes"]["matched"] for row in audited.json()["items"]] == [40]
