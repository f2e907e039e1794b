"""Approvals end to end: a run under an approval policy waits (never queued) until enough
distinct eligible people approve it, then really runs on a worker; a rejection, a cancel or
the end of its window ends it; a panel's policy applies to its submissions, which mirror
every state. Each principal decides once: the same approver twice is a 409."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from idp_common.db import Database
from idp_common.messaging.topology import OPERATION_JOBS
from idp_common.runtime import open_messaging
from idp_common.secret_values import SecretStoreSettings
from operation_svc.models import messaging
from tests.factories import secret_reference, template
from tests.harness import (
    SIGNER,
    LocalSQSServer,
    Platform,
    auth_headers,
    eventually,
    running_platform,
    service_headers,
    worker_for,
)

ADMIN = auth_headers(roles=("admin",), subject="root")
ALICE = auth_headers(roles=("operator",), subject="alice", groups=("db-admins",))
BOB = auth_headers(roles=("operator",), subject="bob", groups=("db-admins",))
CAROL = auth_headers(roles=("operator",), subject="carol", groups=("db-admins",))
VIEWER = auth_headers(roles=("viewer",), subject="dave", groups=("db-admins",))
OUTSIDER = auth_headers(roles=("operator",), subject="erin")
TWO_DB_ADMINS = {
    "required": 2,
    "approver_roles": [],
    "approver_groups": ["db-admins"],
    "allow_self_approval": False,
    "expires_after_seconds": 86400,
}
ONE_ADMIN = {"required": 1, "approver_roles": ["admin"], "expires_after_seconds": 3600}


async def run(platform: Platform, slug: str, headers: dict[str, str], **parameters: Any) -> Any:
    response = await platform.operation.post(
        "/api/v1/executions", json={"template": slug, "parameters": parameters}, headers=headers
    )
    assert response.status_code == 202, response.text
    return response.json()


async def decide(
    platform: Platform, execution_id: str, headers: dict[str, str], decision: str = "approve"
) -> httpx.Response:
    return await platform.operation.post(
        f"/api/v1/executions/{execution_id}/approvals",
        json={"decision": decision, "comment": f"{decision}: see ticket 42"},
        headers=headers,
    )


async def drop_table_template(platform: Platform, approval: dict[str, Any]) -> None:
    await template(
        platform, "drop", "echo drop {{table}}", [{"name": "table"}], ADMIN, approval=approval
    )


async def execution(platform: Platform, execution_id: str) -> Any:
    response = await platform.operation.get(f"/api/v1/executions/{execution_id}", headers=ADMIN)
    return response.json()


async def ends(platform: Platform, execution_id: str, status: str) -> Any:
    async def probe() -> Any:
        found = await execution(platform, execution_id)
        return found if found["status"] == status else None

    return await eventually(probe, timeout=20)


async def pending_approvals(platform: Platform, headers: dict[str, str]) -> list[Any]:
    response = await platform.operation.get(
        "/api/v1/approvals", params={"status": "pending"}, headers=headers
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


@asynccontextmanager
async def job_counter(platform: Platform) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """Counts the jobs anywhere on their way to a worker: in operation-svc's outbox, or on
    the operation-jobs queue (visible or in flight)."""
    db = Database(platform.database_urls["operation"])
    async with open_messaging(platform.sqs, SIGNER) as bus:
        url = await bus.queues.url(OPERATION_JOBS.name)

        async def count() -> int:
            # The outbox first: a job relayed between the two reads is counted twice, never
            # missed.
            async with db.snapshot() as session:
                outbox = await session.scalar(
                    select(func.count()).where(messaging.outbox.c.queue == OPERATION_JOBS.name)
                )
            attributes = await bus.queues.client.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
            return int(outbox or 0) + sum(map(int, attributes["Attributes"].values()))

        try:
            yield count
        finally:
            await db.dispose()


async def test_two_distinct_eligible_approvers_release_a_run_nothing_queued_before(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform(backend, tmp_path, sqs_server, with_worker=False) as platform:
        await template(
            platform,
            "vacuum",
            "echo vacuum {{table}}",
            [{"name": "table"}],
            ADMIN,
            approval=TWO_DB_ADMINS,
        )
        await template(platform, "plain", "echo plain", [], ADMIN)
        waiting = await run(platform, "vacuum", ALICE, table="orders")
        assert waiting["status"] == "awaiting_approval"
        assert waiting["approval"] == TWO_DB_ADMINS
        assert waiting["dispatched_at"] is None

        assert (await decide(platform, waiting["id"], ALICE)).status_code == 403  # own run
        assert (await decide(platform, waiting["id"], VIEWER)).status_code == 403
        refused = await decide(platform, waiting["id"], OUTSIDER)
        assert refused.status_code == 403
        # An API key in db-admins: a way round "not your own run", if keys decided.
        key = await platform.operation.post(
            "/api/v1/api-keys",
            json={"name": "alice-bot", "roles": ["operator"], "groups": ["db-admins"]},
            headers=auth_headers(roles=("admin",), subject="root", groups=("db-admins",)),
        )
        by_key = await decide(platform, waiting["id"], {"X-API-Key": key.json()["key"]})
        assert by_key.status_code == 403
        assert "API key" in by_key.json()["detail"]
        assert refused.headers["content-type"] == "application/problem+json"
        first = await decide(platform, waiting["id"], BOB)
        assert first.status_code == 200, first.text
        assert first.json()["execution"]["status"] == "awaiting_approval"
        again = await decide(platform, waiting["id"], BOB)
        assert again.status_code == 409
        assert "already decided" in again.json()["detail"]

        async with job_counter(platform) as jobs:
            # A run without a policy, created after it, is queued: the relay has passed
            # the waiting run's transaction, and no job of it is anywhere.
            control = await run(platform, "plain", ALICE)
            await eventually(lambda: holds(jobs, 1))
            assert (await execution(platform, waiting["id"]))["status"] == "awaiting_approval"

            second = await decide(platform, waiting["id"], CAROL)
            assert second.status_code == 200, second.text
            assert second.json()["execution"]["status"] == "pending"
            assert [a["approver"] for a in second.json()["approvals"]] == ["bob", "carol"]
            await eventually(lambda: holds(jobs, 2))

        async with worker_for(platform, ["echo"]):
            done = await ends(platform, waiting["id"], "succeeded")
            await ends(platform, control["id"], "succeeded")
        assert done["output"] == "vacuum orders\n"
        trail = await platform.operation.get(
            "/api/v1/audit", params={"object_id": waiting["id"]}, headers=ADMIN
        )
        actions = [(row["action"], row["actor"]) for row in reversed(trail.json()["items"])]
        assert actions[:3] == [
            ("execution.create", "alice"),
            ("execution.approve", "bob"),
            ("execution.approve", "carol"),
        ]
        assert "execution.finish" in {action for action, _ in actions}


async def holds(count: Callable[[], Awaitable[int]], expected: int) -> bool:
    return await count() == expected


async def test_a_run_requested_through_a_key_is_its_creators_own_run(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """An admin made a key and requested the run through it, then approved it: the
    two-person rule compared the approver with the key's name only. The same holds
    through a key made by a key."""
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        await template(platform, "purge", "echo purge", [], ADMIN, approval=ONE_ADMIN)

        async def key(headers: dict[str, str]) -> dict[str, str]:
            made = await platform.operation.post(
                "/api/v1/api-keys", json={"name": "bot", "roles": ["admin"]}, headers=headers
            )
            assert made.status_code == 201, made.text
            return {"X-API-Key": made.json()["key"]}

        root_key = await key(ADMIN)
        for requester in (root_key, await key(root_key)):
            waiting = await run(platform, "purge", requester)
            assert waiting["status"] == "awaiting_approval"
            assert waiting["id"] not in [
                item["execution_id"] for item in await pending_approvals(platform, ADMIN)
            ]
            refused = await decide(platform, waiting["id"], ADMIN)
            assert refused.status_code == 403
            assert "API key they created" in refused.json()["detail"]
            other = auth_headers(roles=("admin",), subject="another-admin")
            approved = await decide(platform, waiting["id"], other)
            assert approved.status_code == 200, approved.text
            assert approved.json()["execution"]["status"] == "pending"


async def test_a_run_requested_through_a_withdrawn_key_is_not_approved(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """A leaked key's queued run was approved (and ran) after the key was revoked: the
    approver was not told. Approving is now a 409 saying why; rejecting still ends it."""
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        await template(platform, "purge", "echo purge", [], ADMIN, approval=ONE_ADMIN)
        made = await platform.operation.post(
            "/api/v1/api-keys", json={"name": "leaky", "roles": ["operator"]}, headers=ADMIN
        )
        key = {"X-API-Key": made.json()["key"]}
        waiting = [await run(platform, "purge", key) for _ in range(2)]
        revoked = await platform.operation.delete(
            f"/api/v1/api-keys/{made.json()['id']}", headers=ADMIN
        )
        assert revoked.status_code == 204
        approver = auth_headers(roles=("admin",), subject="another-admin")
        refused = await decide(platform, waiting[0]["id"], approver)
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "was revoked" in refused.json()["detail"]
        assert (await execution(platform, waiting[0]["id"]))["status"] == "awaiting_approval"
        rejected = await decide(platform, waiting[1]["id"], approver, "reject")
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["execution"]["status"] == "rejected"


async def test_a_retry_is_still_every_earlier_requesters_run_not_theirs_to_approve(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """A retry's submitter is whoever retried it, its parameters its original's: once
    another operator retried her rejected run, its requester approved it alone. Each
    requester of the chain (and the creator of a key that retried) is refused."""
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        root = auth_headers(roles=("admin",), subject="root", groups=("db-admins",))
        await drop_table_template(platform, TWO_DB_ADMINS | {"required": 1})
        made = await platform.operation.post(
            "/api/v1/api-keys",
            json={"name": "retrier", "roles": ["operator"], "groups": ["db-admins"]},
            headers=root,
        )
        root_key = {"X-API-Key": made.json()["key"]}

        async def retry(execution_id: str, headers: dict[str, str]) -> Any:
            retried = await platform.operation.post(
                f"/api/v1/executions/{execution_id}/retry", headers=headers
            )
            assert retried.status_code == 202, retried.text
            return retried.json()

        first = await run(platform, "drop", ALICE, table="users")
        assert (await decide(platform, first["id"], CAROL, "reject")).status_code == 200
        by_bob = await retry(first["id"], BOB)
        assert (by_bob["submitted_by"], by_bob["status"]) == ("bob", "awaiting_approval")
        assert (await decide(platform, by_bob["id"], CAROL, "reject")).status_code == 200
        by_key = await retry(by_bob["id"], root_key)
        for requester in (ALICE, BOB, root):
            assert by_key["id"] not in [
                item["execution_id"] for item in await pending_approvals(platform, requester)
            ]
            refused = await decide(platform, by_key["id"], requester)
            assert refused.status_code == 403, refused.text
            assert "may not approve their own run" in refused.json()["detail"]
        assert "API key they created" in refused.json()["detail"]
        assert by_key["id"] in [
            item["execution_id"] for item in await pending_approvals(platform, CAROL)
        ]
        approved = await decide(platform, by_key["id"], CAROL)
        assert approved.status_code == 200, approved.text
        assert approved.json()["execution"]["status"] == "pending"


async def test_a_rejection_ends_the_run_and_a_decided_or_cancelled_one_takes_no_decision(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform(backend, tmp_path, sqs_server) as platform:
        await drop_table_template(platform, TWO_DB_ADMINS)
        rejected = await run(platform, "drop", ALICE, table="users")
        answer = await decide(platform, rejected["id"], BOB, "reject")
        assert answer.status_code == 200, answer.text
        assert answer.json()["execution"]["status"] == "rejected"
        assert "rejected by bob: reject: see ticket 42" in answer.json()["execution"]["error"]
        late = await decide(platform, rejected["id"], CAROL)
        assert late.status_code == 409
        assert late.headers["content-type"] == "application/problem+json"
        retried = await platform.operation.post(
            f"/api/v1/executions/{rejected['id']}/retry", headers=ALICE
        )
        assert retried.status_code == 202, retried.text
        assert retried.json()["status"] == "awaiting_approval"  # a retry is approved anew

        by_requester = await run(platform, "drop", ALICE, table="a")
        by_admin = await run(platform, "drop", ALICE, table="b")
        cancel = "/api/v1/executions/{}/cancel"
        forbidden = await platform.operation.post(cancel.format(by_admin["id"]), headers=BOB)
        assert forbidden.status_code == 403  # neither its requester nor an admin
        for waiting, headers in ((by_requester, ALICE), (by_admin, ADMIN)):
            cancelled = await platform.operation.post(cancel.format(waiting["id"]), headers=headers)
            assert cancelled.status_code == 202, cancelled.text
            assert cancelled.json()["status"] == "cancelled"
            assert (await decide(platform, waiting["id"], BOB)).status_code == 409

        # The worker was there all along: none of them ever ran.
        for ended in (rejected, retried.json(), by_requester, by_admin):
            found = await execution(platform, ended["id"])
            assert (found["started_at"], found["worker_id"], found["dispatched_at"]) == (
                None,
                None,
                None,
            )


async def test_a_panels_policy_holds_its_submission_which_mirrors_the_run(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform(backend, tmp_path, sqs_server, with_worker=False) as platform:
        await template(
            platform, "restart", "echo restart {{service}}", [{"name": "service"}], ADMIN
        )
        panel = await platform.panel.post(
            "/api/v1/panels",
            json={
                "slug": "restart",
                "title": "Restart a service",
                "operation_template": "restart",
                "approval": ONE_ADMIN,
                "fields": [{"name": "service", "label": "Service"}],
            },
            headers=ADMIN,
        )
        assert panel.status_code == 201, panel.text
        assert panel.json()["approval"]["approver_roles"] == ["admin"]
        created = await platform.panel.post(
            f"/api/v1/panels/{panel.json()['id']}/submissions",
            json={"data": {"service": "billing"}},
            headers=ALICE,
        )
        assert created.status_code == 202, created.text

        async def submission(status: str) -> Any:
            async def probe() -> Any:
                found = await platform.panel.get(
                    f"/api/v1/submissions/{created.json()['id']}", headers=ADMIN
                )
                return found.json() if found.json()["status"] == status else None

            return await eventually(probe, timeout=20)

        waiting = await submission("awaiting_approval")
        assert waiting["attempts"][0]["status"] == "awaiting_approval"
        listed = await platform.panel.get(
            "/api/v1/submissions", params={"status": "awaiting_approval"}, headers=ADMIN
        )
        assert [item["id"] for item in listed.json()["items"]] == [created.json()["id"]]
        assert (await decide(platform, waiting["execution_id"], BOB)).status_code == 403
        approved = await decide(platform, waiting["execution_id"], ADMIN)
        assert approved.status_code == 200, approved.text

        await submission("pending")  # approved: queued for a worker
        async with worker_for(platform, ["echo"]):
            done = await submission("succeeded")
        assert done["output"] == "restart billing\n"
        assert [a["status"] for a in done["attempts"]] == ["succeeded"]


async def test_a_panel_cannot_lift_its_templates_policy(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        await template(platform, "drop", "echo drop", [], ADMIN, approval=TWO_DB_ADMINS)
        panel = await platform.panel.post(
            "/api/v1/panels",
            json={
                "slug": "drop",
                "title": "Drop",
                "operation_template": "drop",
                "approval": ONE_ADMIN,  # weaker than the template's
                "fields": [],
            },
            headers=ADMIN,
        )
        assert panel.status_code == 201, panel.text
        created = await platform.panel.post(
            f"/api/v1/panels/{panel.json()['id']}/submissions", json={"data": {}}, headers=ALICE
        )

        async def waiting() -> Any:
            found = await platform.panel.get(
                f"/api/v1/submissions/{created.json()['id']}", headers=ADMIN
            )
            return found.json() if found.json()["execution_id"] else None

        execution_id = (await eventually(waiting, timeout=20))["execution_id"]
        held = await execution(platform, execution_id)
        assert (held["status"], held["approval"]) == ("awaiting_approval", TWO_DB_ADMINS)
        assert (await decide(platform, execution_id, ADMIN)).status_code == 403


async def test_the_pending_list_shows_what_the_caller_may_decide_as_it_will_run(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform(backend, tmp_path, sqs_server, with_worker=False) as platform:
        globex = auth_headers(tenant="globex", roles=("admin",), subject="root")
        for tenant_admin in (ADMIN, globex):
            await template(
                platform,
                "rotate",
                "printenv IDP_PARAM_TOKEN",
                [{"name": "token", "type": "secret"}],
                tenant_admin,
                approval=TWO_DB_ADMINS,
            )
        self_approved = TWO_DB_ADMINS | {"allow_self_approval": True, "required": 1}
        await template(platform, "analyze", "echo analyze", [], ADMIN, approval=self_approved)
        secret = "hunter2-very-secret"
        alices = await run(platform, "rotate", ALICE, token=secret)
        own_allowed = await run(platform, "analyze", ALICE)
        bobs = await run(platform, "analyze", BOB)
        other_tenant = auth_headers(tenant="globex", subject="zed", groups=("db-admins",))
        await run(platform, "rotate", other_tenant, token=secret)

        listed = {
            who: [item["execution_id"] for item in await pending_approvals(platform, headers)]
            for who, headers in (("alice", ALICE), ("bob", BOB), ("erin", OUTSIDER))
        }
        assert listed == {
            # Her own "analyze" (self-approval allowed), not her own "rotate"; nothing of
            # globex's; nothing for a non-member.
            "alice": [own_allowed["id"], bobs["id"]],
            "bob": [alices["id"], own_allowed["id"], bobs["id"]],
            "erin": [],
        }
        response = await platform.operation.get("/api/v1/approvals", headers=BOB)
        assert secret not in response.text
        shown = response.json()["items"][0]
        assert shown["argv"] == ["printenv", "IDP_PARAM_TOKEN"], shown
        assert shown["env"] == {"IDP_PARAM_TOKEN": "***"}
        assert shown["parameters"] == {"token": "***"}
        assert (shown["approvals_required"], shown["submitted_by"]) == (2, "alice")

        # Decided by bob: no longer his to decide.
        assert (await decide(platform, alices["id"], BOB)).status_code == 200
        assert [i["execution_id"] for i in await pending_approvals(platform, BOB)] == [
            own_allowed["id"],
            bobs["id"],
        ]
        assert (await decide(platform, own_allowed["id"], ALICE)).status_code == 200
        assert (await execution(platform, own_allowed["id"]))["status"] == "pending"


async def test_runs_the_caller_may_not_decide_hide_none_of_those_they_may(
    tmp_path: Path, sqs_server: LocalSQSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The listing read the oldest waiting runs once: as many of another approvers' (any
    # operator may ask for many) hid every newer run from this one.
    monkeypatch.setattr("operation_svc.approvals.service.MAX_AWAITING_LISTED", 2)
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        await template(platform, "rotate", "echo rotate", [], ADMIN, approval=TWO_DB_ADMINS)
        await template(platform, "reboot", "echo reboot", [], ADMIN, approval=ONE_ADMIN)
        for _ in range(3):
            await run(platform, "reboot", OUTSIDER)
        first, second, third = [await run(platform, "rotate", OUTSIDER) for _ in range(3)]

        listed = [item["execution_id"] for item in await pending_approvals(platform, BOB)]

        assert listed == [first["id"], second["id"]]  # the oldest, as many as are shown
        assert (await decide(platform, first["id"], BOB)).status_code == 200
        listed = [item["execution_id"] for item in await pending_approvals(platform, BOB)]
        assert listed == [second["id"], third["id"]]


async def test_an_approval_policy_that_cannot_work_is_a_422_naming_its_field(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    cases = {
        "approval.required": {"required": 0, "approver_roles": ["admin"]},
        "approval.approver_roles": {"required": 1, "approver_roles": [], "approver_groups": []},
        "approval.expires_after_seconds": {"approver_groups": ["ops"], "expires_after_seconds": 0},
    }
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        saves = (
            (platform.operation, "/api/v1/templates", {"name": "x", "command_template": "echo x"}),
            (platform.panel, "/api/v1/panels", {"title": "x", "operation_template": "x"}),
        )
        for field, approval in cases.items():
            for client, path, body in saves:
                response = await client.post(
                    path, json={"slug": "x", "approval": approval} | body, headers=ADMIN
                )
                assert response.status_code == 422, response.text
                assert response.headers["content-type"] == "application/problem+json"
                assert [error["field"] for error in response.json()["errors"]] == [field]
        patched = await platform.operation.post(
            "/api/v1/templates",
            json={"slug": "y", "name": "y", "command_template": "echo y"},
            headers=ADMIN,
        )
        bad = await platform.operation.patch(
            f"/api/v1/templates/{patched.json()['id']}",
            json={"approval": cases["approval.required"]},
            headers=ADMIN,
        )
        assert bad.status_code == 422
        assert [error["field"] for error in bad.json()["errors"]] == ["approval.required"]
        for change, shown in ((ONE_ADMIN, ["admin"]), (None, None)):  # set, then lifted
            changed = await platform.operation.patch(
                f"/api/v1/templates/{patched.json()['id']}",
                json={"approval": change},
                headers=ADMIN,
            )
            assert changed.status_code == 200, changed.text
            assert (changed.json()["approval"] or {}).get("approver_roles") == shown


async def test_a_run_is_cancelled_once_however_many_ask_at_once(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """Cancel read the run, then wrote it, without a lock: on PostgreSQL ten cancels of one
    waiting run were ten 202s, ten audit rows and ten ends counted; and a cancel racing a
    worker's claim answered ``cancelled`` for a command that then ran to its end."""
    async with running_platform(backend, tmp_path, sqs_server, with_worker=False) as platform:
        await template(platform, "drop", "echo drop", [], ADMIN, approval=TWO_DB_ADMINS)
        waiting = await run(platform, "drop", ALICE)
        cancel = f"/api/v1/executions/{waiting['id']}/cancel"
        answers = await asyncio.gather(
            *(platform.operation.post(cancel, headers=ALICE) for _ in range(10))
        )
        assert sorted(answer.status_code for answer in answers) == [202] + [409] * 9
        assert len(await audit(platform, "execution.cancel")) == 1

        await template(platform, "now", "echo now", [], ADMIN)
        for _ in range(10):
            pending = await run(platform, "now", ALICE)
            claim = {"worker_id": "w", "execution_ids": [pending["id"]]}
            claimed, cancelled = await asyncio.gather(
                platform.operation.post(
                    "/api/v1/workers/claims", json=claim, headers=service_headers()
                ),
                platform.operation.post(
                    f"/api/v1/executions/{pending['id']}/cancel", headers=ALICE
                ),
            )
            found = await execution(platform, pending["id"])
            if claimed.json()["claimed"]:  # the worker holds it: it is told to stop
                assert (cancelled.json()["status"], found["status"]) == ("running", "running")
                assert found["cancel_requested_at"] is not None
            else:
                assert (cancelled.json()["status"], found["status"]) == ("cancelled", "cancelled")


async def test_a_deleted_templates_runs_run_no_more(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """Deleting a template stopped new runs, but a run of it awaiting approval could still
    be approved and run, and any of its runs retried."""
    async with running_platform(backend, tmp_path, sqs_server) as platform:
        await template(platform, "drop", "echo drop", [], ADMIN, approval=TWO_DB_ADMINS)
        await template(platform, "tidy", "echo tidy", [], ADMIN)
        waiting = await run(platform, "drop", ALICE)
        done = await run(platform, "tidy", ALICE)
        await ends(platform, done["id"], "succeeded")
        for slug in ("drop", "tidy"):
            deleted = await platform.operation.delete(f"/api/v1/templates/{slug}", headers=ADMIN)
            assert deleted.status_code == 204, deleted.text
        cancelled = await execution(platform, waiting["id"])
        assert cancelled["status"] == "cancelled"
        assert "its template was deleted by root" in cancelled["error"]
        assert (await decide(platform, waiting["id"], BOB)).status_code == 409
        for ended in (waiting, done):
            retried = await platform.operation.post(
                f"/api/v1/executions/{ended['id']}/retry", headers=ALICE
            )
            assert retried.status_code == 409, retried.text
            assert "was deleted" in retried.json()["detail"]


async def test_a_lost_runs_retry_is_still_its_requesters_to_cancel_not_to_approve(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """The lost sweeper's retry was made in operation-svc's name: its requester could no
    longer cancel it, and approved it alone where the policy wants someone else."""
    async with running_platform(
        "sqlite",
        tmp_path,
        sqs_server,
        with_worker=False,
        operation={"lost_after_seconds": 1.0, "sweep_interval_seconds": 0.2},
    ) as platform:
        one_other = TWO_DB_ADMINS | {"required": 1}
        await template(
            platform, "drop", "echo drop", [], ADMIN, approval=one_other, retry_safe=True
        )
        first = await run(platform, "drop", ALICE)
        assert (await decide(platform, first["id"], BOB)).status_code == 200
        claim = {"worker_id": "vanished", "execution_ids": [first["id"]]}
        await platform.operation.post(
            "/api/v1/workers/claims", json=claim, headers=service_headers()
        )
        await ends(platform, first["id"], "lost")

        async def retry_of_first() -> Any:
            listed = await platform.operation.get("/api/v1/executions", headers=ADMIN)
            return next((e for e in listed.json()["items"] if e["retry_of"] == first["id"]), None)

        retry = await eventually(retry_of_first)
        assert (retry["status"], retry["submitted_by"]) == ("awaiting_approval", "alice")
        assert (await decide(platform, retry["id"], ALICE)).status_code == 403
        [audited] = await audit(platform, "execution.retry")
        assert (audited["actor"], audited["object_id"]) == ("operation-svc", retry["id"])
        assert audited["changes"]["retry_of"] == first["id"]
        cancel = f"/api/v1/executions/{retry['id']}/cancel"
        assert (await platform.operation.post(cancel, headers=ALICE)).status_code == 202


async def audit(platform: Platform, action: str) -> list[Any]:
    response = await platform.operation.get(
        "/api/v1/audit", params={"action": action}, headers=ADMIN
    )
    return list(response.json()["items"])


async def test_a_run_gets_the_secrets_it_was_asked_for_with_not_those_mapped_after(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """Its approvers saw a run with its template's secret bindings of that time; an admin
    who maps the variable to another secret before they decide does not change what runs."""
    root = tmp_path / "secrets"
    (root / "acme").mkdir(parents=True)
    (root / "acme" / "staging").write_text("staging-password")
    store = SecretStoreSettings(file_root=str(root))
    async with running_platform(
        "sqlite",
        tmp_path,
        sqs_server,
        allowed_executables=["printenv"],
        operation={"secret_store": store},
        worker={"secret_store": store},
    ) as platform:
        saved = await template(
            platform, "show", "printenv DB_PASSWORD", [], ADMIN, approval=ONE_ADMIN
        )
        mappings = f"/api/v1/templates/{saved['id']}/secrets"

        async def secret(key: str) -> str:
            created = await secret_reference(platform, "file", key, ADMIN)
            assert created.status_code == 201, created.text
            return str(created.json()["id"])

        mapped = await platform.operation.post(
            mappings,
            json={"secret_id": await secret("staging"), "env_var": "DB_PASSWORD"},
            headers=ADMIN,
        )
        assert mapped.status_code == 201, mapped.text
        waiting = await run(platform, "show", ALICE)
        # Mapped again, to a secret whose file does not exist: a run given it would fail.
        unmapped = await platform.operation.delete(
            f"{mappings}/{mapped.json()['id']}", headers=ADMIN
        )
        assert unmapped.status_code == 204, unmapped.text
        remapped = await platform.operation.post(
            mappings,
            json={"secret_id": await secret("production"), "env_var": "DB_PASSWORD"},
            headers=ADMIN,
        )
        assert remapped.status_code == 201, remapped.text
        approved = await decide(platform, waiting["id"], ADMIN)
        assert approved.status_code == 200, approved.text

        async def ended() -> Any:
            found = await execution(platform, waiting["id"])
            return found if found["status"] not in ("pending", "running") else None

        finished = await eventually(ended, timeout=20)
        assert (finished["status"], finished["error"]) == ("succeeded", None)
