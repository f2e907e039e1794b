"""operation-svc end to end with the real queue and the real worker: safety, preview,
idempotency, cancel, retry, versions, lost executions, secrets, SSE logs and audit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.common.test_content_decoding import gzip_bomb
from tests.harness import (
    LocalSQSServer,
    Platform,
    ServedApp,
    auth_headers,
    eventually,
    local_client,
    running_platform,
    service_headers,
    worker_for,
    write_lock_held,
)

ADMIN = auth_headers(roles=("admin",))
OPERATOR = auth_headers(roles=("operator",))
NOW = "2026-01-01T00:00:00Z"
ALLOWED = ["echo", "printf", "sleep", "sh", "seq", "env", "true", "false", "ls"]
TERMINAL = {"succeeded", "failed", "timed_out", "cancelled", "lost", "rejected"}


@pytest.fixture
async def platform(tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite",
        tmp_path,
        sqs_server,
        allowed_executables=ALLOWED,
        operation={"lost_after_seconds": 1.5, "sweep_interval_seconds": 0.2},
    ) as running:
        yield running


async def template(
    platform: Platform,
    slug: str,
    command: str | None,
    *parameters: dict[str, Any],
    **options: Any,
) -> dict[str, Any]:
    response = await platform.operation.post(
        "/api/v1/templates",
        json={
            "slug": slug,
            "name": slug,
            "command_template": command,
            "parameters": list(parameters),
        }
        | options,
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def start(
    platform: Platform, slug: str, headers: dict[str, str] | None = None, **parameters: Any
) -> httpx.Response:
    return await platform.operation.post(
        "/api/v1/executions",
        json={"template": slug, "parameters": parameters},
        headers=(headers or {}) | OPERATOR,
    )


async def finished(platform: Platform, execution_id: str, timeout: float = 20) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = (
            await platform.operation.get(f"/api/v1/executions/{execution_id}", headers=ADMIN)
        ).json()
        return body if body["status"] in TERMINAL else None

    return await eventually(probe, timeout=timeout)


async def status_is(platform: Platform, execution_id: str, wanted: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = (
            await platform.operation.get(f"/api/v1/executions/{execution_id}", headers=ADMIN)
        ).json()
        return body if body["status"] == wanted else None

    return await eventually(probe, timeout=20)


async def output_of(platform: Platform, execution_id: str) -> list[str]:
    logs = await platform.operation.get(f"/api/v1/executions/{execution_id}/logs", headers=ADMIN)
    return [line["message"] for line in logs.json()["items"] if line["stream"] == "stdout"]


async def test_injection_attempts_run_literally_and_create_nothing(
    platform: Platform, tmp_path: Path
) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    await template(platform, "say", "printf '[%s]\\n' {{value}}", {"name": "value"})
    attempts = [
        f"a; touch {marker}",
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"a | touch {marker}",
        f"a\ntouch {marker}",
        f"a && touch {marker} #",
        "{{value}}",
    ]
    ids = []
    for value in attempts:
        response = await start(platform, "say", value=value)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    for value, execution_id in zip(attempts, ids, strict=True):
        execution = await finished(platform, execution_id)
        assert execution["status"] == "succeeded"
        assert execution["argv"] == ["printf", "[%s]\\n", value]
        assert "\n".join(await output_of(platform, execution_id)) == f"[{value}]"
    assert not marker.exists()


async def test_unsafe_values_are_422_naming_the_parameter_and_nothing_is_queued(
    platform: Platform,
) -> None:
    await template(
        platform,
        "ls-dir",
        "ls {{path}}",
        {"name": "path", "pattern": "[a-z0-9/_-]+", "max_length": 50},
    )
    await template(platform, "count", "seq {{n}}", {"name": "n", "type": "integer", "maximum": 5})
    cases = [
        ("ls-dir", {"path": "../../etc/passwd"}, "parameters.path", "pattern"),
        ("ls-dir", {"path": "--output=/etc/x"}, "parameters.path", "pattern"),
        ("ls-dir", {"path": "a" * 51}, "parameters.path", "max_length"),
        ("ls-dir", {"path": "a\x00b"}, "parameters.path", "nul_byte"),
        ("ls-dir", {"path": "ok", "extra": "x"}, "parameters.extra", "unknown_parameter"),
        ("count", {"n": "ten"}, "parameters.n", "type"),
        ("count", {"n": 6}, "parameters.n", "maximum"),
        ("count", {"n": True}, "parameters.n", "type"),
        ("nope", {}, "template", "unknown_template"),
    ]
    for slug, parameters, field, code in cases:
        response = await platform.operation.post(
            "/api/v1/executions",
            json={"template": slug, "parameters": parameters},
            headers=OPERATOR,
        )
        assert response.status_code == 422, response.text
        assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [(field, code)]
    listed = await platform.operation.get("/api/v1/executions", headers=ADMIN)
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    ("command", "parameters", "values", "stdout"),
    [
        (
            "printf '[%s]\\n' {{a}} {{b}}",
            [{"name": "a"}, {"name": "b"}],
            {"a": "x y", "b": "$HOME"},
            ["[x y]", "[$HOME]"],
        ),
        ('echo "n={{n}}" done', [{"name": "n", "type": "integer"}], {"n": "007"}, ["n=7 done"]),
        (
            "sh -c 'echo \"$IDP_PARAM_WHO\" | tr a-z A-Z'",
            [{"name": "who"}],
            {"who": "bob; id"},
            ["BOB; ID"],
        ),
        ("printf '%s|' {{flag}}", [{"name": "flag", "type": "boolean"}], {"flag": True}, ["true|"]),
    ],
)
async def test_preview_shows_exactly_what_the_worker_runs(
    platform: Platform,
    command: str,
    parameters: list[dict[str, Any]],
    values: dict[str, Any],
    stdout: list[str],
) -> None:
    created = await template(platform, "t", command, *parameters)
    preview = await platform.operation.post(
        f"/api/v1/templates/{created['id']}/preview", json={"parameters": values}, headers=OPERATOR
    )
    assert preview.status_code == 200
    assert preview.json()["allowed"] is True
    started = await start(platform, "t", **values)
    execution = await finished(platform, started.json()["id"])
    assert execution["status"] == "succeeded", execution
    assert execution["argv"] == preview.json()["argv"]
    assert await output_of(platform, execution["id"]) == stdout


async def test_preview_reports_the_verdict_and_the_rule(platform: Platform) -> None:
    created = await template(platform, "ls2", "ls {{path}}", {"name": "path"})
    preview = await platform.operation.post(
        f"/api/v1/templates/{created['id']}/preview",
        json={"parameters": {"path": "-la"}},
        headers=OPERATOR,
    )
    assert preview.json()["allowed"] is False
    assert preview.json()["refusals"] == [
        {
            "rule": "leading_dash",
            "parameter": "path",
            "message": "a value may not start an argument with '-' (it would become an "
            "option) unless its parameter allows a leading dash",
        }
    ]


@pytest.mark.parametrize(
    ("command", "rule"),
    [
        ("{{x}} -la", "executable_placeholder"),
        ("cat /etc/shadow", "executable_not_allowed"),
        ("sh -c 'echo {{x}}'", "placeholder_in_script"),
        ("sh -c 'rm -rf /'", "denylisted_pattern"),
    ],
)
async def test_unsafe_templates_are_refused_when_saved(
    platform: Platform, command: str, rule: str
) -> None:
    response = await platform.operation.post(
        "/api/v1/templates",
        json={
            "slug": "bad",
            "name": "bad",
            "command_template": command,
            "parameters": [{"name": "x"}],
        },
        headers=ADMIN,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == rule


async def test_idempotency_key_returns_the_original_or_409(platform: Platform) -> None:
    await template(platform, "hello", "echo {{who}}", {"name": "who"})
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = await start(platform, "hello", headers=key, who="a")
    again = await start(platform, "hello", headers=key, who="a")
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await start(platform, "hello", headers=key, who="b")
    assert other.status_code == 409
    await finished(platform, first.json()["id"])
    listed = await platform.operation.get("/api/v1/executions", headers=ADMIN)
    assert len(listed.json()["items"]) == 1


async def test_one_idempotency_key_sent_many_times_at_once_creates_one_execution(
    platform: Platform,
) -> None:
    """Creates sent together are committed together: the copies of one request that race
    past the replay check meet the key's unique constraint and get the original."""
    await template(platform, "hello", "echo {{who}}", {"name": "who"})
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    copies = await asyncio.gather(
        *(start(platform, "hello", headers=key, who="a") for _ in range(10))
    )
    assert [copy.status_code for copy in copies] == [202] * 10
    assert len({copy.json()["id"] for copy in copies}) == 1
    assert sum(copy.headers.get("idempotent-replayed") != "true" for copy in copies) == 1
    assert (await start(platform, "hello", headers=key, who="b")).status_code == 409
    await finished(platform, copies[0].json()["id"])
    listed = await platform.operation.get("/api/v1/executions", headers=ADMIN)
    assert len(listed.json()["items"]) == 1


async def test_executions_created_together_each_run_and_are_audited(platform: Platform) -> None:
    await template(platform, "hello", "echo {{who}}", {"name": "who"})
    created = await asyncio.gather(*(start(platform, "hello", who=f"w{n}") for n in range(30)))
    assert {response.status_code for response in created} == {202}
    for number, response in enumerate(created):
        execution = await finished(platform, response.json()["id"])
        assert execution["status"] == "succeeded"
        assert await output_of(platform, execution["id"]) == [f"w{number}"]
    audit = await platform.operation.get(
        "/api/v1/audit", params={"action": "execution.create", "limit": 100}, headers=ADMIN
    )
    assert {row["object_id"] for row in audit.json()["items"]} == {
        response.json()["id"] for response in created
    }


async def test_cancel_a_pending_and_a_running_execution(platform: Platform) -> None:
    await template(
        platform, "nap", "sleep {{s}}", {"name": "s", "type": "integer"}, max_concurrency=1
    )
    running = (await start(platform, "nap", s=30)).json()
    queued = (await start(platform, "nap", s=30)).json()
    await status_is(platform, running["id"], "running")
    assert (
        await platform.operation.get(f"/api/v1/executions/{queued['id']}", headers=ADMIN)
    ).json()["dispatched_at"] is None

    cancelled = await platform.operation.post(
        f"/api/v1/executions/{queued['id']}/cancel", headers=OPERATOR
    )
    assert cancelled.json()["status"] == "cancelled"

    import time

    asked = time.monotonic()
    response = await platform.operation.post(
        f"/api/v1/executions/{running['id']}/cancel", headers=OPERATOR
    )
    assert response.status_code == 202
    done = await status_is(platform, running["id"], "cancelled")
    assert time.monotonic() - asked < 2.5
    assert done["exit_code"] is not None
    again = await platform.operation.post(
        f"/api/v1/executions/{running['id']}/cancel", headers=OPERATOR
    )
    assert again.status_code == 409


async def test_lifting_a_concurrency_limit_starts_the_waiting_executions_at_once(
    platform: Platform,
) -> None:
    created = await template(platform, "solo", "sleep 30", max_concurrency=1)
    first = (await start(platform, "solo")).json()
    waiting = (await start(platform, "solo")).json()
    await status_is(platform, first["id"], "running")
    assert (
        await platform.operation.get(f"/api/v1/executions/{waiting['id']}", headers=ADMIN)
    ).json()["dispatched_at"] is None
    lifted = await platform.operation.patch(
        f"/api/v1/templates/{created['id']}", json={"max_concurrency": None}, headers=ADMIN
    )
    assert lifted.status_code == 200
    await status_is(platform, waiting["id"], "running")
    for execution in (first, waiting):
        await platform.operation.post(
            f"/api/v1/executions/{execution['id']}/cancel", headers=OPERATOR
        )
        await status_is(platform, execution["id"], "cancelled")


async def test_retry_runs_the_same_version_and_parameters_linked_to_the_original(
    platform: Platform,
) -> None:
    created = await template(platform, "greet", "echo hello {{who}}", {"name": "who"})
    original = await finished(platform, (await start(platform, "greet", who="ann")).json()["id"])
    assert original["template_version"] == 1
    update = await platform.operation.patch(
        f"/api/v1/templates/{created['id']}",
        json={"command_template": "echo goodbye {{who}}"},
        headers=ADMIN,
    )
    assert update.json()["version"] == 2
    retried = await platform.operation.post(
        f"/api/v1/executions/{original['id']}/retry", headers=OPERATOR
    )
    assert retried.status_code == 202
    retry = await finished(platform, retried.json()["id"])
    assert retry["retry_of"] == original["id"]
    assert retry["template_version"] == 1
    assert retry["parameters"] == {"who": "ann"}
    assert await output_of(platform, retry["id"]) == ["hello ann"]
    fresh = await finished(platform, (await start(platform, "greet", who="ann")).json()["id"])
    assert (fresh["template_version"], await output_of(platform, fresh["id"])) == (
        2,
        ["goodbye ann"],
    )


async def test_a_finished_execution_is_never_reopened(platform: Platform) -> None:
    await template(platform, "ok", "true")
    execution = await finished(platform, (await start(platform, "ok")).json()["id"])
    assert execution["status"] == "succeeded"
    late_claim = await platform.operation.post(
        "/api/v1/workers/claims",
        json={"worker_id": "stale", "execution_ids": [execution["id"], str(uuid.uuid4())]},
        headers=service_headers(),
    )
    assert late_claim.status_code == 200
    assert late_claim.json() == {"claimed": []}
    assert (
        await platform.operation.get(f"/api/v1/executions/{execution['id']}", headers=ADMIN)
    ).json()["status"] == "succeeded"


async def test_a_claim_whose_answer_is_lost_is_asked_again_and_runs_once(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """operation-svc records a claim whose answer never reaches the worker (it stalled past
    the worker's timeout; here a gateway answers 504 once it has forwarded it): the worker
    asks again as the claimer and runs the command once, rather than leaving it claimed and
    never run, to be declared lost."""
    async with short_lost_after(tmp_path, sqs_server, 1.5) as platform:
        lost_answers: list[Any] = []

        async def gateway(request: Request) -> Response:
            kept = ("authorization", "content-type")
            forwarded = await platform.operation.request(
                request.method,
                request.url.path,
                content=await request.body(),
                headers=[(name, value) for name, value in request.headers.items() if name in kept],
            )
            if request.url.path == "/api/v1/workers/claims" and not lost_answers:
                lost_answers.append(forwarded.json())
                return JSONResponse({}, status_code=504)
            return Response(forwarded.content, forwarded.status_code, forwarded.headers)

        routes = [Route("/{path:path}", gateway, methods=["GET", "POST"])]
        async with (
            ServedApp(Starlette(routes=routes)) as proxy,
            local_client(proxy.url) as through_gateway,
            worker_for(replace(platform, operation=through_gateway), ALLOWED),
        ):
            await template(platform, "once", "echo once")
            execution_id = (await start(platform, "once")).json()["id"]
            done = await finished(platform, execution_id)
        assert lost_answers == [{"claimed": [execution_id]}]
        assert done["status"] == "succeeded"
        assert await output_of(platform, execution_id) == ["once"]


@pytest.mark.parametrize("retry_safe", [False, True])
async def test_an_execution_whose_worker_stops_heartbeating_is_lost(
    retry_safe: bool, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with short_lost_after(tmp_path, sqs_server) as platform:
        await template(platform, "ghost", "sleep 30", retry_safe=retry_safe)
        pending = (await start(platform, "ghost")).json()
        # A worker claims it and then vanishes (kill -9): it never heartbeats again.
        claim = await platform.operation.post(
            "/api/v1/workers/claims",
            json={"worker_id": "vanished", "execution_ids": [pending["id"]]},
            headers=service_headers(),
        )
        assert claim.json() == {"claimed": [pending["id"]]}
        lost = await status_is(platform, pending["id"], "lost")
        assert "vanished" in lost["error"]
        listed = (await platform.operation.get("/api/v1/executions", headers=ADMIN)).json()
        retries = [e for e in listed["items"] if e["retry_of"] == pending["id"]]
        assert len(retries) == (1 if retry_safe else 0)
        if retry_safe:
            assert retries[0]["status"] == "pending"


def short_lost_after(
    tmp_path: Path, sqs_server: LocalSQSServer, lost_after_seconds: float = 1.0
) -> AbstractAsyncContextManager[Platform]:
    """No worker (a test plays it, or starts one); an execution silent for
    ``lost_after_seconds`` is lost. On one tmp_path, a second one is a restart: it opens the
    same SQLite database."""
    return running_platform(
        "sqlite",
        tmp_path,
        sqs_server,
        allowed_executables=ALLOWED,
        with_worker=False,
        operation={"lost_after_seconds": lost_after_seconds, "sweep_interval_seconds": 0.2},
    )


async def claimed_by(
    platform: Platform, worker_id: str, command: str, claim_id: str | None = None
) -> str:
    """A new execution of ``command``, claimed by ``worker_id`` (the claim's id
    ``claim_id``); its id."""
    await template(platform, "long", command)
    execution_id: str = (await start(platform, "long")).json()["id"]
    assert await claims(platform, worker_id, execution_id, claim_id) == [execution_id]
    return execution_id


async def claims(
    platform: Platform, worker_id: str, execution_id: str, claim_id: str | None = None
) -> Any:
    """What a claim of ``execution_id`` by ``worker_id`` (with ``claim_id``) is given."""
    body = {"worker_id": worker_id, "execution_ids": [execution_id], "claim_id": claim_id}
    answer = await platform.operation.post(
        "/api/v1/workers/claims", json=body, headers=service_headers()
    )
    return answer.json()["claimed"]


async def heartbeat(platform: Platform, worker_id: str, execution_id: str) -> Any:
    return (
        await platform.operation.post(
            "/api/v1/workers/heartbeat",
            json={"worker_id": worker_id, "execution_ids": [execution_id]},
            headers=service_headers(),
        )
    ).json()


async def test_reports_sent_over_http_reach_only_the_run_their_worker_holds_and_once(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """The way a worker reports log batches and finishes the broker would not take: a
    service only, for a run it holds; a line is kept once by its seq and an end recorded
    once, however many copies arrive (the broker's included)."""
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        execution_id = await claimed_by(platform, "holder", "sleep 30")

        def line(seq: int) -> dict[str, Any]:
            return {"seq": seq, "stream": "stdout", "message": f"line {seq}", "timestamp": NOW}

        log = {"execution_id": execution_id, "worker_id": "holder", "lines": [line(0), line(1)]}
        finish = {
            "execution_id": execution_id,
            "status": "succeeded",
            "exit_code": 0,
            "duration_seconds": 1.5,
            "output_excerpt": "line 0\nline 1\nline 2\n",
            "log_lines": 3,
            "worker_id": "holder",
            "last_lines": [line(1), line(2)],
        }

        async def sent(kind: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
            answer = await platform.operation.post(
                f"/api/v1/workers/{kind}", json=body, headers=headers
            )
            return answer.status_code, answer.json()

        not_recorded = (200, {"recorded": False})
        for kind, body in (("logs", log), ("finishes", finish)):
            assert (await sent(kind, body, ADMIN))[0] == 403
            for other in ({"worker_id": "other"}, {"execution_id": str(uuid.uuid4())}):
                assert await sent(kind, body | other, service_headers()) == not_recorded
        assert await output_of(platform, execution_id) == []
        assert await sent("logs", log, service_headers()) == (200, {"recorded": True})
        assert await sent("finishes", finish, service_headers()) == (200, {"recorded": True})
        failed = finish | {"status": "failed"}
        assert await sent("finishes", failed, service_headers()) == not_recorded
        done = await status_is(platform, execution_id, "succeeded")
        assert done["exit_code"] == 0
        assert await output_of(platform, execution_id) == ["line 0", "line 1", "line 2"]
        audit = await platform.operation.get(
            "/api/v1/audit", params={"action": "execution.finish"}, headers=ADMIN
        )
        assert [entry["actor"] for entry in audit.json()["items"]] == ["holder"]


async def test_a_claim_sent_again_is_given_what_it_took_and_no_other_claim_is(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        claim_id = str(uuid.uuid4())
        execution_id = await claimed_by(platform, "first", "sleep 30", claim_id)
        # The same claim sent again (its answer was lost): given what it took.
        assert await claims(platform, "first", execution_id, claim_id) == [execution_id]
        # The job delivered again, to this worker or another: never run again.
        assert await claims(platform, "first", execution_id) == []
        assert await claims(platform, "first", execution_id, str(uuid.uuid4())) == []
        assert await claims(platform, "second", execution_id, claim_id) == []


async def test_an_outage_of_operation_svc_longer_than_lost_after_loses_no_running_execution(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """The worker's heartbeats fail while operation-svc is down; once it is back they arrive
    again, and the execution they keep alive is not declared lost at the restart. (The
    first heartbeat must come within lost_after of operation-svc's start, which the other
    services' starts take part of: 1 s was too short on a busy machine.)"""
    async with short_lost_after(tmp_path, sqs_server, lost_after_seconds=3.0) as platform:
        execution_id = await claimed_by(platform, "alive", "sleep 30")
    await asyncio.sleep(3.5)
    async with short_lost_after(tmp_path, sqs_server, lost_after_seconds=3.0) as platform:
        for _ in range(8):
            assert await heartbeat(platform, "alive", execution_id) == {"stop": [], "ended": []}
            await asyncio.sleep(0.25)
        execution = await platform.operation.get(
            f"/api/v1/executions/{execution_id}", headers=ADMIN
        )
        assert execution.json()["status"] == "running"


async def test_a_write_stall_longer_than_lost_after_loses_no_running_execution(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """Another connection holds the write lock for 3 s: the worker's heartbeats wait behind
    it, and so does the sweep; neither may declare the execution lost."""
    async with short_lost_after(tmp_path, sqs_server) as platform:
        execution_id = await claimed_by(platform, "alive", "sleep 30")
        answers = []

        async def keep_alive() -> None:
            while True:
                answers.append(await heartbeat(platform, "alive", execution_id))
                await asyncio.sleep(0.3)

        beating = asyncio.create_task(keep_alive())
        await asyncio.sleep(1.5)  # the sweeper has listened for lost_after: it sweeps
        async with write_lock_held(platform):
            pass
        await asyncio.sleep(1.0)
        beating.cancel()
        assert answers
        assert all(answer == {"stop": [], "ended": []} for answer in answers), answers
        execution = await platform.operation.get(
            f"/api/v1/executions/{execution_id}", headers=ADMIN
        )
        assert execution.json()["status"] == "running"


@pytest.fixture
def finishes_recorded_late(monkeypatch: pytest.MonkeyPatch) -> None:
    """operation-svc records each finish 3 s after it arrives (a backlog of finish events, a
    slow database); requested before ``platform``, which then starts with it."""
    import operation_svc.app
    from idp_common.events import ExecutionFinished
    from idp_common.messaging.consumer import EventHandler
    from idp_common.messaging.envelope import Event
    from idp_common.messaging.inbox import transactional_handler

    def slow_to_record_finishes(*args: Any) -> EventHandler:
        record = transactional_handler(*args)

        async def handle(event: Event) -> None:
            if event.type == ExecutionFinished.event_type:
                await asyncio.sleep(3)
            await record(event)

        return handle

    monkeypatch.setattr(operation_svc.app, "transactional_handler", slow_to_record_finishes)


async def test_a_finish_that_waits_in_the_queue_longer_than_lost_after_is_not_lost(
    finishes_recorded_late: None, platform: Platform
) -> None:
    """The worker has reported the end; operation-svc records it after lost_after (1.5 s):
    the worker keeps the execution alive until its end is recorded."""
    await template(platform, "quick", "echo done")
    execution = await finished(platform, (await start(platform, "quick")).json()["id"])
    assert execution["status"] == "succeeded", execution
    assert await output_of(platform, execution["id"]) == ["done"]


async def test_secrets_reach_the_child_and_never_the_output(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_value = "p4ss:w0rd/with spaces&more"
    monkeypatch.setenv("IDP_SECRET_ACME__DB_PASSWORD", secret_value)
    created = await template(
        platform,
        "leaky",
        'sh -c \'echo "$DB_PASSWORD"; printf %s "$DB_PASSWORD" | base64; env\'',
    )
    secret = await platform.operation.post(
        "/api/v1/secrets",
        json={"slug": "db", "provider": "env", "key": "IDP_SECRET_ACME__DB_PASSWORD"},
        headers=ADMIN,
    )
    mapping = await platform.operation.post(
        f"/api/v1/templates/{created['id']}/secrets",
        json={"secret_id": secret.json()["id"], "env_var": "DB_PASSWORD"},
        headers=ADMIN,
    )
    assert mapping.status_code == 201
    preview = await platform.operation.post(
        f"/api/v1/templates/{created['id']}/preview", json={}, headers=OPERATOR
    )
    assert preview.json()["env"] == {"DB_PASSWORD": "***"}
    execution = await finished(platform, (await start(platform, "leaky")).json()["id"])
    lines = await output_of(platform, execution["id"])
    assert lines[0] == "***"
    assert lines[1] == "***"
    assert "DB_PASSWORD=***" in lines
    everything = json.dumps([lines, execution])
    assert secret_value not in everything
    audit = await platform.operation.get("/api/v1/audit", headers=ADMIN)
    assert secret_value not in audit.text


async def test_sse_log_stream_resumes_from_last_event_id_without_gaps_or_duplicates(
    platform: Platform,
) -> None:
    await template(platform, "chatty", "sh -c 'for i in $(seq 1 120); do echo line $i; done'")
    execution_id = (await start(platform, "chatty")).json()["id"]
    seen: list[int] = []
    first = await read_events(platform, execution_id, {}, stop_after=40)
    seen += [seq for seq, _ in first if seq is not None]
    rest = await read_events(platform, execution_id, {"Last-Event-ID": str(seen[-1])})
    seen += [seq for seq, _ in rest if seq is not None]
    assert seen == list(range(120))
    assert rest[-1] == (None, {"status": "succeeded", "exit_code": 0})
    # The stream and the pages show a line the same way, timestamps in one format.
    page = await platform.operation.get(f"/api/v1/executions/{execution_id}/logs", headers=ADMIN)
    streamed = [data for seq, data in first + rest if seq is not None]
    assert streamed[:50] == page.json()["items"][:50]
    assert all(line["timestamp"].endswith("Z") for line in streamed)


async def read_events(
    platform: Platform, execution_id: str, headers: dict[str, str], stop_after: int | None = None
) -> list[tuple[int | None, dict[str, Any]]]:
    events: list[tuple[int | None, dict[str, Any]]] = []
    event_id: int | None = None
    async with platform.operation.stream(
        "GET",
        f"/api/v1/executions/{execution_id}/logs/stream",
        headers=headers | ADMIN,
        timeout=30,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("data:"):
                data = json.loads(line[5:].strip())
                events.append((event_id if "seq" in data else None, data))
                event_id = None
                if stop_after is not None and len(events) >= stop_after:
                    break
    return events


async def test_every_action_is_audited(platform: Platform) -> None:
    created = await template(platform, "audited", "true")
    execution = await finished(platform, (await start(platform, "audited")).json()["id"])
    await platform.operation.post(f"/api/v1/executions/{execution['id']}/retry", headers=OPERATOR)
    await platform.operation.delete(f"/api/v1/templates/{created['id']}", headers=ADMIN)
    entries = (await platform.operation.get("/api/v1/audit", headers=ADMIN)).json()["items"]
    assert {entry["action"] for entry in entries} >= {
        "template.create",
        "execution.create",
        "execution.retry",
        "template.delete",
    }
    assert all(entry["request_id"] for entry in entries)
    forbidden = await platform.operation.get("/api/v1/audit", headers=OPERATOR)
    assert forbidden.status_code == 403


@asynccontextmanager
async def calling_out(
    tmp_path: Path, sqs_server: LocalSQSServer, operation_hosts: list[str]
) -> AsyncIterator[tuple[ServedApp, Platform]]:
    """The upstream app, and a platform whose HTTP operations may call it: operation-svc
    lets ``operation_hosts`` through, the worker 127.0.0.1 only."""
    async with (
        ServedApp(upstream_app()) as upstream,
        running_platform(
            "sqlite",
            tmp_path,
            sqs_server,
            operation={"outbound_allowed_hosts": operation_hosts},
            worker={"outbound_allowed_hosts": ["127.0.0.1"]},
        ) as platform,
    ):
        yield upstream, platform


def upstream_app() -> Starlette:
    async def restart(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "restarted": request.path_params["name"],
                "body": await request.json(),
                "reason": request.headers.get("x-reason"),
            }
        )

    async def to_metadata(_request: Request) -> RedirectResponse:
        return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

    async def bomb(_request: Request) -> Response:
        return Response(gzip_bomb(64, b"\n"), headers={"content-encoding": "gzip"})

    async def minified(_request: Request) -> Response:
        return Response(json.dumps({"items": ["x" * 100] * 6000}, separators=(",", ":")))

    async def credentials(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "authorization": request.headers.get("authorization"),
                "x-api-key": request.headers.get("x-api-key"),
                "token": request.query_params.get("token"),
                "password": (await request.json())["password"],
            }
        )

    return Starlette(
        routes=[
            Route("/services/{name}/restart", restart, methods=["POST"]),
            Route("/credentials", credentials, methods=["POST"]),
            Route("/redirect", to_metadata),
            Route("/bomb", bomb),
            Route("/minified", minified),
        ]
    )


async def test_credentials_written_into_an_http_template_are_sent_never_shown(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """An HTTP template takes no secret parameter, so its credentials are literal: every
    viewer read them (template, preview, run) and the audit log kept its Authorization
    header. Shown masked now; an admin's change that sends the masks back keeps them."""
    literals = {
        "authorization": "Bearer literal-tmpl-token",
        "x-api-key": "literal-api-key",
        "token": "literal-query-token",
        "password": "literal-password",
    }
    viewer = auth_headers(roles=("viewer",))
    async with calling_out(tmp_path, sqs_server, ["127.0.0.1"]) as (upstream, platform):
        created = await template(
            platform,
            "call",
            None,
            {"name": "m"},
            operation_type="http",
            http={
                "method": "POST",
                "url": f"{upstream.url}/credentials?tag={{{{m}}}}&token={literals['token']}",
                "headers": {
                    "Authorization": literals["authorization"],
                    "X-API-KEY": literals["x-api-key"],
                    "X-Reason": "{{m}}",
                },
                "body": {"password": literals["password"], "m": "{{m}}"},
            },
        )
        path = f"/api/v1/templates/{created['id']}"
        shown = (await platform.operation.get(path, headers=viewer)).json()["http_spec"]
        assert shown == {
            "method": "POST",
            "url": f"{upstream.url}/credentials?tag={{{{m}}}}&token=***",
            "headers": {"Authorization": "***", "X-API-KEY": "***", "X-Reason": "{{m}}"},
            "body": {"password": "***", "m": "{{m}}"},
        }
        preview = await platform.operation.post(
            f"{path}/preview", json={"parameters": {"m": "x"}}, headers=viewer
        )
        execution = await finished(platform, (await start(platform, "call", m="x")).json()["id"])
        assert json.loads(execution["output"]) == literals
        # The admin's editor sends back what it was shown, with one header changed.
        changed = shown | {"headers": shown["headers"] | {"X-Reason": "changed {{m}}"}}
        patched = await platform.operation.patch(path, json={"http": changed}, headers=ADMIN)
        assert patched.status_code == 200, patched.text
        again = await finished(platform, (await start(platform, "call", m="y")).json()["id"])
        assert json.loads(again["output"]) == literals
        audit = await platform.operation.get("/api/v1/audit", headers=ADMIN)
        runs = [{**run, "output": None} for run in (execution, again)]  # the upstream's echo
        seen = json.dumps([shown, preview.json(), *runs, patched.json(), audit.json()])
        for literal in literals.values():
            assert literal not in seen
        # A new value replaces the stored one; a renamed header's mask stands for nothing.
        renamed = shown | {"headers": {"Authorization": "Bearer new", "X-Other-Key": "***"}}
        patched = await platform.operation.patch(path, json={"http": renamed}, headers=ADMIN)
        assert patched.status_code == 200, patched.text
        third = await finished(platform, (await start(platform, "call", m="z")).json()["id"])
        assert json.loads(third["output"])["authorization"] == "Bearer new"
        assert json.loads(third["output"])["x-api-key"] is None
        # The masks sent to another host (or port) would have sent the credentials there.
        host, port = upstream.url.rsplit(":", 1)
        for url in (f"{host}:{int(port) + 1}/credentials?token=***", "https://[::1/credentials"):
            moved = shown | {"url": url}  # the second no URL at all: it was a 500
            refused = await platform.operation.patch(path, json={"http": moved}, headers=ADMIN)
            assert refused.status_code == 422, refused.text
            assert [error["field"] for error in refused.json()["errors"]] == ["http.url"]


async def test_http_operations_run_under_the_outbound_rules(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    # operation-svc lets localhost through: the worker must still refuse it.
    hosts = ["127.0.0.1", "localhost"]
    async with calling_out(tmp_path, sqs_server, hosts) as (upstream, platform):
        await template(
            platform,
            "restart",
            None,
            {"name": "name"},
            operation_type="http",
            http={
                "method": "POST",
                "url": f"{upstream.url}/services/{{{{name}}}}/restart",
                "headers": {"X-Reason": "asked by {{name}}"},
                "body": {"who": "{{name}}"},
            },
        )
        execution = await finished(
            platform, (await start(platform, "restart", name="api gw?x=1&y#z")).json()["id"]
        )
        assert execution["status"] == "succeeded", (execution["error"], execution["output"])
        assert execution["http_request"]["url"].endswith(
            "/services/api%20gw%3Fx%3D1%26y%23z/restart"
        )
        assert json.loads(execution["output"]) == {
            "restarted": "api gw?x=1&y#z",
            "body": {"who": "api gw?x=1&y#z"},
            "reason": "asked by api gw?x=1&y#z",
        }

        await template(
            platform,
            "metadata",
            None,
            operation_type="http",
            http={"url": f"{upstream.url}/redirect"},
        )
        redirected = await finished(platform, (await start(platform, "metadata")).json()["id"])
        assert redirected["status"] == "failed"
        assert "169.254.169.254" in redirected["error"]

        await template(
            platform,
            "internal",
            None,
            operation_type="http",
            http={"url": f"http://localhost:{upstream.port}/redirect"},
        )
        internal = await finished(platform, (await start(platform, "internal")).json()["id"])
        assert internal["status"] == "failed"
        assert "outbound call refused" in internal["error"]

        await template(
            platform, "inflating", None, operation_type="http", http={"url": f"{upstream.url}/bomb"}
        )
        # 64 MiB of empty lines in 64 KiB: read up to the cap (1 MiB), forwarded up to the
        # lines' cap (20,000), as a command's output would be.
        bomb = await finished(platform, (await start(platform, "inflating")).json()["id"])
        assert bomb["status"] == "succeeded", bomb["error"]
        assert (bomb["output_bytes"], bomb["output_truncated"]) == (1024 * 1024, True)
        tail = await platform.operation.get(
            f"/api/v1/executions/{bomb['id']}/logs", params={"after_seq": 20_000}, headers=ADMIN
        )
        assert [line["message"] for line in tail.json()["items"]] == [
            "[output truncated after 20000 lines, 0 bytes]",
            "[response truncated after 1048576 bytes]",
        ]

        # One line of 600 KB (minified JSON) went out whole, too large for a queue message.
        await template(
            platform,
            "minified",
            None,
            operation_type="http",
            http={"url": f"{upstream.url}/minified"},
        )
        long_line = await finished(platform, (await start(platform, "minified")).json()["id"])
        assert long_line["status"] == "succeeded", long_line["error"]
        assert (long_line["output_bytes"], long_line["output_truncated"]) == (618_011, False)
        pieces = await platform.operation.get(
            f"/api/v1/executions/{long_line['id']}/logs", params={"limit": 100}, headers=ADMIN
        )
        messages = [line["message"] for line in pieces.json()["items"]]
        assert messages[0] == "HTTP 200 OK"
        assert {len(piece) for piece in messages[1:-1]} == {16 * 1024}
        assert "".join(messages[1:]) == json.dumps(
            {"items": ["x" * 100] * 6000}, separators=(",", ":")
        )
