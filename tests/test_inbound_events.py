"""Other services trigger operations by event (boto3 producers on the real queue) and hear
back; every refusal ends in the DLQ with its reason and creates nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest

from idp_common import asyncapi
from idp_common.auth import mint_token
from idp_common.messaging.topology import (
    OPERATION_INBOUND_EVENTS,
    OUTBOUND_EVENTS,
    PANEL_INBOUND_EVENTS,
    PANEL_SUBMISSIONS,
)
from idp_common.settings import SQSSettings
from tests.factories import ADMIN, panel_for, template
from tests.harness import (
    AUTH,
    LocalSQSServer,
    Platform,
    ServedApp,
    auth_headers,
    eventually,
    running_platform,
    token,
)
from tests.test_datasources import Upstream
from tests.test_dynamic_fields import cloud_panel

SOURCE = "urn:orders-svc"
RUN = "operation.execution.requested.external"
SUBMIT = "panel.submission.requested"
OPERATOR_TOKEN = f"Bearer {token(roles=('operator',), subject='orders-svc')}"
PLATFORM_OPERATOR = auth_headers(tenant="ops", roles=("platform-operator",))


class Producer:
    """Another internal service, publishing with boto3 as it would."""

    def __init__(self, sqs: SQSSettings) -> None:
        self.prefix = sqs.queue_prefix
        self.client = boto3.client(
            "sqs",
            endpoint_url=sqs.endpoint_url,
            region_name=sqs.region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def _url(self, queue: str) -> str:
        return str(self.client.get_queue_url(QueueName=self.prefix + queue)["QueueUrl"])

    async def create_queue(self, name: str) -> None:
        await asyncio.to_thread(self.client.create_queue, QueueName=self.prefix + name)

    async def send(
        self,
        queue: str,
        body: str,
        authorization: str | None,
        attributes: dict[str, str] | None = None,
    ) -> None:
        written = attributes or {}
        if authorization is not None:
            written = written | {"authorization": authorization}
        await asyncio.to_thread(
            self.client.send_message,
            QueueUrl=self._url(queue),
            MessageBody=body,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in written.items()
            },
        )

    async def replies(self, queue: str, correlation_id: str) -> list[dict[str, Any]]:
        """The events on ``queue`` answering ``correlation_id`` (others are left there)."""
        response = await asyncio.to_thread(
            self.client.receive_message,
            QueueUrl=self._url(queue),
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=1,
        )
        found = []
        for message in response.get("Messages", []):
            event = json.loads(message["Body"])
            if event.get("correlationid") == correlation_id:
                found.append(event)
                await asyncio.to_thread(
                    self.client.delete_message,
                    QueueUrl=self._url(queue),
                    ReceiptHandle=message["ReceiptHandle"],
                )
        return found


def cloud_event(type_: str, data: Any, tenant: str = "acme", **extensions: str) -> tuple[str, str]:
    """A structured-mode CloudEvent's body, and its id."""
    event_id = str(uuid.uuid4())
    body = {
        "specversion": "1.0",
        "id": event_id,
        "source": SOURCE,
        "type": type_,
        "tenant": tenant,
        "datacontenttype": "application/json",
        "data": data,
    } | extensions
    return json.dumps(body), event_id


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[str]:
    """The API the dynamic fields' options come from."""
    async with ServedApp(Upstream().app) as served:
        yield served.url


@pytest.fixture(scope="module")
async def platform(
    module_tmp_path: Path, sqs_server: LocalSQSServer, upstream: str
) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite", module_tmp_path, sqs_server, allowed_executables=["echo"], with_datasource=True
    ) as running:
        say = await template(running, "say", "echo {{message}}", [{"name": "message"}])
        await panel_for(running, say)
        scale = [{"name": "region"}, {"name": "cluster"}]
        await template(running, "scale", "echo {{region}} {{cluster}}", scale)
        message = [{"name": "message"}]
        await template(running, "dba-only", "echo {{message}}", message, allowed_groups=["dba"])
        yield running


@pytest.fixture(scope="module")
async def cloud(platform: Platform, upstream: str) -> str:
    """A panel whose cluster field's options depend on its region field: its id."""
    assert platform.datasource is not None
    return await cloud_panel(platform.panel, platform.datasource, upstream)


@pytest.fixture(scope="module")
def producer(platform: Platform) -> Producer:
    return Producer(platform.sqs)


async def api_key(platform: Platform) -> tuple[str, str]:
    """A new operator API key of acme: its value and its id."""
    created = await platform.operation.post(
        "/api/v1/api-keys",
        json={"name": f"orders-{uuid.uuid4().hex[:6]}", "roles": ["operator"]},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    return created.json()["key"], created.json()["id"]


async def executions_of(platform: Platform, tenant: str = "acme") -> list[dict[str, Any]]:
    listed = await platform.operation.get(
        "/api/v1/executions", params={"limit": 200}, headers=auth_headers(tenant=tenant)
    )
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


async def submissions_of(platform: Platform) -> list[dict[str, Any]]:
    listed = await platform.panel.get("/api/v1/submissions", params={"limit": 200}, headers=ADMIN)
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


async def reply(producer: Producer, queue: str, correlation_id: str) -> dict[str, Any]:
    async def arrived() -> dict[str, Any] | None:
        found = await producer.replies(queue, correlation_id)
        return found[0] if found else None

    return await eventually(arrived, timeout=30)


async def test_an_api_key_producer_runs_a_template_and_hears_the_end_on_its_reply_queue(
    platform: Platform, producer: Producer
) -> None:
    key, _ = await api_key(platform)
    await producer.create_queue("replies-acme__orders")
    body, event_id = cloud_event(
        RUN,
        {"template": "say", "parameters": {"message": "hello"}},
        replyto="replies-acme__orders",
    )
    await producer.send(OPERATION_INBOUND_EVENTS.name, body, f"ApiKey {key}")

    answer = await reply(producer, "replies-acme__orders", event_id)

    assert answer["type"] == "operation.execution.finished"
    assert answer["tenant"] == "acme"
    assert answer["data"]["status"] == "succeeded"
    assert answer["data"]["exit_code"] == 0
    assert answer["data"]["output_excerpt"].strip() == "hello"
    execution = await platform.operation.get(
        f"/api/v1/executions/{answer['data']['execution_id']}", headers=ADMIN
    )
    assert execution.json()["status"] == "succeeded"


async def test_a_jwt_producer_submits_a_form_with_a_dependent_dynamic_field(
    platform: Platform, producer: Producer, cloud: str
) -> None:
    form = {"panel": cloud, "data": {"region": "eu", "cluster": "eu-2"}}
    body, event_id = cloud_event(SUBMIT, form)
    await producer.send(PANEL_INBOUND_EVENTS.name, body, OPERATOR_TOKEN)

    answer = await reply(producer, OUTBOUND_EVENTS.name, event_id)

    assert answer["type"] == "panel.submission.updated"
    assert answer["data"]["status"] == "succeeded"
    assert answer["data"]["output"].strip() == "eu eu-2"
    submission = await platform.panel.get(
        f"/api/v1/submissions/{answer['data']['submission_id']}", headers=ADMIN
    )
    assert submission.json()["data"] == {"region": "eu", "cluster": "eu-2"}
    assert submission.json()["submitted_by"] == "orders-svc"


async def test_the_same_event_twice_creates_one_execution(
    platform: Platform, producer: Producer
) -> None:
    before = len(await executions_of(platform))
    body, event_id = cloud_event(RUN, {"template": "say", "parameters": {"message": "once"}})
    for _ in range(3):  # redelivered, or sent again by a retrying producer
        await producer.send(OPERATION_INBOUND_EVENTS.name, body, OPERATOR_TOKEN)
    ingested = await platform.operation.post(
        "/api/v1/events",
        content=body,
        headers={"Content-Type": "application/cloudevents+json", "Authorization": OPERATOR_TOKEN},
    )

    await reply(producer, OUTBOUND_EVENTS.name, event_id)
    await asyncio.sleep(1)  # the other copies have been handled by now
    after = await executions_of(platform)
    assert len(after) == before + 1
    assert ingested.status_code == 202, ingested.text
    assert ingested.json()["id"] == after[0]["id"]


async def dead_letter(platform: Platform, queue: str, event_id: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        listed = await platform.operation.get(
            f"/api/v1/queues/{queue}/dead-letters", headers=PLATFORM_OPERATOR
        )
        assert listed.status_code == 200, listed.text
        return next(
            (
                letter
                for letter in listed.json()["items"]
                # An unreadable event's letter shows its body instead.
                if letter["event_id"] == event_id or event_id in (letter["body"] or "")
            ),
            None,
        )

    return await eventually(found, timeout=30)


def forged(alg: str = "HS256") -> str:
    claims = {
        "sub": "mallory",
        "tenant": "acme",
        "roles": ["admin"],
        "exp": 4102444800,
        "iat": 1700000000,
        "aud": "idp",
        "iss": "idp",
    }
    if alg == "none":
        return "Bearer " + jwt.encode(claims, key="", algorithm="none")
    return "Bearer " + jwt.encode(claims, "not-the-platform-secret-at-all-32b", algorithm=alg)


def expired() -> str:
    return mint_token(
        AUTH, subject="orders-svc", tenant="acme", roles=["operator"], ttl_seconds=-60
    )


RUN_SAY = {"template": "say", "parameters": {"message": "x"}}
REFUSED_RUNS: dict[str, tuple[dict[str, Any], str | None, dict[str, str], str]] = {
    "no credential": (RUN_SAY, None, {}, "401"),
    "a forged JWT": (RUN_SAY, forged(), {}, "401"),
    "an unsigned JWT": (RUN_SAY, forged("none"), {}, "401"),
    "another scheme": (RUN_SAY, "Basic YWRtaW46YWRtaW4=", {}, "401"),
    "a key that is no key": (RUN_SAY, "ApiKey idp_made_up", {}, "401"),
    "an expired JWT": (RUN_SAY, f"Bearer {expired()}", {}, "401"),
    "a token without its scheme": (RUN_SAY, token(roles=("operator",)), {}, "401"),
    "a viewer": (RUN_SAY, f"Bearer {token(roles=('viewer',))}", {}, "operator role"),
    "a service identity": (RUN_SAY, f"Bearer {token(tenant='*', roles=('service',))}", {}, "403"),
    "another tenant's credential": (
        RUN_SAY,
        f"Bearer {token(tenant='globex', roles=('admin',))}",
        {},
        "not the credential's",
    ),
    "an unknown template": ({"template": "nope"}, OPERATOR_TOKEN, {}, "no template"),
    "a template its groups forbid": (
        {"template": "dba-only", "parameters": {"message": "x"}},
        OPERATOR_TOKEN,
        {},
        "403",
    ),
    "a parameter the template refuses": (
        {"template": "say", "parameters": {"message": "x; rm -rf /", "extra": 1}},
        OPERATOR_TOKEN,
        {},
        "422",
    ),
    "data off its schema": ({"templat": "say"}, OPERATOR_TOKEN, {}, "does not match"),
    "a lone surrogate, which has no UTF-8": (
        {"template": "say", "parameters": {"message": "a\ud800b"}},
        OPERATOR_TOKEN,
        {},
        "lone surrogate",
    ),
    "another tenant's reply queue": (
        RUN_SAY,
        OPERATOR_TOKEN,
        {"replyto": "replies-globex"},
        "replyto",
    ),
    "a reply queue that looks like the tenant's": (
        RUN_SAY,
        OPERATOR_TOKEN,
        {"replyto": "replies-acmecorp"},
        "replyto",
    ),
    "the platform's own queue as reply queue": (
        RUN_SAY,
        OPERATOR_TOKEN,
        {"replyto": "execution-events"},
        "replyto",
    ),
    "a reply queue that does not exist": (
        RUN_SAY,
        OPERATOR_TOKEN,
        {"replyto": "replies-acme__gone"},
        "does not exist",
    ),
}


@pytest.mark.parametrize("case", REFUSED_RUNS)
async def test_refused_run_requests_end_in_the_dlq_with_the_reason_and_create_nothing(
    platform: Platform, producer: Producer, case: str
) -> None:
    data, authorization, extensions, reason = REFUSED_RUNS[case]
    before = len(await executions_of(platform))
    body, event_id = cloud_event(RUN, data, **extensions)
    await producer.send(OPERATION_INBOUND_EVENTS.name, body, authorization)

    letter = await dead_letter(platform, OPERATION_INBOUND_EVENTS.name, event_id)

    assert letter["reason"].startswith(("refused: ", "invalid event: "))
    assert reason in letter["reason"]
    assert len(await executions_of(platform)) == before


async def test_a_dead_letter_shows_no_value_of_an_unreadable_event_nor_an_invented_time(
    platform: Platform, producer: Producer
) -> None:
    """An event that is no event (its specversion a number) was shown as its raw body, a
    form's password in it; one without a time was shown as happening at each listing."""
    secret = "Sup3rS3cret-acme"
    unreadable_id = str(uuid.uuid4())
    unreadable = {
        "specversion": 1.0,
        "id": unreadable_id,
        "source": SOURCE,
        "type": SUBMIT,
        "tenant": "acme",
        "data": {"panel": "db-reset", "data": {"db_password": secret, "note": "x"}},
    }
    await producer.send(PANEL_INBOUND_EVENTS.name, json.dumps(unreadable), OPERATOR_TOKEN)
    letter = await dead_letter(platform, PANEL_INBOUND_EVENTS.name, unreadable_id)
    assert secret not in json.dumps(letter)
    assert json.loads(letter["body"])["data"] == {
        "panel": "***",
        "data": {"db_password": "***", "note": "***"},
    }
    timeless, timeless_id = cloud_event(RUN, {"template": "no-such-template"})
    await producer.send(OPERATION_INBOUND_EVENTS.name, timeless, OPERATOR_TOKEN)
    first = await dead_letter(platform, OPERATION_INBOUND_EVENTS.name, timeless_id)
    again = await dead_letter(platform, OPERATION_INBOUND_EVENTS.name, timeless_id)
    assert (first["time"], again["time"]) == (None, None)


async def test_a_producers_dead_letter_is_its_credentials_tenants_not_its_bodys(
    platform: Platform, producer: Producer
) -> None:
    """globex's credential on an event saying tenant acme (refused), with the dead letter's
    tenant attribute forged too: it was listed as acme's, for acme's admin to read and
    replay. A letter the credential admitted is its tenant's."""
    acme_admin = auth_headers(roles=("admin",))
    globex = f"Bearer {token(tenant='globex', roles=('operator',), subject='intruder')}"
    planted, planted_id = cloud_event(RUN, RUN_SAY)
    forgery = {"idp.admitted_tenant": "acme", "idp.failure_reason": "fine"}
    await producer.send(OPERATION_INBOUND_EVENTS.name, planted, globex, forgery)
    admitted, admitted_id = cloud_event(RUN, {"template": "no-such-template"})
    await producer.send(OPERATION_INBOUND_EVENTS.name, admitted, OPERATOR_TOKEN)
    # Admitted by its credential, then refused for what it asks: still acme's to read.
    platforms_queue, platforms_queue_id = cloud_event(RUN, RUN_SAY, replyto="operation-jobs")
    await producer.send(OPERATION_INBOUND_EVENTS.name, platforms_queue, OPERATOR_TOKEN)

    assert (await dead_letter(platform, OPERATION_INBOUND_EVENTS.name, planted_id))[
        "tenant"
    ] is None
    for acmes in (admitted_id, platforms_queue_id):
        letter = await dead_letter(platform, OPERATION_INBOUND_EVENTS.name, acmes)
        assert letter["tenant"] == "acme", letter
    for headers in (acme_admin, auth_headers(tenant="globex", roles=("admin",))):
        listed = await platform.operation.get(
            f"/api/v1/queues/{OPERATION_INBOUND_EVENTS.name}/dead-letters", headers=headers
        )
        shown = [letter["event_id"] for letter in listed.json()["items"]]
        assert planted_id not in shown
        assert (admitted_id in shown) == (headers is acme_admin)


async def test_a_letter_written_straight_into_a_dlq_is_no_tenants(
    platform: Platform, producer: Producer
) -> None:
    """Whoever can write a queue can write its DLQ: a letter with a reason and acme's
    tenant attribute forged (or none, naming acme in its body) was listed for acme's
    admin to read and replay. Only a letter the platform signed is a tenant's."""
    acme_admin = auth_headers(roles=("admin",))
    forgery = {
        "idp.admitted_tenant": "acme",
        "idp.failure_reason": "timed out: replay it",
        "idp.failure_signature": "0" * 64,
    }
    written, written_id = cloud_event(RUN, RUN_SAY)
    await producer.send(OPERATION_INBOUND_EVENTS.dlq_name, written, OPERATOR_TOKEN, forgery)
    unsigned, unsigned_id = cloud_event(SUBMIT, {"panel": "say", "data": {}})
    await producer.send(PANEL_SUBMISSIONS.dlq_name, unsigned, None)

    for queue, event_id in (
        (OPERATION_INBOUND_EVENTS, written_id),
        (PANEL_SUBMISSIONS, unsigned_id),
    ):
        assert (await dead_letter(platform, queue.name, event_id))["tenant"] is None
        listed = await platform.operation.get(
            f"/api/v1/queues/{queue.name}/dead-letters", headers=acme_admin
        )
        assert event_id not in [letter["event_id"] for letter in listed.json()["items"]]


@pytest.mark.parametrize(
    ("queue", "type_", "data", "written_twice"),
    [
        (OPERATION_INBOUND_EVENTS.name, RUN, RUN_SAY, "data.parameters.message"),
        (
            PANEL_INBOUND_EVENTS.name,
            SUBMIT,
            {"panel": "say", "data": {"message": "hi"}},
            "data.data.message",
        ),
    ],
)
async def test_a_request_naming_a_key_twice_ends_in_the_dlq_and_creates_nothing(
    platform: Platform,
    producer: Producer,
    queue: str,
    type_: str,
    data: dict[str, Any],
    written_twice: str,
) -> None:
    """Which of the two values a parser keeps is the parser's choice; the request is refused."""
    before = len(await executions_of(platform)), len(await submissions_of(platform))
    body, event_id = cloud_event(type_, data)
    message = json.dumps(data["parameters" if type_ == RUN else "data"])[1:-1]
    twice = body.replace(message, f'{message}, "\\u006dessage": "; id"')
    assert twice != body
    await producer.send(queue, twice, OPERATOR_TOKEN)

    letter = await dead_letter(platform, queue, event_id)

    assert letter["reason"] == f"invalid event: {written_twice} is named twice in one object"
    assert (len(await executions_of(platform)), len(await submissions_of(platform))) == before


@pytest.mark.parametrize(
    ("key", "shown"), [("\\u0001", "\\x01"), ("\\ud800", "\\ud800"), ("\\uffff", "\\uffff")]
)
async def test_a_dead_letter_holding_what_no_answer_can_carry_is_listed_escaped(
    platform: Platform, producer: Producer, key: str, shown: str
) -> None:
    """A key named twice may hold what SQS refuses in the reason's attribute (the copy to
    the DLQ was refused; the message came there without its reason after its last
    receive), or a lone surrogate, which no JSON answer can encode: one such letter made
    every listing of its DLQ a 500."""
    body, event_id = cloud_event(RUN, RUN_SAY)
    message = json.dumps(RUN_SAY["parameters"])[1:-1]
    twice = body.replace(message, f'{message}, "m{key}": 1, "m{key}": 2')
    await producer.send(OPERATION_INBOUND_EVENTS.name, twice, OPERATOR_TOKEN)

    letter = await dead_letter(platform, OPERATION_INBOUND_EVENTS.name, event_id)

    assert letter["reason"] == (
        f"invalid event: data.parameters.m{shown} is named twice in one object"
    )


async def test_a_dead_letter_nested_hundreds_deep_is_listed(
    platform: Platform, producer: Producer
) -> None:
    """Its data was read with recursion: every listing of the DLQ was a 500."""
    deep = "[" * 700 + "]" * 700
    body, event_id = cloud_event(RUN, RUN_SAY)
    nested = body.replace('"template"', f'"deep": {deep}, "tenant\\ud800": 1, "template"', 1)
    await producer.send(OPERATION_INBOUND_EVENTS.name, nested, OPERATOR_TOKEN)

    letter = await dead_letter(platform, OPERATION_INBOUND_EVENTS.name, event_id)

    shown = letter["data"]["deep"]
    for _ in range(31):
        [shown] = shown
    assert shown == "[nested too deeply]"
    assert letter["data"]["tenant\\ud800"] == 1


@pytest.mark.parametrize("attribute", ["tenant", "subject"])
async def test_an_event_whose_tenant_or_subject_is_not_printable_is_invalid(
    platform: Platform, producer: Producer, attribute: str
) -> None:
    """Operators saw them as they came: a tenant of ``\\ud800`` made the listing a 500."""
    body, event_id = cloud_event(RUN, RUN_SAY, **{attribute: "acme\ud800"})
    await producer.send(OPERATION_INBOUND_EVENTS.name, body, OPERATOR_TOKEN)
    letter = await dead_letter(platform, OPERATION_INBOUND_EVENTS.name, event_id)
    assert letter["reason"].startswith(f"invalid event: the {attribute} ")
    assert "must be printable text" in letter["reason"]


async def test_a_revoked_api_key_is_refused(platform: Platform, producer: Producer) -> None:
    key, key_id = await api_key(platform)
    revoked = await platform.operation.delete(f"/api/v1/api-keys/{key_id}", headers=ADMIN)
    assert revoked.status_code == 204
    body, event_id = cloud_event(RUN, RUN_SAY)
    await producer.send(OPERATION_INBOUND_EVENTS.name, body, f"ApiKey {key}")

    letter = await dead_letter(platform, OPERATION_INBOUND_EVENTS.name, event_id)

    assert "401" in letter["reason"]


REFUSED_SUBMISSIONS: dict[str, tuple[Any, str]] = {
    "an unknown panel": ({"panel": "nope", "data": {"message": "x"}}, "404"),
    "invalid data": ({"panel": "say", "data": {"messag": "x"}}, "422"),
    "a value its source does not offer": (
        {"panel": "<cloud>", "data": {"region": "eu", "cluster": "us-1"}},
        "cluster",
    ),
    "a NUL byte": ({"panel": "say", "data": {"message": "a\x00b"}}, "NUL"),
    "a lone surrogate": ({"panel": "say", "data": {"message": "a\udfffb"}}, "lone surrogate"),
}


@pytest.mark.parametrize("case", REFUSED_SUBMISSIONS)
async def test_refused_submission_requests_end_in_the_dlq_and_create_nothing(
    platform: Platform, producer: Producer, cloud: str, case: str
) -> None:
    data, reason = REFUSED_SUBMISSIONS[case]
    if data["panel"] == "<cloud>":
        data = data | {"panel": cloud}
    before = len(await submissions_of(platform))
    body, event_id = cloud_event(SUBMIT, data)
    await producer.send(PANEL_INBOUND_EVENTS.name, body, OPERATOR_TOKEN)

    letter = await dead_letter(platform, PANEL_INBOUND_EVENTS.name, event_id)

    assert reason in letter["reason"]
    assert len(await submissions_of(platform)) == before
    # A secret field's value may be among them, and only its panel knows which one is.
    assert letter["data"]["data"] == dict.fromkeys(data["data"], "***")


async def test_an_event_on_the_wrong_services_queue_is_refused_naming_what_it_takes(
    platform: Platform, producer: Producer
) -> None:
    body, event_id = cloud_event(SUBMIT, {"panel": "say", "data": {"message": "x"}})
    await producer.send(OPERATION_INBOUND_EVENTS.name, body, OPERATOR_TOKEN)
    internal, internal_id = cloud_event("operation.execution.requested", {"argv": ["id"]})
    await producer.send(PANEL_INBOUND_EVENTS.name, internal, OPERATOR_TOKEN)

    wrong = await dead_letter(platform, OPERATION_INBOUND_EVENTS.name, event_id)
    internal_letter = await dead_letter(platform, PANEL_INBOUND_EVENTS.name, internal_id)

    assert RUN in wrong["reason"]
    assert SUBMIT in internal_letter["reason"]


async def test_a_malformed_body_ends_in_the_dlq(platform: Platform, producer: Producer) -> None:
    marker = uuid.uuid4().hex
    await producer.send(OPERATION_INBOUND_EVENTS.name, "{not json " + marker, OPERATOR_TOKEN)

    async def found() -> dict[str, Any] | None:
        listed = await platform.operation.get(
            f"/api/v1/queues/{OPERATION_INBOUND_EVENTS.name}/dead-letters",
            headers=PLATFORM_OPERATOR,
        )
        return next((d for d in listed.json()["items"] if marker in (d["body"] or "")), None)

    letter = await eventually(found, timeout=30)
    assert letter["reason"].startswith("invalid event: ")


async def test_http_ingestion_in_structured_and_binary_modes(platform: Platform) -> None:
    body, event_id = cloud_event(RUN, {"template": "say", "parameters": {"message": "s"}})
    structured = await platform.operation.post(
        "/api/v1/events",
        content=body,
        headers={"Content-Type": "application/cloudevents+json", "Authorization": OPERATOR_TOKEN},
    )
    binary_id = str(uuid.uuid4())
    binary = await platform.panel.post(
        "/api/v1/events",
        # No Content-Type: a binary event's data is then JSON (CloudEvents' HTTP binding).
        content=json.dumps({"panel": "say", "data": {"message": "b"}}),
        headers={
            "ce-specversion": "1.0",
            "ce-id": binary_id,
            "ce-source": SOURCE,
            "ce-type": SUBMIT,
            "ce-tenant": "acme",
            "Authorization": OPERATOR_TOKEN,
        },
    )

    assert structured.status_code == 202, structured.text
    assert structured.json()["event_id"] == event_id
    assert structured.headers["Location"] == f"/api/v1/executions/{structured.json()['id']}"
    assert binary.status_code == 202, binary.text
    submission = await platform.panel.get(binary.headers["Location"], headers=ADMIN)
    assert submission.json()["data"] == {"message": "b"}


HTTP_REFUSALS: dict[str, tuple[dict[str, str], str, int, str]] = {
    "no credential": ({}, json.dumps(RUN_SAY), 401, ""),
    "not an event": ({"Authorization": OPERATOR_TOKEN}, "{nope", 422, "body"),
    "nested too deeply": (
        {"Authorization": OPERATOR_TOKEN},
        "[" * 50_000 + "]" * 50_000,
        422,
        "body",
    ),
    "the other service's type": ({"Authorization": OPERATOR_TOKEN}, "<submit>", 422, "type"),
    "data off its schema": ({"Authorization": OPERATOR_TOKEN}, "<bad data>", 422, "data"),
    "a viewer": ({"Authorization": f"Bearer {token(roles=('viewer',))}"}, "<run>", 403, ""),
}


@pytest.mark.parametrize("case", HTTP_REFUSALS)
async def test_http_ingestion_refuses_as_the_api_does(platform: Platform, case: str) -> None:
    headers, body, status, field = HTTP_REFUSALS[case]
    events = {
        "<submit>": cloud_event(SUBMIT, {"panel": "say", "data": {}})[0],
        "<bad data>": cloud_event(RUN, {"template": "say", "surprise": 1})[0],
        "<run>": cloud_event(RUN, RUN_SAY)[0],
    }
    response = await platform.operation.post(
        "/api/v1/events",
        content=events.get(body, body),
        headers=headers | {"Content-Type": "application/cloudevents+json"},
    )

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field:
        assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_the_services_that_own_events_serve_the_asyncapi_document(
    platform: Platform,
) -> None:
    for service in (platform.panel, platform.operation):
        served = await service.get("/asyncapi.json")
        assert served.status_code == 200
        assert served.json() == asyncapi.document()


async def test_a_credential_anywhere_but_the_authorization_attribute_is_no_credential(
    platform: Platform, producer: Producer
) -> None:
    """In the event itself, under another attribute name, or as a binary attribute."""
    body, in_body = cloud_event(RUN, RUN_SAY, authorization=OPERATOR_TOKEN)
    await producer.send(OPERATION_INBOUND_EVENTS.name, body, None)
    other, other_name = cloud_event(RUN, RUN_SAY)
    url = producer._url(OPERATION_INBOUND_EVENTS.name)
    await asyncio.to_thread(
        producer.client.send_message,
        QueueUrl=url,
        MessageBody=other,
        MessageAttributes={"Authorization ": {"DataType": "String", "StringValue": OPERATOR_TOKEN}},
    )
    binary, as_binary = cloud_event(RUN, RUN_SAY)
    await asyncio.to_thread(
        producer.client.send_message,
        QueueUrl=url,
        MessageBody=binary,
        MessageAttributes={
            "authorization": {"DataType": "Binary", "BinaryValue": OPERATOR_TOKEN.encode()}
        },
    )

    for event_id in (in_body, other_name, as_binary):
        letter = await dead_letter(platform, OPERATION_INBOUND_EVENTS.name, event_id)
        assert "401" in letter["reason"]


async def test_the_scheme_is_read_in_any_case_as_http_reads_it(
    platform: Platform, producer: Producer
) -> None:
    key, _ = await api_key(platform)
    body, event_id = cloud_event(RUN, {"template": "say", "parameters": {"message": "case"}})
    await producer.send(OPERATION_INBOUND_EVENTS.name, body, f"apikey   {key}")
    http = await platform.operation.get(
        "/api/v1/executions", headers={"Authorization": f"APIKEY {key}"}
    )
    both = await platform.operation.get(
        "/api/v1/executions", headers={"Authorization": OPERATOR_TOKEN, "X-API-Key": key}
    )

    assert (await reply(producer, OUTBOUND_EVENTS.name, event_id))["data"]["status"] == "succeeded"
    assert http.status_code == 200
    assert both.status_code == 401


async def test_a_refused_event_replayed_after_its_cause_is_fixed_runs_once(
    platform: Platform, producer: Producer
) -> None:
    slug = f"later-{uuid.uuid4().hex[:6]}"
    body, event_id = cloud_event(RUN, {"template": slug, "parameters": {"message": "late"}})
    await producer.send(OPERATION_INBOUND_EVENTS.name, body, OPERATOR_TOKEN)
    letter = await dead_letter(platform, OPERATION_INBOUND_EVENTS.name, event_id)
    await template(platform, slug, "echo {{message}}", [{"name": "message"}])

    replayed = await platform.operation.post(
        f"/api/v1/queues/{OPERATION_INBOUND_EVENTS.name}/dead-letters/replay",
        json={"message_ids": [letter["message_id"]]},
        headers=ADMIN,
    )

    assert replayed.status_code == 200, replayed.text
    answer = await reply(producer, OUTBOUND_EVENTS.name, event_id)
    assert answer["data"]["status"] == "succeeded"
    assert answer["data"]["template"] == slug
