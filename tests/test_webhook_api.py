"""Webhooks through the platform's own processes (panel-svc, operation-svc, a worker, the
queue), as an admin uses them and as an attacker tries them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from operation_svc.config import WebhookSettings
from tests.factories import panel_for, template
from tests.harness import LocalSQSServer, Platform, auth_headers, eventually, running_platform
from tests.operation_svc.webhook_receiver import Receiver

ADMIN = auth_headers(roles=("admin",))
OTHER_TENANT = auth_headers(tenant="globex", roles=("admin",))
FINISHED = "operation.execution.finished"


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    receiving = Receiver()
    async with receiving.app() as app:
        yield receiving, f"{app.url}/hook"


@pytest.fixture(scope="module")
async def platform(module_tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    webhooks = WebhookSettings(allowed_hosts=["127.0.0.1"], poll_seconds=0.05)
    async with running_platform(
        "sqlite",
        module_tmp_path,
        sqs_server,
        allowed_executables=["echo"],
        operation={"webhook": webhooks},
    ) as running:
        yield running


async def subscribe(platform: Platform, url: str, **fields: Any) -> dict[str, Any]:
    body = {"url": url, "event_types": [FINISHED]} | fields
    response = await platform.operation.post("/api/v1/webhooks", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_submission_s_execution_reaches_the_receiver_signed(
    platform: Platform, receiver: tuple[Receiver, str]
) -> None:
    receiving, url = receiver
    hello = await template(platform, "hello-hook", "echo hello", [])
    await template(platform, "unwatched", "echo nothing", [])
    hook = await subscribe(
        platform,
        url,
        event_types=[FINISHED, "panel.submission.updated", "operation.approval.decided"],
        templates=["hello-hook"],
    )
    panel = await panel_for(platform, hello)
    submitted = await platform.panel.post(
        f"/api/v1/panels/{panel['id']}/submissions", json={"data": {}}, headers=ADMIN
    )
    assert submitted.status_code == 202, submitted.text

    def finished() -> list[dict[str, Any]]:
        events = [Webhook(hook["secret"]).verify(r.body, r.headers) for r in receiving.received]
        return [event for event in events if event["type"] == FINISHED]

    async def delivered() -> list[dict[str, Any]]:
        return finished()

    [event] = await eventually(delivered)
    assert event["data"]["status"] == "succeeded"
    assert event["data"]["template"] == "hello-hook"
    assert event["data"]["output_excerpt"] == "hello\n"
    assert event["data"]["submission_id"] == submitted.json()["id"]
    assert event["data"]["panel_id"] == panel["id"]

    async def listed() -> list[dict[str, Any]]:
        response = await platform.operation.get(
            f"/api/v1/webhooks/{hook['id']}/deliveries", headers=ADMIN
        )
        return list(response.json()["items"])

    async def all_delivered() -> list[dict[str, Any]] | None:
        items = await listed()
        done = all(d["status"] == "succeeded" for d in items)
        return items if done and FINISHED in {d["event_type"] for d in items} else None

    deliveries = await eventually(all_delivered)
    types = sorted(d["event_type"] for d in deliveries)
    assert types[0] == FINISHED
    assert set(types[1:]) == {"panel.submission.updated"}
    attempt = deliveries[-1]["attempt_log"][0]
    assert (attempt["status_code"], attempt["outcome"]) == (200, "succeeded")
    assert attempt["response_excerpt"] == "receiver says 200"

    resent = await platform.operation.post(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{deliveries[0]['id']}/resend", headers=ADMIN
    )
    assert resent.status_code == 202, resent.text

    async def resent_once() -> list[dict[str, Any]] | None:
        [again] = [d for d in await listed() if d["id"] == deliveries[0]["id"]]
        log = again["attempt_log"]
        return log if len(log) == 2 else None

    log = await eventually(resent_once)
    assert [(a["number"], a["trigger"]) for a in log] == [(1, "automatic"), (2, "manual")]
    failed = await platform.operation.get(
        f"/api/v1/webhooks/{hook['id']}/deliveries", params={"status": "failed"}, headers=ADMIN
    )
    assert failed.json()["items"] == []
    deleted = await platform.operation.delete(f"/api/v1/webhooks/{hook['id']}", headers=ADMIN)
    assert deleted.status_code == 204  # with its deliveries and their attempts


async def test_another_tenants_webhook_is_not_found(
    platform: Platform, receiver: tuple[Receiver, str]
) -> None:
    hook = await subscribe(platform, receiver[1])
    path = f"/api/v1/webhooks/{hook['id']}"
    missing = "00000000-0000-0000-0000-000000000001"
    for method, url, body in [
        ("GET", path, None),
        ("PATCH", path, {"active": False}),
        ("DELETE", path, None),
        ("POST", f"{path}/rotate-secret", None),
        ("GET", f"{path}/deliveries", None),
        ("POST", f"{path}/deliveries/{missing}/resend", None),
    ]:
        response = await platform.operation.request(method, url, json=body, headers=OTHER_TENANT)
        assert response.status_code == 404, (method, url, response.text)
    listed = await platform.operation.get("/api/v1/webhooks", headers=OTHER_TENANT)
    assert listed.json()["items"] == []
    assert (await platform.operation.get(path, headers=ADMIN)).json()["active"] is True


async def test_a_panel_filter_names_a_panel_of_the_tenant(
    platform: Platform, receiver: tuple[Receiver, str]
) -> None:
    """Another tenant's panel, or no panel at all, was kept as a filter that matched nothing."""
    theirs = await panel_for(
        platform,
        await template(platform, "their-hook", "echo theirs", [], headers=OTHER_TENANT),
        headers=OTHER_TENANT,
    )
    ours = await panel_for(platform, await template(platform, "our-hook", "echo ours", []))
    missing = "00000000-0000-0000-0000-000000000002"
    hook = await subscribe(platform, receiver[1], panel_ids=[ours["id"]])
    path = f"/api/v1/webhooks/{hook['id']}"
    for method, url in [("POST", "/api/v1/webhooks"), ("PATCH", path)]:
        for panel in (theirs["id"], missing):
            body = {"url": receiver[1], "event_types": [FINISHED], "panel_ids": [ours["id"], panel]}
            response = await platform.operation.request(method, url, json=body, headers=ADMIN)
            assert response.status_code == 422, (method, response.text)
            [error] = response.json()["errors"]
            assert (error["field"], error["code"]) == ("panel_ids", "unknown_panel")
            assert ours["id"] not in error["message"]
    kept = await platform.operation.get(path, headers=ADMIN)
    assert kept.json()["panel_ids"] == [ours["id"]]


@pytest.mark.parametrize("roles", [("viewer",), ("operator",)])
async def test_only_admins_manage_webhooks(
    platform: Platform, receiver: tuple[Receiver, str], roles: tuple[Any, ...]
) -> None:
    response = await platform.operation.post(
        "/api/v1/webhooks",
        json={"url": receiver[1], "event_types": [FINISHED]},
        headers=auth_headers(roles=roles),
    )
    assert response.status_code == 403, response.text
    listed = await platform.operation.get("/api/v1/webhooks", headers=auth_headers(roles=roles))
    assert listed.status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "http://127.1/hook",
        "http://0x7f000001/hook",
        "http://2130706433/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::1]:8080/hook",
        "http://localhost./hook",
        "http://LOCALHOST/hook",
        "http://app.localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "http://[fd00::1]/hook",
        "http://192.0.0.8/hook",  # global to Python before 3.11.10 (CVE-2024-4032)
        "http://[::127.0.0.1]/hook",
        "http://[64:ff9b:1::7f00:1]/hook",
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "gopher://example.com/",
        "javascript:alert(1)",
        "//example.com/hook",
        "https://user:pass@example.com/hook",
        # No call could use them: refused when saved, not at every delivery.
        "http://xn--/hook",
        "http://example.com:99999/hook",
        "http://example.com:0/hook",
        "http://[::1/hook",
        " https://hooks.example.com/in",
        "https://hooks.example .com/in",
        "https://hooks.example.com/in\n",
        "https://hooks.example.com/\u202ein",
        "https://hooks.example.com/in\u2028",  # a line separator
        "https://hooks\u3000example.com/in",  # an ideographic space
        "\ufeffhttps://hooks.example.com/in",  # a byte order mark
        # The host is the metadata address for every parser here, whatever the text says
        # first (127.0.0.1 is this test's allowlisted receiver).
        "http://hooks.example.com\\@169.254.169.254/hook",
        "http://169.254.169.254#@hooks.example.com/hook",
        "http://hooks.example.com%2F@169.254.169.254/hook",
    ],
)
async def test_internal_addresses_and_other_schemes_are_refused_naming_url(
    platform: Platform, url: str
) -> None:
    response = await platform.operation.post(
        "/api/v1/webhooks", json={"url": url, "event_types": [FINISHED]}, headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["url"]


async def test_a_change_to_an_internal_address_is_refused_naming_url(
    platform: Platform, receiver: tuple[Receiver, str]
) -> None:
    hook = await subscribe(platform, receiver[1])
    response = await platform.operation.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"url": "http://0177.0.0.1/"}, headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["url"]


async def test_the_secret_is_shown_only_when_created_or_rotated(
    platform: Platform, receiver: tuple[Receiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    hook = await subscribe(platform, receiver[1], description="ops channel")
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    assert len(secret) > 40
    path = f"/api/v1/webhooks/{hook['id']}"
    rotated = await platform.operation.post(f"{path}/rotate-secret", headers=ADMIN)
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != secret
    answers = [
        await platform.operation.get(path, headers=ADMIN),
        await platform.operation.get("/api/v1/webhooks", headers=ADMIN),
        await platform.operation.patch(path, json={"description": "x"}, headers=ADMIN),
        await platform.operation.get("/api/v1/audit", headers=ADMIN),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert 'secret"' not in answer.text.replace("rotate_secret", "")
        assert secret not in answer.text
        assert new_secret not in answer.text
    assert secret not in caplog.text
    assert new_secret not in caplog.text
    actions = [
        row["action"] for row in answers[-1].json()["items"] if row["object_id"] == hook["id"]
    ]
    assert actions == ["webhook.update", "webhook.rotate_secret", "webhook.create"]
    deleted = await platform.operation.delete(path, headers=ADMIN)
    assert deleted.status_code == 204
    assert (await platform.operation.get(path, headers=ADMIN)).status_code == 404


async def test_a_credential_in_the_url_s_query_is_shown_masked_and_kept_when_sent_back(
    platform: Platform, receiver: tuple[Receiver, str]
) -> None:
    receiving, url = receiver
    await template(platform, "token-hook", "echo token", [])
    hook = await subscribe(
        platform, f"{url}?channel=ops&token=s3cr3t-value", templates=["token-hook"]
    )
    path = f"/api/v1/webhooks/{hook['id']}"
    shown = (await platform.operation.get(path, headers=ADMIN)).json()["url"]
    assert shown == f"{url}?channel=ops&token=***"
    changed = await platform.operation.patch(
        path, json={"url": shown.replace("ops", "dev"), "description": "x"}, headers=ADMIN
    )
    assert changed.status_code == 200, changed.text
    answers = [
        hook,
        changed.json(),
        (await platform.operation.get("/api/v1/webhooks", headers=ADMIN)).json(),
    ]
    assert all("s3cr3t-value" not in str(answer) for answer in answers)
    ran = await platform.operation.post(
        "/api/v1/executions", json={"template": "token-hook"}, headers=ADMIN
    )
    assert ran.status_code == 202, ran.text

    async def delivered() -> list[str]:  # other tests' subscriptions, unfiltered, get it too
        return [
            r.query for r in receiving.received if r.query and ran.json()["id"].encode() in r.body
        ]

    assert await eventually(delivered) == ["channel=dev&token=s3cr3t-value"]
    # The mask sent to another host (or port) would have sent the credential there.
    port = urlsplit(url).port or 80
    moved = shown.replace(f":{port}/", f":{port + 1}/")
    refused = await platform.operation.patch(path, json={"url": moved}, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == ["url"]


async def test_approval_requests_and_decisions_reach_the_receiver(
    platform: Platform, receiver: tuple[Receiver, str]
) -> None:
    receiving, url = receiver
    policy = {"required": 1, "approver_roles": ["admin"], "expires_after_seconds": 600}
    await template(platform, "guarded-hook", "echo guarded", [], approval=policy)
    approvals = ["operation.approval.requested", "operation.approval.decided"]
    hook = await subscribe(platform, url, event_types=approvals, templates=["guarded-hook"])
    requester = auth_headers(roles=("operator",), subject="bob")
    created = await platform.operation.post(
        "/api/v1/executions", json={"template": "guarded-hook"}, headers=requester
    )
    assert created.json()["status"] == "awaiting_approval", created.text
    decided = await platform.operation.post(
        f"/api/v1/executions/{created.json()['id']}/approvals",
        json={"decision": "approve", "comment": "go"},
        headers=ADMIN,
    )
    assert decided.status_code == 200, decided.text

    async def both() -> list[dict[str, Any]] | None:
        signed = Webhook(hook["secret"])
        events = []
        for request in receiving.received:  # the module's other webhooks' too
            with contextlib.suppress(WebhookVerificationError):
                events.append(signed.verify(request.body, request.headers))
        mine = [e for e in events if e["data"].get("execution_id") == created.json()["id"]]
        return mine if len(mine) == 2 else None

    requested, decision = sorted(await eventually(both), key=lambda e: e["type"] != approvals[0])
    assert requested["type"] == "operation.approval.requested"
    assert requested["data"]["approval"]["approver_roles"] == ["admin"]
    assert requested["data"]["submitted_by"] == "bob"
    assert decision["type"] == "operation.approval.decided"
    assert (decision["data"]["decision"], decision["data"]["approver"]) == ("approve", "alice")
    assert decision["data"]["comment"] == "go"
