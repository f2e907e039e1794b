"""The operators' command line against a running platform: queues, dead letters listed,
shown, replayed as a dry run, a purge refused without --yes, live logs followed; JSON
output parsed, exit codes checked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from idp_common.messaging.topology import OPERATION_INBOUND_EVENTS, PANEL_SUBMISSIONS
from idp_common.runtime import open_messaging
from operation_svc.config import OperationSettings
from tests.factories import ADMIN, template
from tests.harness import SIGNER, Platform, ServedApp, eventually, token
from tests.test_log_streams import stream_metrics

IDP = Path(sys.executable).parent / "idp"


@pytest.fixture
def platform(echo_platform: Platform) -> Platform:
    return echo_platform


PLATFORM_OPERATOR = token(tenant="ops", roles=("platform-operator",))


async def idp(
    platform: Platform | str,
    *args: str,
    as_token: str = PLATFORM_OPERATOR,
    stop_after: float | None = None,
    **variables: str,
) -> tuple[int, str, str]:
    """Run ``idp`` as an operator would (the platform, or what answers at the URL given,
    runs in this test's event loop); killed after ``stop_after`` seconds, if given."""
    url = platform if isinstance(platform, str) else str(platform.operation.base_url)
    environment = os.environ | {
        "IDP_URL": url.rstrip("/"),
        "IDP_TOKEN": as_token,
        "COLUMNS": "200",
        **variables,
    }
    process = await asyncio.create_subprocess_exec(
        str(IDP),
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), stop_after)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_an_operator_finds_and_handles_dead_letters_from_the_command_line(
    platform: Platform,
) -> None:
    async with open_messaging(platform.sqs, SIGNER) as bus:
        await bus.queues.client.send_message(
            QueueUrl=await bus.queues.url(PANEL_SUBMISSIONS.name), MessageBody="{poison"
        )

    async def listed() -> list[dict[str, Any]]:
        code, out, _ = await idp(platform, "--json", "dlq", "list", PANEL_SUBMISSIONS.name)
        assert code == 0
        letters: list[dict[str, Any]] = json.loads(out)
        return letters

    [letter] = await eventually(listed, timeout=20)
    assert letter["reason"].startswith("invalid event")
    code, out, _ = await idp(platform, "dlq", "show", PANEL_SUBMISSIONS.name, letter["message_id"])
    assert (code, json.loads(out)["body"]) == (0, "{poison")
    code, out, _ = await idp(
        platform, "--json", "dlq", "replay", PANEL_SUBMISSIONS.name, "--all", "--dry-run"
    )
    assert (code, json.loads(out)["matched"], json.loads(out)["status"]) == (0, 1, "dry_run")
    code, _, err = await idp(platform, "dlq", "purge", PANEL_SUBMISSIONS.name, "--all")
    assert code == 2
    assert "--yes" in err
    code, _, err = await idp(platform, "dlq", "replay", PANEL_SUBMISSIONS.name)
    assert code == 2  # no selector
    code, out, _ = await idp(platform, "--json", "queues")
    queues = {queue["name"]: queue for queue in json.loads(out)}
    assert (code, queues[PANEL_SUBMISSIONS.name]["dead_letters"]["depth"]) == (0, 1)
    code, out, _ = await idp(platform, "queues")
    assert PANEL_SUBMISSIONS.name in out
    code, _, err = await idp(platform, "dlq", "list", "no-such-queue")
    assert code == 1
    assert "404" in err


async def test_a_dead_letter_is_listed_as_sent_never_read_as_markup(
    platform: Platform,
) -> None:
    """A producer's event type made ``idp dlq list`` a MarkupError traceback."""
    body = {"specversion": "1.0", "id": "e-1", "source": "orders", "type": "orders[/][red].placed"}
    async with open_messaging(platform.sqs, SIGNER) as bus:
        await bus.queues.client.send_message(
            QueueUrl=await bus.queues.url(OPERATION_INBOUND_EVENTS.name),
            MessageBody=json.dumps(body | {"tenant": "ops", "data": {}}),
        )

    async def listed() -> str | None:
        code, out, err = await idp(platform, "dlq", "list", OPERATION_INBOUND_EVENTS.name)
        assert code == 0, err
        return out if "orders" in out else None

    assert "orders[/][red].placed" in await eventually(listed, timeout=20)


async def test_watch_follows_an_executions_logs_to_its_end(platform: Platform) -> None:
    await template(platform, "hello", "echo hello from the worker", [])
    started = await platform.operation.post(
        "/api/v1/executions", json={"template": "hello"}, headers=ADMIN
    )
    code, out, _ = await idp(
        platform, "executions", "watch", started.json()["id"], as_token=token()
    )
    assert code == 0
    assert "hello from the worker" in out
    assert "succeeded" in out


async def test_watch_shows_a_runs_output_never_obeys_it(platform: Platform) -> None:
    """An escape sequence clears the screen, retitles the window or writes the clipboard; a
    carriage return overwrites the line; U+202E reorders what follows."""
    await template(
        platform, "sly", "echo -e '\\x1b[2J\\x1b]52;c;aGk=\\x07 [/] \\xe2\\x80\\xaex\\r'", []
    )
    started = await platform.operation.post(
        "/api/v1/executions", json={"template": "sly"}, headers=ADMIN
    )
    code, out, err = await idp(
        platform, "executions", "watch", started.json()["id"], as_token=token()
    )
    assert code == 0, err
    assert "\\x1b[2J\\x1b]52;c;aGk=\\x07 [/] \\u202ex\\r" in out
    assert not any(character in out for character in "\x1b\x07\u202e\r")


async def test_watch_waits_for_a_free_log_stream_then_follows(platform: Platform) -> None:
    """The caller already holds as many live logs as it may (runs awaiting approval, whose
    logs stay open): watch says so, waits as the answer says, and follows once one closes."""
    approval = {"required": 1, "approver_roles": ["admin"], "expires_after_seconds": 3600}
    await template(platform, "gated", "echo gated", [], approval=approval)
    await template(platform, "hello", "echo hello from the worker", [])
    gated = await platform.operation.post(
        "/api/v1/executions", json={"template": "gated"}, headers=ADMIN
    )
    url = f"/api/v1/executions/{gated.json()['id']}/logs/stream"
    started = await platform.operation.post(
        "/api/v1/executions", json={"template": "hello"}, headers=ADMIN
    )
    _, refused_before = await stream_metrics(platform)

    async def refused() -> bool:
        return (await stream_metrics(platform))[1] > refused_before

    async with contextlib.AsyncExitStack() as held:  # ADMIN is token()'s caller
        for _ in range(OperationSettings().log_streams_per_caller):
            await held.enter_async_context(platform.operation.stream("GET", url, headers=ADMIN))
        watching = asyncio.create_task(
            idp(platform, "executions", "watch", started.json()["id"], as_token=token())
        )
        assert await eventually(refused)
    code, out, err = await watching
    assert code == 0, err
    assert "hello from the worker" in out
    assert "waiting for a free log stream: HTTP 429: 20 live log streams of this caller" in err


def odd_service() -> Starlette:
    """What may answer at IDP_URL by mistake: a web page, JSON of other shapes, no stream."""

    async def page(_request: Request) -> Response:
        return HTMLResponse("<!doctype html><title>console</title>")

    async def listed(_request: Request) -> Response:
        return JSONResponse({"items": [{"name": "q"}], "next_cursor": None})

    async def refused(_request: Request) -> Response:
        return JSONResponse([{"detail": "a list"}], status_code=400)

    return Starlette(
        routes=[
            Route("/page/api/v1/queues", page),
            Route("/shapes/api/v1/queues", listed),
            Route("/shapes/api/v1/queues/q/dead-letters", listed),
            Route("/refused/api/v1/queues", refused),
            Route("/page/api/v1/executions/{rest:path}", page),
        ]
    )


@pytest.mark.parametrize(
    ("at", "args", "code", "says"),
    [
        ("page", ["queues"], 1, "without JSON: is IDP_URL operation-svc's address?"),
        ("shapes", ["queues"], 1, "the platform's answer is not what idp reads"),
        ("shapes", ["dlq", "list", "q"], 1, "the platform's answer is not what idp reads"),
        ("refused", ["queues"], 1, 'HTTP 400: [{"detail":"a list"}]'),
        ("page", ["executions", "watch", "e-1"], 1, "answered no event stream"),
    ],
)
async def test_an_answer_idp_cannot_read_is_an_error_not_a_traceback(
    at: str, args: list[str], code: int, says: str
) -> None:
    async with ServedApp(odd_service()) as served:
        exit_code, _, err = await idp(f"{served.url}/{at}", *args)
    assert (exit_code, "Traceback" in err) == (code, False), err
    assert says in err


async def test_a_url_that_is_no_url_is_a_usage_error_that_never_shows_the_key() -> None:
    """It was a traceback showing its locals: the API key in full."""
    key = "idp_secret-key-never-shown-0123456789"
    exit_code, out, err = await idp("http://[::1", "queues", as_token="", IDP_API_KEY=key)
    assert exit_code == 2, err
    assert "is not a URL" in err
    assert key not in out + err


SLY_TEXT = "a\u202eb\u009b31m\u001b[2J"


def sly_letters() -> Starlette:
    """A DLQ whose letter carries what a terminal would obey beyond the C0 controls: a
    bidirectional override and the one-character CSI (U+009B)."""
    letter: dict[str, Any] = {"message_id": "m-1", "type": "t", "tenant": "ops"}
    letter |= {"failed_at": "now", "receive_count": 1, "reason": SLY_TEXT, "body": SLY_TEXT}

    async def listed(_request: Request) -> Response:
        return JSONResponse({"items": [letter], "next_cursor": None})

    return Starlette(routes=[Route("/api/v1/queues/q/dead-letters", listed)])


@pytest.mark.parametrize(
    "args", [["dlq", "show", "q", "m-1"], ["--json", "dlq", "list", "q"]], ids=["show", "json"]
)
async def test_json_output_escapes_what_a_terminal_would_obey(args: list[str]) -> None:
    """JSON escapes only the C0 controls: U+202E and U+009B reached the terminal raw."""
    async with ServedApp(sly_letters()) as served:
        code, out, err = await idp(served.url, *args)
    assert code == 0, err
    assert not any(character in out for character in "\u202e\u009b\u001b")
    assert "\\u202e" in out
    shown = json.loads(out)
    assert (shown if isinstance(shown, dict) else shown[0])["reason"] == SLY_TEXT


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (
            ["dlq", "replay", "q/dead-letters/delete#", "--all"],
            "/api/v1/queues/q%2Fdead-letters%2Fdelete%23/dead-letters/replay",
        ),
        (["dlq", "list", ".."], "/api/v1/queues/%2E%2E/dead-letters"),
        (["executions", "watch", "../queues?"], "/api/v1/executions/..%2Fqueues%3F/logs/stream"),
    ],
    ids=["replay-as-delete", "dot-segment", "watch"],
)
async def test_a_name_given_is_one_path_segment_never_another_endpoint(
    args: list[str], path: str
) -> None:
    """A queue named ``q/dead-letters/delete#`` turned a replay into a delete."""
    reached: list[str] = []

    async def refused(request: Request) -> Response:
        reached.append(request.scope["raw_path"].decode())
        return JSONResponse({"detail": "no such thing"}, status_code=404)

    methods = ["GET", "POST"]
    async with ServedApp(Starlette(routes=[Route("/{p:path}", refused, methods=methods)])) as app:
        code, _, err = await idp(app.url, *args)
    assert (code, reached[0]) == (1, path), err


async def test_a_location_on_another_origin_is_not_followed_with_the_credential() -> None:
    """A replay's 202 Location naming another host got the caller's token sent there."""
    credentials_seen: list[str | None] = []

    async def elsewhere(request: Request) -> Response:
        credentials_seen.append(request.headers.get("authorization"))
        return JSONResponse({"status": "succeeded", "done": 0, "matched": 0, "message_ids": []})

    async with ServedApp(Starlette(routes=[Route("/taken", elsewhere)])) as other:

        async def started(_request: Request) -> Response:
            running = {"status": "running", "done": 0, "matched": 1, "message_ids": []}
            return JSONResponse(running, 202, headers={"Location": f"{other.url}/taken"})

        route = Route("/api/v1/queues/q/dead-letters/replay", started, methods=["POST"])
        async with ServedApp(Starlette(routes=[route])) as operation:
            code, _, err = await idp(operation.url, "dlq", "replay", "q", "--all")
    assert (code, credentials_seen) == (1, []), err
    assert "another origin" in err


def closing_streams(opened: list[int], *events: bytes) -> Starlette:
    """A live log that sends ``events`` and closes, each time it is opened."""

    async def stream(_request: Request) -> Response:
        opened.append(1)
        return Response(b"".join(events), media_type="text/event-stream")

    return Starlette(routes=[Route("/api/v1/executions/e-1/logs/stream", stream)])


async def test_watch_resumes_a_stream_closed_before_the_end_without_hammering_it() -> None:
    """A stream closed without its end was reopened at once, thousands of times a second."""
    opened: list[int] = []
    async with ServedApp(closing_streams(opened)) as served:
        await idp(served.url, "executions", "watch", "e-1", stop_after=3)
    assert 1 <= len(opened) <= 4


async def test_watch_ends_with_the_reason_a_stream_stopped() -> None:
    """The ``error`` event (the key revoked, the token expired) was ignored."""
    stopped = b'event: error\ndata: {"detail": "the API key was revoked"}\n\n'
    async with ServedApp(closing_streams([], stopped)) as served:
        code, _, err = await idp(served.url, "executions", "watch", "e-1")
    assert code == 1
    assert "the log stream stopped: the API key was revoked" in err
