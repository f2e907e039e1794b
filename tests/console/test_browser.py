"""The web console in a real browser (Debian's Chromium driven by playwright-core): each test
runs one scenario script of services/console/web/e2e against the platform and the console
server on real ports, then checks what the services recorded. The scenarios also check every
page they visit with axe (no serious or critical violation) and fail on any console error.
SCREENSHOTS_DIR=docs/screenshots makes them write the README's screenshots."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.app import create_app as create_console
from console.config import ConsoleSettings
from idp_common.messaging.envelope import Event, encode_event
from idp_common.messaging.topology import PANEL_SUBMISSIONS
from operation_svc.config import OperationSettings, WebhookSettings
from tests.console.fake_identity_provider import FakeIdentityProvider
from tests.console.relay import StreamCutter
from tests.factories import template
from tests.harness import (
    AUTH,
    ROOT,
    LocalSQSServer,
    Platform,
    ServedApp,
    auth_headers,
    eventually,
    running_platform,
    token,
)
from tests.test_datasources import Upstream, source
from tests.test_dead_letters import send
from tests.test_dynamic_fields import cloud_panel
from tests.test_log_streams import stream_metrics

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

E2E = ROOT / "services" / "console" / "web" / "e2e"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ADMIN = auth_headers(roles=("admin",))
SCENARIO_TIMEOUT_SECONDS = 90
TEMPLATES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "scale": (
        "sh -c 'for step in 1 2 3 4 5; do"
        ' echo "scaling $IDP_PARAM_CLUSTER in $IDP_PARAM_REGION: step $step"; sleep 0.3; done\'',
        [{"name": "region"}, {"name": "cluster"}],
    ),
    "rotate": (
        "sh -c 'echo \"rotating $IDP_PARAM_ACCOUNT to $IDP_PARAM_PASSWORD\"'",
        [{"name": "account"}, {"name": "password", "type": "secret"}],
    ),
    "count": ("sh -c 'for i in $(seq 1 30); do echo \"line $i\"; sleep 0.15; done'", []),
    "nap": ("sh -c 'echo started; sleep 60'", []),
    "colours": (
        "sh -c 'printf \"\\033[31mred\\033[0m \\033[1;38;5;208mbold orange\\033[0m"
        " \\033[2Jcleared? \\033]52;c;aGk=\\007 \\342\\200\\256x\\n\"'",
        [],
    ),
    "restart": ("echo restarting {{service}}", [{"name": "service"}]),
    "words": (
        "echo {{code}} {{word}} {{contact}} {{link}}",
        [{"name": "code"}, {"name": "word"}, {"name": "contact"}, {"name": "link"}],
    ),
}
# Templates that wait for an admin's approval.
APPROVALS = {"restart": {"required": 1, "approver_roles": ["admin"], "expires_after_seconds": 3600}}


@dataclass
class ConsoleUnderTest:
    platform: Platform
    upstream: Upstream
    cutter: StreamCutter
    url: str
    panels: dict[str, str]
    upstream_url: str = ""


async def simple_panel(
    platform: Platform, template: str, title: str, fields: list[dict[str, Any]]
) -> str:
    created = await platform.panel.post(
        "/api/v1/panels",
        json={
            "slug": f"{template}-{uuid.uuid4().hex[:6]}",
            "title": title,
            "operation_template": template,
        }
        | {"fields": fields, "category": "Maintenance"},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/ensure-backing-services.sh installs it")
    return CHROMIUM


@pytest.fixture(scope="module")
async def console(
    chromium: Path, module_tmp_path: Path, sqs_server: LocalSQSServer
) -> AsyncIterator[ConsoleUnderTest]:
    upstream = Upstream()
    async with (
        ServedApp(upstream.app) as upstream_app,
        running_platform(
            "sqlite",
            module_tmp_path,
            sqs_server,
            allowed_executables=["echo", "sh"],
            with_datasource=True,
            operation={"webhook": WebhookSettings(allowed_hosts=["127.0.0.1"], poll_seconds=0.5)},
        ) as platform,
        StreamCutter(httpx.URL(str(platform.operation.base_url)).port or 80) as cutter,
    ):
        for slug, (command, parameters) in TEMPLATES.items():
            await template(platform, slug, command, parameters, approval=APPROVALS.get(slug))
        assert platform.datasource is not None
        panels = {
            "scale": await cloud_panel(platform.panel, platform.datasource, upstream_app.url),
            "rotate": await simple_panel(
                platform,
                "rotate",
                "Rotate a password",
                [
                    {"name": "account", "label": "Account", "help_text": "The service account."},
                    {"name": "password", "label": "New password", "field_type": "secret"},
                ],
            ),
            "count": await simple_panel(platform, "count", "Count to thirty", []),
            "words": await simple_panel(
                platform,
                "words",
                "Check values",
                [  # RE2 that a JavaScript RegExp refuses, and one it backtracks on
                    {"name": "code", "label": "Code", "pattern": "(?i)[a-z]+"},
                    {"name": "word", "label": "Word", "pattern": "(a+)+"},
                    {"name": "contact", "label": "Contact", "field_type": "email"},
                    {"name": "link", "label": "Link", "field_type": "url"},
                ],
            ),
            "nap": await simple_panel(platform, "nap", "Take a long nap", []),
            "colours": await simple_panel(platform, "colours", "Print in colour", []),
        }
        settings = ConsoleSettings(
            panel_api_url=str(platform.panel.base_url).rstrip("/"),
            operation_api_url=cutter.url,
            datasource_api_url=str(platform.datasource.base_url).rstrip("/"),
            jaeger_url="http://jaeger.invalid:16686",
            auth=AUTH,
            dev_platform=True,
            dev_tenant="acme",
            dev_subject="alice",
        )
        async with ServedApp(create_console(settings)) as served:
            yield ConsoleUnderTest(platform, upstream, cutter, served.url, panels, upstream_app.url)


async def run_scenario(name: str, console: ConsoleUnderTest, tmp_path: Path, **given: Any) -> Any:
    """Runs e2e/<name>.mjs (the services keep serving meanwhile: they run in this loop)."""
    shots = os.environ.get("SCREENSHOTS_DIR")
    env = os.environ | {
        "SCENARIO_INPUT": json.dumps({"console": console.url, **given}),
        "FAILURE_DIR": str(tmp_path),
        "CHROMIUM_PATH": str(CHROMIUM),
    }
    if shots:
        env["SCREENSHOTS_DIR"] = str((ROOT / shots).resolve())
    process = await asyncio.create_subprocess_exec(
        "node",
        str(E2E / f"{name}.mjs"),
        cwd=E2E,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), SCENARIO_TIMEOUT_SECONDS)
    output = stdout.decode()
    assert process.returncode == 0, (
        f"{name} failed (screenshot in {tmp_path}):\n{output}{stderr.decode()}"
    )
    result = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(result.removeprefix("RESULT "))


async def test_a_dependent_form_is_filled_submitted_and_its_log_followed_live(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    result = await run_scenario("dynamic_form_run", console, tmp_path, panelTitle="Scale a cluster")
    # Each region's clusters were asked for when it was chosen.
    assert console.upstream.calls["clusters:eu"] >= 1
    assert console.upstream.calls["clusters:us"] >= 1
    submission = (
        await console.platform.panel.get(
            f"/api/v1/submissions/{result['submission']}", headers=ADMIN
        )
    ).json()
    assert submission["status"] == "succeeded"
    assert submission["data"] == {"region": "us", "cluster": "us-1"}
    assert submission["submitted_by"] == "alice"
    assert [text for _, text in result["lines"]] == [
        f"scaling us-1 in us: step {step}" for step in range(1, 6)
    ]


async def submissions_of(console: ConsoleUnderTest, panel: str) -> list[dict[str, Any]]:
    listed = await console.platform.panel.get(
        "/api/v1/submissions", params={"panel_id": console.panels[panel]}, headers=ADMIN
    )
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


async def test_a_server_field_error_shows_on_its_field_and_a_double_click_submits_once(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    result = await run_scenario("field_errors", console, tmp_path, panelTitle="Rotate a password")
    assert [s["id"] for s in await submissions_of(console, "rotate")] == [result["submission"]]


async def test_fields_are_checked_in_the_browser_as_the_server_checks_them(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    """Patterns as RE2: ``(?i)`` is a flag (a JavaScript RegExp refused it, and the form could
    not be submitted), and ``(a+)+`` against 41 characters answers at once (a JavaScript
    RegExp backtracked for minutes, the tab frozen). Formats no stricter than the server's:
    ajv's own refused ``jörg@bücher.de`` and ``https://bücher.de/``, which the API takes."""
    result = await run_scenario("form_checks", console, tmp_path, panelTitle="Check values")
    submission = (
        await console.platform.panel.get(
            f"/api/v1/submissions/{result['submission']}", headers=ADMIN
        )
    ).json()
    assert submission["data"] == {
        "code": "AbC",
        "word": "aaaa",
        "contact": "j\u00f6rg@b\u00fccher.de",
        "link": "https://b\u00fccher.de/",
    }


async def test_the_log_stream_resumes_after_its_connection_is_cut(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    console.cutter.arm(after_seconds=1.5)
    result = await run_scenario("follow_log", console, tmp_path, panelTitle="Count to thirty")
    assert console.cutter.cuts == 1
    assert [text for _, text in result["lines"]] == [f"line {i}" for i in range(1, 31)]
    assert "Connection lost; reconnecting…" in result["states"]
    # The browser asked again from the last line it had shown.
    resumed = console.cutter.stream_requests[-1].decode(errors="replace").lower()
    shown_before_cut = [seq for seq, _ in result["lines"]]
    assert "last-event-id: " in resumed
    last_event_id = int(resumed.split("last-event-id: ")[1].split("\r\n")[0])
    assert last_event_id in shown_before_cut[:-1]


async def test_a_log_is_coloured_as_a_terminal_colours_it_and_shows_what_a_terminal_obeys(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    """SGR colours and weights are shown; another escape sequence (one that clears the
    screen is dropped, as a terminal shows nothing for it; one that writes the clipboard is
    written out) and a right-to-left override (it reordered what followed) show as escapes."""
    [line] = await run_scenario("log_colours", console, tmp_path, panelTitle="Print in colour")
    assert line["text"] == "red bold orange cleared? \\x1b]52;c;aGk=\\x07 \\u202ex"
    parts = {text: (colour, weight) for text, colour, weight in line["parts"]}
    assert parts["red"] == ("rgb(255, 123, 114)", "400")  # --ansi-red
    assert parts["bold orange"] == ("rgb(255, 135, 0)", "700")  # xterm 208


async def test_a_log_waits_for_a_free_stream_then_follows_the_run(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    """The person already holds as many live logs as one may (a tab each): the run's page
    says it waits for one to close, and follows the run once one has."""
    platform = console.platform
    napping = await platform.operation.post(
        "/api/v1/executions", json={"template": "nap"}, headers=ADMIN
    )
    url = f"/api/v1/executions/{napping.json()['id']}/logs/stream"
    _, refused_before = await stream_metrics(platform)

    async def page_refused() -> bool:
        return (await stream_metrics(platform))[1] > refused_before

    async with contextlib.AsyncExitStack() as tabs:  # the browser signs in as ADMIN's alice
        for _ in range(OperationSettings().log_streams_per_caller):
            await tabs.enter_async_context(platform.operation.stream("GET", url, headers=ADMIN))
        following = asyncio.create_task(
            run_scenario("follow_log", console, tmp_path, panelTitle="Count to thirty")
        )
        assert await eventually(page_refused)
    result = await following
    assert [text for _, text in result["lines"]] == [f"line {i}" for i in range(1, 31)]
    waiting = "Waiting for a free log stream: 20 live log streams of this caller are open"
    assert any(state.startswith(waiting) for state in result["states"]), result["states"]
    await platform.operation.post(
        f"/api/v1/executions/{napping.json()['id']}/cancel", headers=ADMIN
    )


async def test_a_long_run_is_cancelled_and_the_cancelled_run_retried_from_the_page(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    result = await run_scenario("cancel_retry", console, tmp_path, panelTitle="Take a long nap")
    retry = (
        await console.platform.operation.get(f"/api/v1/executions/{result['retry']}", headers=ADMIN)
    ).json()
    original = (
        await console.platform.operation.get(
            f"/api/v1/executions/{retry['retry_of']}", headers=ADMIN
        )
    ).json()
    assert (original["status"], retry["status"], retry["attempt"]) == ("cancelled", "cancelled", 2)


async def test_a_viewer_has_no_submit_button_and_the_console_works_by_keyboard_and_on_a_phone(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    await run_scenario("viewer", console, tmp_path, panelTitle="Scale a cluster")


async def test_an_address_with_broken_escapes_is_a_page_not_found(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    await run_scenario("malformed_address", console, tmp_path)


async def test_a_token_that_lasts_longer_than_a_browser_timer_keeps_its_session(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    settings = ConsoleSettings(
        panel_api_url=str(console.platform.panel.base_url).rstrip("/"),
        auth=AUTH,
        dev_platform=True,
        dev_token_ttl_seconds=30 * 24 * 3600,
    )
    async with ServedApp(create_console(settings)) as served:
        await run_scenario(
            "long_session", ConsoleUnderTest(**(vars(console) | {"url": served.url})), tmp_path
        )


async def test_a_poison_message_is_shown_and_replayed_after_a_dry_run(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    poison = Event(
        type="panel.submission.created", source="urn:console-test", tenant="acme", data={}
    )
    await send(console.platform, PANEL_SUBMISSIONS.name, encode_event(poison))
    dead_letters = f"/api/v1/queues/{PANEL_SUBMISSIONS.name}/dead-letters"

    async def reason() -> str | None:
        listed = await console.platform.operation.get(dead_letters, headers=ADMIN)
        items = listed.json()["items"]
        return str(items[0]["reason"]) if items else None

    why = await eventually(reason, timeout=30)
    await run_scenario(
        "dead_letters", console, tmp_path, queue=PANEL_SUBMISSIONS.name, reason=why[:40]
    )
    audit = await console.platform.operation.get(
        "/api/v1/audit", params={"action": "dead_letters.replay"}, headers=ADMIN
    )
    # The dry run is not an action; the confirmed replay is, once.
    assert [entry["object_id"] for entry in audit.json()["items"]] == [PANEL_SUBMISSIONS.name]


async def test_an_admin_approves_from_the_inbox_and_pauses_a_schedule(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    operation = console.platform.operation
    requested = await operation.post(
        "/api/v1/executions",
        json={"template": "restart", "parameters": {"service": "billing api"}},
        headers=auth_headers(roles=("operator",), subject="bob"),
    )
    assert requested.json()["status"] == "awaiting_approval", requested.text
    schedule = await operation.post(
        "/api/v1/schedules",
        json={
            "template": "nap",
            "name": "nightly-nap",
            "cron": "0 3 * * *",
            "timezone": "Europe/Paris",
        },
        headers=ADMIN,
    )
    assert schedule.status_code == 201, schedule.text
    await run_scenario(
        "operator_pages",
        console,
        tmp_path,
        template="restart",
        argv="echo restarting 'billing api'",
        schedule="nightly-nap",
    )
    execution = (
        await operation.get(f"/api/v1/executions/{requested.json()['id']}", headers=ADMIN)
    ).json()
    assert execution["status"] != "awaiting_approval"
    paused = (
        await operation.get(f"/api/v1/schedules/{schedule.json()['id']}", headers=ADMIN)
    ).json()
    assert paused["is_paused"] is True


async def test_an_admin_makes_a_template_with_its_preview_a_panel_on_it_and_runs_it(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    result = await run_scenario("admin_pages", console, tmp_path)
    assert [text for _, text in result["lines"]] == ["hello console"]
    keys = (await console.platform.operation.get("/api/v1/api-keys", headers=ADMIN)).json()
    (key,) = [each for each in keys["items"] if each["name"] == "ci"]
    assert result["keyPrefix"].startswith(key["prefix"])


async def test_in_production_people_sign_in_with_oidc_and_pkce(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    access_token = token(roles=("operator",), subject="carol")
    provider = FakeIdentityProvider(issuer="", access_token=access_token, subject="carol")
    async with ServedApp(provider.app()) as identity:
        provider.issuer = identity.url
        production = ConsoleSettings(
            environment="production",
            oidc_authority=identity.url,
            oidc_client_id="idp-console",
            panel_api_url=str(console.platform.panel.base_url).rstrip("/"),
        )
        async with ServedApp(create_console(production)) as served:
            result = await run_scenario(
                "oidc_sign_in",
                ConsoleUnderTest(**(vars(console) | {"url": served.url})),
                tmp_path,
                accessToken=access_token,
            )
    assert len(provider.verified) == 1, "the code was redeemed with its PKCE verifier"
    assert result["who"].startswith("carol (operator, acme)")
    # Signing out ends the provider's session too (else the next "Sign in" in that browser
    # was let straight back in as carol), naming her ID token, and comes back to the console.
    (signed_out,) = provider.signed_out
    assert signed_out["id_token_hint"]
    assert signed_out["post_logout_redirect_uri"] == f"{served.url}/"


async def test_an_admin_edits_a_template_sees_its_preview_follow_and_runs_the_new_command(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    operation = console.platform.operation
    created = await operation.post(
        "/api/v1/templates",
        json={
            "slug": "farewell",
            "name": "Bid farewell",
            "command_template": "echo hello {{who}}",
            "parameters": [{"name": "who", "pattern": "^[a-z]+$"}],
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    result = await run_scenario("template_edit", console, tmp_path, templateName="Bid farewell")
    assert [text for _, text in result["lines"]] == ["goodbye console"]
    saved = (await operation.get(f"/api/v1/templates/{created.json()['id']}", headers=ADMIN)).json()
    assert saved["version"] == 2, "the refused change made no version"
    assert saved["command_template"] == "echo goodbye {{who}}"
    assert (saved["timeout_seconds"], saved["allowed_roles"]) == (120, ["admin", "operator"])
    # The parameter kept its constraint through the edit.
    assert saved["parameters"][0]["pattern"] == "^[a-z]+$"


async def test_an_admin_adds_a_dependent_select_to_a_panel_and_its_form_follows_the_region(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    assert console.platform.datasource is not None
    datasources = console.platform.datasource
    regions = await source(
        datasources,
        name="Regions",
        endpoint_url=f"{console.upstream_url}/regions",
        items_path="items",
        value_expr="id",
        label_expr="name",
    )
    clusters = await source(
        datasources,
        slug="widen-clusters",
        name="Clusters",
        endpoint_url=f"{console.upstream_url}/clusters",
        query={"region": "{{region}}"},
        items_path="clusters",
        value_expr="name",
    )
    await template(
        console.platform,
        "widen",
        "echo widening {{region}} {{cluster}}",
        [{"name": "region"}, {"name": "cluster", "required": False}],
    )
    panel = await simple_panel(
        console.platform,
        "widen",
        "Widen a cluster",
        [{"name": "region", "label": "Region", "field_type": "select", "data_source": regions}],
    )
    await run_scenario(
        "panel_edit",
        console,
        tmp_path,
        panelTitle="Widen a cluster",
        sourceLabel="Clusters (widen-clusters)",
    )
    saved = (await console.platform.panel.get(f"/api/v1/panels/{panel}", headers=ADMIN)).json()
    assert [field["name"] for field in saved["fields"]] == ["cluster", "region"]
    cluster = saved["fields"][0]
    assert (cluster["field_type"], cluster["data_source"], cluster["depends_on"]) == (
        "select",
        clusters,
        ["region"],
    )
    assert (cluster["label"], cluster["help_text"], cluster["options"]) == (
        "Cluster",
        "Where to scale.",
        None,
    )


async def test_an_admin_creates_a_data_source_tests_it_and_changes_its_mapping(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    await run_scenario("data_sources", console, tmp_path, upstream=console.upstream_url)
    assert console.platform.datasource is not None
    listed = await console.platform.datasource.get("/api/v1/datasources?limit=200", headers=ADMIN)
    (made,) = [each for each in listed.json()["items"] if each["slug"] == "console-regions"]
    assert (made["endpoint_url"], made["items_path"], made["value_expr"]) == (
        f"{console.upstream_url}/regions",
        "items",
        "id",
    )
    assert (made["label_expr"], made["ttl_seconds"]) == ("id", 60)


async def test_an_admin_creates_a_schedule_sees_its_next_fires_and_a_webhook_s_secret_once(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    operation = console.platform.operation
    await template(console.platform, "ping", "echo ping", [])
    watched = await operation.post(
        "/api/v1/webhooks",
        json={
            "url": f"{console.upstream_url}/hook",
            "description": "Watches the pings",
            "event_types": ["operation.execution.finished"],
            "templates": ["ping"],
        },
        headers=ADMIN,
    )
    assert watched.status_code == 201, watched.text
    ran = await operation.post("/api/v1/executions", json={"template": "ping"}, headers=ADMIN)
    assert ran.status_code in (201, 202), ran.text
    result = await run_scenario(
        "schedules_webhooks",
        console,
        tmp_path,
        template="nap",
        hookUrl=f"{console.upstream_url}/console-hook",
        watchedDescription="Watches the pings",
    )
    schedules = (await operation.get("/api/v1/schedules?limit=200", headers=ADMIN)).json()
    (made,) = [each for each in schedules["items"] if each["name"] == "console-nightly"]
    assert (made["cron"], made["timezone"]) == ("30 2 * * *", "Europe/Paris")
    assert (made["overlap_policy"], made["misfire_policy"]) == ("queue_one", "run_once")
    hooks = (await operation.get("/api/v1/webhooks?limit=200", headers=ADMIN)).json()["items"]
    (hook,) = [each for each in hooks if each["description"] == "The console's own"]
    assert set(hook["event_types"]) == {
        "operation.execution.finished",
        "operation.execution.failed",
    }
    assert "secret" not in hook
    assert result["secret"].startswith("whsec_")
    deliveries = await operation.get(
        f"/api/v1/webhooks/{watched.json()['id']}/deliveries", headers=ADMIN
    )
    (delivery,) = deliveries.json()["items"]
    # The resend made an attempt of its own.
    assert "manual" in [attempt["trigger"] for attempt in delivery["attempt_log"]]
