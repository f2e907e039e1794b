"""An Idempotency-Key belongs to the principal who sent it: another principal of the same
tenant reusing it gets their own execution or submission, never the first one's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import panel_for, template
from tests.harness import (
    LocalSQSServer,
    Platform,
    assert_field_refused,
    auth_headers,
    running_platform,
)

ADMIN = auth_headers(roles=("admin",))
ALICE = auth_headers(subject="alice", roles=("operator",))
BOB = auth_headers(subject="bob", roles=("operator",))
ALICE_ELSEWHERE = auth_headers(tenant="globex", subject="alice", roles=("operator",))


@pytest.fixture(scope="module")
async def platform(
    backend: str, module_tmp_path: Path, sqs_server: LocalSQSServer
) -> AsyncIterator[Platform]:
    """Shared by the module's tests: each sends its own Idempotency-Key."""
    async with running_platform(backend, module_tmp_path, sqs_server, with_worker=False) as running:
        for headers in (ADMIN, auth_headers(tenant="globex", roles=("admin",))):
            say = await template(running, "say", "echo {{m}}", [{"name": "m"}], headers)
            await panel_for(running, say, headers)
        yield running


Send = Callable[[dict[str, str], str], Awaitable[httpx.Response]]


def intakes(platform: Platform) -> dict[str, Send]:
    async def execution(headers: dict[str, str], key: str) -> httpx.Response:
        return await platform.operation.post(
            "/api/v1/executions",
            json={"template": "say", "parameters": {"m": "hi"}},
            headers=headers | {"Idempotency-Key": key},
        )

    async def submission(headers: dict[str, str], key: str) -> httpx.Response:
        return await platform.panel.post(
            "/api/v1/panels/say/submissions",
            json={"data": {"m": "hi"}},
            headers=headers | {"Idempotency-Key": key},
        )

    return {"executions": execution, "submissions": submission}


@pytest.mark.parametrize("intake", ["executions", "submissions"])
async def test_a_key_is_the_senders_own(platform: Platform, intake: str) -> None:
    send = intakes(platform)[intake]
    key = f"k-{uuid.uuid4()}"
    alice = await send(ALICE, key)
    bob = await send(BOB, key)
    elsewhere = await send(ALICE_ELSEWHERE, key)
    assert alice.status_code == bob.status_code == elsewhere.status_code == 202, bob.text
    ids = {alice.json()["id"], bob.json()["id"], elsewhere.json()["id"]}
    assert len(ids) == 3
    assert bob.json()["submitted_by"] == "bob"
    for headers, first in ((ALICE, alice), (BOB, bob), (ALICE_ELSEWHERE, elsewhere)):
        again = await send(headers, key)
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("intake", ["executions", "submissions"])
async def test_an_empty_or_overlong_key_is_refused_naming_the_header(
    platform: Platform, intake: str
) -> None:
    """An empty key is a client's bug, not a key: a retry sending it would otherwise find
    every other empty-keyed request's result."""
    for key in ("", "k" * 201):
        refused = await intakes(platform)[intake](ALICE, key)
        assert refused.status_code == 422, (key, refused.text)
        assert [error["field"] for error in refused.json()["errors"]] == ["Idempotency-Key"]


@pytest.mark.parametrize(
    ("intake", "path", "body"),
    [
        ("executions", "/api/v1/executions", {"template": "say", "parameters": {"m": "hi"}}),
        ("submissions", "/api/v1/panels/say/submissions", {"data": {"m": "hi"}}),
    ],
)
async def test_a_key_sent_twice_is_refused_and_stores_nothing(
    platform: Platform, intake: str, path: str, body: dict[str, Any]
) -> None:
    """The first was taken: a retry with the other key, or with both joined by a comma (as
    an intermediary may send them), made a second run."""
    client = platform.operation if intake == "executions" else platform.panel
    first, second = f"k-{uuid.uuid4()}", f"k-{uuid.uuid4()}"
    keys = [("Idempotency-Key", first), ("Idempotency-Key", second)]
    refused = await client.post(path, json=body, headers=[*ALICE.items(), *keys])
    assert_field_refused(refused, "Idempotency-Key", "repeated")
    created = await intakes(platform)[intake](ALICE, first)
    assert created.status_code == 202, created.text
    assert "idempotent-replayed" not in created.headers


@pytest.mark.parametrize("intake", ["executions", "submissions"])
async def test_two_principals_sending_one_key_at_once_each_get_their_own(
    platform: Platform, intake: str
) -> None:
    send = intakes(platform)[intake]
    key = f"k-{uuid.uuid4()}"
    answers = await asyncio.gather(*(send(h, key) for h in (ALICE, BOB, ALICE, BOB)))
    assert [answer.status_code for answer in answers] == [202] * 4
    by_sender = {answer.json()["submitted_by"]: answer.json()["id"] for answer in answers}
    assert set(by_sender) == {"alice", "bob"}
    assert {answer.json()["id"] for answer in answers} == set(by_sender.values())


@pytest.mark.parametrize("intake", ["executions", "submissions"])
async def test_each_api_key_is_a_principal_of_its_own(platform: Platform, intake: str) -> None:
    """Two service accounts of a tenant, and a person, reusing one key: three objects."""
    keys = []
    for name in ("bot-a", "bot-b"):
        issued = await platform.operation.post(
            "/api/v1/api-keys", json={"name": name, "roles": ["operator"]}, headers=ADMIN
        )
        assert issued.status_code == 201, issued.text
        keys.append({"X-API-Key": issued.json()["key"]})
    send = intakes(platform)[intake]
    key = f"k-{uuid.uuid4()}"
    first = [await send(headers, key) for headers in (*keys, ALICE)]
    assert [answer.status_code for answer in first] == [202] * 3, [a.text for a in first]
    assert len({answer.json()["id"] for answer in first}) == 3
    for headers, earlier in zip((*keys, ALICE), first, strict=True):
        again = await send(headers, key)
        assert again.json()["id"] == earlier.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("intake", ["executions", "submissions"])
async def test_creates_sent_together_from_two_tenants_each_find_their_own(
    platform: Platform, intake: str
) -> None:
    """Creates that arrive together share their lookups (``idp_common.intake``), but never
    across tenants: each tenant's "say" is its own, and an unknown one fails alone."""
    own, path, field = {
        "executions": (platform.operation, "/api/v1/templates/say", "template_id"),
        "submissions": (platform.panel, "/api/v1/panels/say", "panel_id"),
    }[intake]
    ids = {}
    for tenant, headers in (("acme", ADMIN), ("globex", auth_headers(tenant="globex"))):
        ids[tenant] = (await own.get(path, headers=headers)).json()["id"]
    send = intakes(platform)[intake]
    senders = [ALICE, ALICE_ELSEWHERE] * 4
    answers = await asyncio.gather(
        *(send(headers, f"k-{uuid.uuid4()}") for headers in senders),
        own.post(
            "/api/v1/executions" if intake == "executions" else "/api/v1/panels/nope/submissions",
            json={"template": "nope"} if intake == "executions" else {"data": {}},
            headers=ALICE,
        ),
    )
    *created, unknown = answers
    assert [answer.status_code for answer in created] == [202] * len(senders)
    assert [answer.json()[field] for answer in created] == [
        ids["acme" if headers is ALICE else "globex"] for headers in senders
    ]
    assert unknown.status_code in (404, 422), unknown.text
