"""idp: the queues, their dead letters and live logs, from a terminal.

Tables for people, ``--json`` for scripts; exit codes: 0 done, 1 refused or failed (the
answer says why), 2 a usage error, 3 the platform cannot be reached or failed."""

from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer
from httpx_sse import connect_sse
from rich.console import Console
from rich.table import Table
from rich.text import Text

from idp_cli.api import FAILED, OK, USAGE, Api, ApiError, answer_of, problem_text

# No locals in a traceback: they hold the credential.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help=__doc__,
    pretty_exceptions_show_locals=False,
)
dlq = typer.Typer(no_args_is_help=True, help="Dead letters: list, show, replay, purge.")
executions = typer.Typer(no_args_is_help=True, help="Executions: follow one's logs.")
app.add_typer(dlq, name="dlq")
app.add_typer(executions, name="executions")
# No markup: the platform's text (a dead letter's type, an error quoting input) is shown as
# it is, never read as rich's [tags] (a "[/]" in it was a MarkupError and a traceback).
console = Console(markup=False, highlight=False)
errors = Console(stderr=True, markup=False, highlight=False)
# What a terminal would obey rather than show: control characters (escape sequences clear the
# screen, retitle the window, write the clipboard; a carriage return overwrites the line)
# and bidirectional overrides, which reorder what is shown.
# JSON escapes the C0 controls itself but leaves the rest as they are.
_OBEYED_BEYOND_C0 = "\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSHOWABLE = re.compile(f"[\x00-\x08\x0a-\x1f{_OBEYED_BEYOND_C0}]")
_UNSHOWABLE_IN_JSON = re.compile(f"[{_OBEYED_BEYOND_C0}]")


def shown(text: str) -> str:
    """``text`` (a run's output, anything the platform answers) as a terminal can show it:
    what it would obey written as an escape (``\\x1b``)."""
    return _UNSHOWABLE.sub(lambda found: found.group().encode("unicode_escape").decode(), text)


def print_json(data: Any) -> None:
    """``data`` as JSON a terminal shows and a script reads back as the same text: what a
    terminal would obey is written as a ``\\uXXXX`` escape."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    escaped = _UNSHOWABLE_IN_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
    console.print(escaped, soft_wrap=True)


def segment(value: str) -> str:
    """``value`` (a queue's name, an id) as one path segment: a ``/``, ``?`` or ``#`` in it,
    or a ``..``, would send the request to another endpoint (a replay to ``delete``)."""
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in {".", ".."} else quoted


class Context:
    def __init__(self, api: Api, as_json: bool) -> None:
        self.api = api
        self.as_json = as_json


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(envvar="IDP_URL", help="operation-svc's URL.")] = (
        "http://127.0.0.1:8002"
    ),
    token: Annotated[str | None, typer.Option(envvar="IDP_TOKEN", help="A JWT.")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="IDP_API_KEY", help="An API key.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts.")] = False,
) -> None:
    ctx.obj = Context(_checked(Api, url, token, api_key), as_json)


def _fail(error: ApiError) -> NoReturn:
    errors.print(shown(str(error)), style="red")
    raise typer.Exit(error.exit_code)


def _checked(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except ApiError as exc:
        _fail(exc)


def _show(ctx: typer.Context, data: Any, columns: list[str], rows: list[list[Any]]) -> None:
    if ctx.obj.as_json:
        print_json(data)
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if cell is None else shown(str(cell)) for cell in row))
    console.print(table)


@app.command()
def queues(ctx: typer.Context) -> None:
    """Every queue: messages visible, in flight, delayed, and its DLQ."""
    found = _checked(ctx.obj.api.get, "/api/v1/queues")
    rows = [
        [
            queue["name"],
            queue["visible"],
            queue["in_flight"],
            queue["delayed"],
            queue["dead_letters"]["depth"],
            queue["dead_letters"]["oldest_age_seconds"],
        ]
        for queue in found
    ]
    columns = ["queue", "visible", "in flight", "delayed", "dead letters", "oldest (s)"]
    _show(ctx, found, columns, rows)


def _letters(ctx: typer.Context, queue: str, **criteria: Any) -> list[dict[str, Any]]:
    given = {key: value for key, value in criteria.items() if value is not None}
    path = f"/api/v1/queues/{segment(queue)}/dead-letters"
    return list(_checked(lambda: list(ctx.obj.api.pages(path, **given))))


TypeOption = Annotated[str | None, typer.Option("--type", help="Only events of this type.")]


@dlq.command("list")
def list_letters(
    ctx: typer.Context,
    queue: str,
    event_type: TypeOption = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's.")] = None,
    reason: Annotated[str | None, typer.Option(help="Text in the failure reason.")] = None,
) -> None:
    """The messages of QUEUE's DLQ (peeked, left in place), oldest failure first."""
    letters = _letters(ctx, queue, type=event_type, tenant=tenant, reason=reason)
    rows = [
        [
            letter["message_id"],
            letter["type"] or "(no event)",
            letter["tenant"],
            letter["failed_at"],
            letter["receive_count"],
            (letter["reason"] or "")[:80],
        ]
        for letter in letters
    ]
    _show(ctx, letters, ["message id", "type", "tenant", "failed at", "receives", "reason"], rows)


@dlq.command()
def show(ctx: typer.Context, queue: str, message_id: str) -> None:
    """One dead letter, whole: why it failed, its event (redacted), its trace id."""
    letter = next((m for m in _letters(ctx, queue) if m["message_id"] == message_id), None)
    if letter is None:
        errors.print(shown(f"no message {message_id} in {queue}-dlq"), style="red")
        raise typer.Exit(FAILED)
    print_json(letter)


def _selection(ids: list[str] | None, everything: bool, event_type: str | None) -> dict[str, Any]:
    given = [bool(ids), everything, event_type is not None]
    if sum(given) != 1:
        errors.print("give exactly one of --id (repeatable), --all or --type", style="red")
        raise typer.Exit(USAGE)
    if ids:
        return {"message_ids": ids}
    return {"all": True} if everything else {"filter": {"type": event_type}}


def _act(ctx: typer.Context, queue: str, action: str, body: dict[str, Any]) -> None:
    """Start a replay or delete; follow it to its end when it runs on, with its progress."""
    path = f"/api/v1/queues/{segment(queue)}/dead-letters/{action}"
    response = _checked(ctx.obj.api.post, path, body)
    result = _checked(answer_of, response)
    while result["status"] == "running":
        if not ctx.obj.as_json:
            errors.print(f"{action}: {result['done']}/{result['matched']}…")
        time.sleep(1)
        result = _checked(ctx.obj.api.get, response.headers["location"])
    if ctx.obj.as_json:
        print_json(result)
    else:
        verb = {"dry_run": "would act on"}.get(result["status"], "done:")
        console.print(
            shown(
                f"{action} {queue}: {verb} {result['done'] or result['matched']} of "
                f"{result['matched']} matched ({result['status']})"
            )
        )
        for message_id in result["message_ids"]:
            console.print(shown(f"  {message_id}"))
    if result["status"] == "failed":
        errors.print(shown(result["error"]), style="red")
        raise typer.Exit(FAILED)


IdsOption = Annotated[list[str] | None, typer.Option("--id", help="A message id (repeatable).")]
AllOption = Annotated[bool, typer.Option("--all", help="Every message you may see.")]


@dlq.command()
def replay(
    ctx: typer.Context,
    queue: str,
    ids: IdsOption = None,
    everything: AllOption = False,
    event_type: TypeOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count and list; move nothing.")
    ] = False,
) -> None:
    """Send dead letters back to QUEUE (throttled); a message replayed twice runs once."""
    _act(ctx, queue, "replay", _selection(ids, everything, event_type) | {"dry_run": dry_run})


@dlq.command()
def purge(
    ctx: typer.Context,
    queue: str,
    ids: IdsOption = None,
    everything: AllOption = False,
    event_type: TypeOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Required: a purge cannot be undone.")] = False,
) -> None:
    """Delete dead letters from QUEUE's DLQ."""
    selection = _selection(ids, everything, event_type)
    if not yes:
        errors.print("a purge cannot be undone: add --yes", style="red")
        raise typer.Exit(USAGE)
    _act(ctx, queue, "delete", selection | {"confirm": True})


@executions.command()
def watch(ctx: typer.Context, execution_id: str) -> None:
    """Follow an execution's logs live until it ends (resuming after a dropped connection);
    exits 0 when it succeeded, 1 otherwise."""
    last_seen = -1
    while True:
        try:
            ended = _follow(ctx.obj.api, execution_id, last_seen)
        except _Dropped as dropped:
            last_seen = dropped.last_seen
            continue
        if not ctx.obj.as_json:
            status = Text(shown(ended["status"]), style="bold")
            console.print(Text.assemble(status, f" (exit code {ended['exit_code']})"))
        raise typer.Exit(OK if ended["status"] == "succeeded" else FAILED)


EVENT_STREAM = "text/event-stream"
# operation-svc pings a live log every 15 s: this long without a byte is a dead connection.
STREAM_SILENCE_SECONDS = 60


class _Dropped(Exception):
    def __init__(self, last_seen: int) -> None:
        self.last_seen = last_seen


def _wait_for_a_free_stream(response: httpx.Response) -> None:
    """The caller holds as many live logs as it may (a 429): say so, wait as told."""
    response.read()
    errors.print(shown(f"waiting for a free log stream: {problem_text(response)}"))
    time.sleep(float(response.headers.get("Retry-After", "5")))


def _follow(api: Api, execution_id: str, after: int) -> dict[str, Any]:
    path = f"/api/v1/executions/{segment(execution_id)}/logs/stream"
    last_seen = after
    try:
        with connect_sse(
            api.client,
            "GET",
            path,
            headers={"Last-Event-ID": str(after)},
            timeout=httpx.Timeout(30, read=STREAM_SILENCE_SECONDS),
        ) as source:
            if source.response.status_code == 429:
                _wait_for_a_free_stream(source.response)
                raise _Dropped(last_seen)
            if not source.response.is_success:
                _checked(api.request, "GET", f"/api/v1/executions/{segment(execution_id)}")
            if not source.response.headers.get("content-type", "").startswith(EVENT_STREAM):
                raise ApiError(f"{source.response.url} answered no event stream", FAILED)
            for event in source.iter_sse():
                if event.event == "end":
                    ended: dict[str, Any] = event.json()
                    return ended
                if event.event == "error":
                    raise ApiError(f"the log stream stopped: {event.json()['detail']}", FAILED)
                if event.event == "log":
                    line = event.json()
                    last_seen = line["seq"]
                    console.print(shown(line["message"]))
            errors.print(f"stream closed before the run ended; resuming after line {last_seen}")
    except ApiError as exc:
        _fail(exc)
    except Exception as exc:
        if isinstance(exc, typer.Exit | _Dropped):
            raise
        errors.print(shown(f"stream dropped ({exc}); resuming after line {last_seen}"))
    # Closed at once again and again (a proxy, a replica stopping) is no reason to hammer it.
    time.sleep(1)
    raise _Dropped(last_seen)


def run() -> None:
    """The ``idp`` command: an answer of a shape it does not know (another service at
    IDP_URL, another version) is an error a person can read, not a traceback."""
    try:
        app()
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        errors.print(
            shown(f"idp: the platform's answer is not what idp reads: {exc!r}"), style="red"
        )
        raise SystemExit(FAILED) from None
