"""The executor worker as a real process (two of them on one queue) with the real queue and
real services: outcomes, limits, masking, duplicates, and kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from idp_common.events import ExecutionRequested
from idp_common.runtime import open_messaging
from tests.harness import (
    AUTH,
    SEALING_PRIVATE_KEY,
    SIGNER,
    LocalSQSServer,
    Platform,
    auth_headers,
    eventually,
    free_port,
    running_platform,
    wait_for_port,
    wait_until,
)

# The module starts a platform and two worker processes once: its tests share one xdist worker.
pytestmark = pytest.mark.xdist_group("worker-process")

ADMIN = auth_headers(roles=("admin",))
OPERATOR = auth_headers(roles=("operator",))
ALLOWED = ["echo", "false", "sleep", "sh", "env", "head", "python3", "printf"]
TERMINAL = {"succeeded", "failed", "timed_out", "cancelled", "lost", "rejected"}
WORKER = Path(sys.executable).parent / "executor-worker"


class Workers:
    def __init__(self, platform: Platform, operation_url: str, tmp: Path) -> None:
        self.platform = platform
        self.operation_url = operation_url
        self.tmp = tmp
        self.processes: list[asyncio.subprocess.Process] = []

    async def spawn(self) -> asyncio.subprocess.Process:
        sqs = self.platform.sqs
        port = free_port()
        env = {
            "PATH": os.environ["PATH"],
            "WORKER_ENVIRONMENT": "test",
            "WORKER_PORT": str(port),
            "WORKER_LOG_LEVEL": "WARNING",
            "WORKER_CONCURRENCY": "4",
            "WORKER_OPERATION_API_URL": self.operation_url,
            "WORKER_ALLOWED_EXECUTABLES": json.dumps(ALLOWED),
            "WORKER_LIMIT_MEMORY_BYTES": str(256 * 1024 * 1024),
            "WORKER_LIMIT_PROCESSES": "64",
            "WORKER_OUTPUT_HARD_LIMIT_BYTES": str(16 * 1024 * 1024),
            "WORKER_SHUTDOWN_GRACE_SECONDS": "2",
            "AUTH_JWT_SECRET": AUTH.signing_secret(),
            "WORKER_SEALING_PRIVATE_KEY": SEALING_PRIVATE_KEY,
            "SQS_ENDPOINT_URL": str(sqs.endpoint_url),
            "SQS_ACCESS_KEY_ID": "test",
            "SQS_SECRET_ACCESS_KEY": "test",
            "SQS_QUEUE_PREFIX": sqs.queue_prefix,
            "SQS_RETRY_BASE_SECONDS": "0",
            "IDP_SECRET_ACME__SECRET": 'correct-horse/battery staple&"quoted"',
            "IDP_SECRET_ACME__MULTILINE": "first-secret-line\nsecond-secret-line",
        }
        with (self.tmp / f"worker-{port}.log").open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                WORKER, "serve", env=env, stdout=log, stderr=log
            )
        await asyncio.to_thread(wait_for_port, port, 30)
        self.processes.append(process)
        return process

    async def stop_all(self) -> None:
        """Awaited, not waited for: operation-svc, which a stopping worker still calls, runs
        in this event loop."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):  # exited already
                process.terminate()
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in self.processes)), 30)


@pytest.fixture(scope="module")
async def platform(
    module_tmp_path: Path, sqs_server: LocalSQSServer
) -> AsyncIterator[tuple[Platform, Workers]]:
    async with AsyncExitStack() as stack:
        running = await stack.enter_async_context(
            running_platform(
                "sqlite",
                module_tmp_path,
                sqs_server,
                allowed_executables=ALLOWED,
                with_worker=False,
                operation={"lost_after_seconds": 2, "sweep_interval_seconds": 0.2},
            )
        )
        workers = Workers(running, str(running.operation.base_url).rstrip("/"), module_tmp_path)
        stack.push_async_callback(workers.stop_all)
        await asyncio.gather(workers.spawn(), workers.spawn())
        yield running, workers


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder the children (an unprivileged user when the tests run as root) can use."""
    path = Path(tempfile.mkdtemp(prefix="idp-worker-test-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def api(platform: tuple[Platform, Workers]) -> httpx.AsyncClient:
    return platform[0].operation


async def template(api: httpx.AsyncClient, command: str, **options: Any) -> str:
    slug = f"t-{uuid.uuid4().hex[:8]}"
    response = await api.post(
        "/api/v1/templates",
        json={"slug": slug, "name": slug, "command_template": command} | options,
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    return slug


async def run(
    api: httpx.AsyncClient, slug: str, timeout: float = 30, **parameters: Any
) -> dict[str, Any]:
    created = await api.post(
        "/api/v1/executions", json={"template": slug, "parameters": parameters}, headers=OPERATOR
    )
    assert created.status_code == 202, created.text
    return await wait_done(api, created.json()["id"], timeout)


async def wait_done(
    api: httpx.AsyncClient, execution_id: str, timeout: float = 30
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = (await api.get(f"/api/v1/executions/{execution_id}", headers=ADMIN)).json()
        return body if body["status"] in TERMINAL else None

    return await eventually(probe, timeout=timeout)


async def stdout(api: httpx.AsyncClient, execution_id: str) -> list[str]:
    page = await api.get(
        f"/api/v1/executions/{execution_id}/logs", params={"limit": 1000}, headers=ADMIN
    )
    return [line["message"] for line in page.json()["items"] if line["stream"] == "stdout"]


async def test_outcomes_success_failure_literal_values(api: httpx.AsyncClient) -> None:
    hello = await run(api, await template(api, "echo hello"))
    assert (hello["status"], hello["exit_code"]) == ("succeeded", 0)
    assert await stdout(api, hello["id"]) == ["hello"]
    failed = await run(api, await template(api, "false"))
    assert (failed["status"], failed["exit_code"]) == ("failed", 1)
    literal = await run(api, await template(api, "echo '$(id)' '`id`'"))
    assert await stdout(api, literal["id"]) == ["$(id) `id`"]


async def test_timeout_kills_the_group_and_leaves_no_process(api: httpx.AsyncClient) -> None:
    marker = f"30.{random.randrange(10**8, 10**9)}"  # a unique, valid duration
    slug = await template(api, f"sh -c 'sleep {marker} & sleep 30'", timeout_seconds=1)
    started = time.monotonic()
    execution = await run(api, slug)
    assert execution["status"] == "timed_out"
    assert time.monotonic() - started < 3
    left = await asyncio.to_thread(subprocess.run, ["pgrep", "-f", f"sleep {marker}"])
    assert left.returncode == 1


async def test_cancel_of_a_running_command_ends_it_within_two_seconds(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post(
        "/api/v1/executions", json={"template": await template(api, "sleep 30")}, headers=OPERATOR
    )
    execution_id = created.json()["id"]

    async def running() -> bool:
        body = (await api.get(f"/api/v1/executions/{execution_id}", headers=ADMIN)).json()
        return bool(body["status"] == "running")

    await eventually(running)
    asked = time.monotonic()
    await api.post(f"/api/v1/executions/{execution_id}/cancel", headers=OPERATOR)
    done = await wait_done(api, execution_id)
    assert done["status"] == "cancelled"
    assert time.monotonic() - asked < 2


async def test_a_job_delivered_twice_to_two_workers_runs_once(
    api: httpx.AsyncClient, platform: tuple[Platform, Workers], shared_dir: Path
) -> None:
    tally = shared_dir / "tally"
    tally.touch()
    tally.chmod(0o666)
    slug = await template(
        api,
        f"sh -c 'echo ran >> {tally}; sleep 0.5'",
    )
    created = await api.post("/api/v1/executions", json={"template": slug}, headers=OPERATOR)
    execution = created.json()
    duplicate = ExecutionRequested(
        execution_id=uuid.UUID(execution["id"]),
        template_slug=slug,
        argv=execution["argv"],
        env={},
        timeout_seconds=30,
    ).to_event(source="urn:test", tenant="acme", subject=execution["id"])
    async with open_messaging(platform[0].sqs, SIGNER) as bus:
        for _ in range(3):  # SQS may deliver again; a second worker may get it
            await bus.publisher.publish("operation-jobs", [duplicate])
    done = await wait_done(api, execution["id"])
    assert done["status"] == "succeeded"
    await asyncio.sleep(1.5)  # leave time for the duplicates to be received and dropped
    assert tally.read_text() == "ran\n"


async def test_limits_stop_runaway_commands_and_the_worker_keeps_serving(
    api: httpx.AsyncClient,
) -> None:
    bomb = await run(
        api, await template(api, "sh -c 'while true; do sleep 30 & done'", timeout_seconds=3)
    )
    assert bomb["status"] in {"failed", "timed_out"}
    assert "processes limit (64)" in bomb["error"]
    flood = await run(api, await template(api, f"head -c {1 << 30} /dev/zero"))
    assert (flood["status"], flood["error"]) == ("failed", "output limit (16 MiB) exceeded"), (
        flood["exit_code"],
        flood["output_bytes"],
        flood["output_truncated"],
    )
    assert flood["output_truncated"] is True
    hog = await run(api, await template(api, "python3 -c 'b = bytearray(1 << 30)'"))
    assert (hog["status"], hog["error"]) == ("failed", "stopped by the memory limit (256 MiB)")
    after = await run(api, await template(api, "echo still serving"))
    assert await stdout(api, after["id"]) == ["still serving"]


async def test_env_shows_only_declared_variables(api: httpx.AsyncClient) -> None:
    command = "sh -c 'test -n \"$IDP_PARAM_A\" && env'"
    execution = await run(api, await template(api, command, parameters=[{"name": "a"}]), a="x")
    names = {line.split("=", 1)[0] for line in await stdout(api, execution["id"])}
    assert names == {"PATH", "HOME", "TMPDIR", "LANG", "IDP_PARAM_A", "PWD"}  # PWD: sh sets it


async def test_a_sealed_secret_parameter_is_opened_into_the_environment_only(
    api: httpx.AsyncClient,
) -> None:
    token = f"sealed-param-{uuid.uuid4().hex}"
    slug = await template(
        api,
        "python3 -c 'import os, sys; print(os.environ[\"IDP_PARAM_TOKEN\"]); print(sys.argv)'",
        parameters=[{"name": "token", "type": "secret"}],
    )
    execution = await run(api, slug, token=token)
    assert execution["status"] == "succeeded", execution
    assert await stdout(api, execution["id"]) == ["***", "['-c']"]
    assert token not in json.dumps(execution)


PRINT_SECRET_FORMS = (
    "import base64, json, os, sys, time, urllib.parse\n"
    "s = os.environ['S']\n"
    "print(s)\n"
    "print(base64.b64encode(s.encode()).decode())\n"
    "print(urllib.parse.quote(s, safe=''))\n"
    "print(json.dumps(s))\n"
    "sys.stdout.write('split:' + s[:6]); sys.stdout.flush(); time.sleep(0.3)\n"
    "sys.stdout.write(s[6:] + '\\n'); sys.stdout.flush()\n"
    "print(os.environ['M'])\n"
    "raise SystemExit('failing with ' + s)\n"
)


async def test_secrets_in_every_form_are_masked_in_logs_and_errors(
    api: httpx.AsyncClient, shared_dir: Path
) -> None:
    script = shared_dir / "leak.py"
    script.write_text(PRINT_SECRET_FORMS)
    script.chmod(0o644)
    slug = await template(api, f"python3 {script}")
    template_id = (await api.get("/api/v1/templates", headers=ADMIN)).json()["items"][0]["id"]
    for env_var, key in (("S", "IDP_SECRET_ACME__SECRET"), ("M", "IDP_SECRET_ACME__MULTILINE")):
        secret = await api.post(
            "/api/v1/secrets",
            json={"slug": f"s-{uuid.uuid4().hex[:6]}", "provider": "env", "key": key},
            headers=ADMIN,
        )
        mapped = await api.post(
            f"/api/v1/templates/{template_id}/secrets",
            json={"secret_id": secret.json()["id"], "env_var": env_var},
            headers=ADMIN,
        )
        assert mapped.status_code == 201, mapped.text
    execution = await run(api, slug)
    logs = (await api.get(f"/api/v1/executions/{execution['id']}/logs", headers=ADMIN)).json()
    messages = [line["message"] for line in logs["items"]]
    assert messages[:4] == ["***", "***", "***", '"***"']  # json.dumps keeps its quotes
    assert "split:***" in messages
    assert "***" in messages  # each line of the multi-line secret
    everything = json.dumps([messages, execution])
    for fragment in (
        "correct-horse",
        "battery",
        "first-secret-line",
        "second-secret-line",
        "Y29ycmVjdC1ob3Jz",
    ):
        assert fragment not in everything


def running_commands(argv: list[str]) -> list[int]:
    """The pids of the processes whose command line is ``argv``'s (its program by name)."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            running = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if entry.name.isdigit() and [Path(running[0]).name, *running[1:-1]] == argv:
                found.append(int(entry.name))
    return found


async def test_kill_9_of_a_worker_mid_execution_ends_lost_and_loses_no_other_job(
    api: httpx.AsyncClient, platform: tuple[Platform, Workers]
) -> None:
    """And its command dies with it: left running, nothing would time it out, cancel it or
    read it, and a retry-safe run, declared lost, ran a second time beside it."""
    workers = platform[1]
    slug = await template(api, "sleep 30.25")
    created = await api.post("/api/v1/executions", json={"template": slug}, headers=OPERATOR)
    execution_id = created.json()["id"]

    async def running() -> dict[str, Any] | None:
        body = (await api.get(f"/api/v1/executions/{execution_id}", headers=ADMIN)).json()
        return body if body["status"] == "running" else None

    holder = (await eventually(running))["worker_id"]
    pid = int(holder.rsplit(":", 1)[1])
    assert running_commands(["sleep", "30.25"]) != []
    os.kill(pid, signal.SIGKILL)
    await wait_until(lambda: running_commands(["sleep", "30.25"]) == [], timeout=5)
    lost = await wait_done(api, execution_id, timeout=15)
    assert lost["status"] == "lost"
    survivor = await run(api, await template(api, "echo survived"))
    assert await stdout(api, survivor["id"]) == ["survived"]
    await workers.spawn()  # keep two workers for whatever runs next
