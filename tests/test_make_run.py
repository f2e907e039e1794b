"""The README's run command, from a clean copy of the repository and with every port moved,
brings every service to /readyz 200, serves a panel whose field draws its options from a
data source (every call between services follows the moved ports: nothing reaches a default
port), runs its submission, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from idp_common.auth import mint_token
from idp_common.settings import AuthSettings
from tests.executor_worker.commands import run
from tests.harness import ROOT, free_port

SERVICES = ("PANEL", "OPERATION", "DATASOURCE", "WORKER", "CONSOLE")


def checkout(destination: Path) -> Path:
    """The repository's versioned files, as a fresh clone would have them."""
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = ROOT / name
        if source.exists():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


DEFAULT_PORTS = (8001, 8002, 8003, 8004)


@contextlib.contextmanager
def watched_default_ports() -> Iterator[list[socket.socket]]:
    """Listens on the default ports that are free, to catch a call that ignores a moved one."""
    listeners = []
    for port in DEFAULT_PORTS:
        listener = socket.socket()
        try:
            listener.bind(("127.0.0.1", port))
        except OSError:
            listener.close()
            continue
        listener.listen()
        listener.setblocking(False)
        listeners.append(listener)
    try:
        yield listeners
    finally:
        for listener in listeners:
            listener.close()


def call(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    token = mint_token(AuthSettings(), subject="dev-admin", tenant="demo", roles=["admin"])
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def a_dynamic_field_works(ports: dict[str, int]) -> None:
    """A data source, a panel whose field draws from it, its options and a submission."""
    datasource = f"http://127.0.0.1:{ports['DATASOURCE']}/api/v1"
    panel_svc = f"http://127.0.0.1:{ports['PANEL']}/api/v1"
    source = call(
        "POST",
        f"{datasource}/datasources",
        {
            "slug": "greetings",
            "name": "Greetings",
            "source_type": "static",
            "options": [{"value": "hello", "label": "Hello"}, {"value": "hi", "label": "Hi"}],
        },
    )
    panel = call(
        "POST",
        f"{panel_svc}/panels",
        {
            "slug": "greet",
            "title": "Greet",
            "operation_template": "echo-message",
            "fields": [
                {
                    "name": "message",
                    "label": "Message",
                    "field_type": "select",
                    "data_source": source["id"],
                }
            ],
        },
    )
    options = call("GET", f"{panel_svc}/panels/{panel['id']}/fields/message/options")
    assert [option["value"] for option in options["options"]] == ["hello", "hi"]
    submitted = call(
        "POST", f"{panel_svc}/panels/{panel['id']}/submissions", {"data": {"message": "hi"}}
    )
    deadline = time.monotonic() + 30
    while (submission := call("GET", f"{panel_svc}/submissions/{submitted['id']}"))[
        "status"
    ] != "succeeded":
        assert submission["status"] in ("pending", "running"), submission
        assert time.monotonic() < deadline, submission
        time.sleep(0.2)
    assert submission["output"].strip() == "hi"


def test_make_run_brings_every_service_to_ready_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    repo = checkout(tmp_path / "repo")
    ports = {name: free_port() for name in SERVICES}
    env = (
        {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("VIRTUAL_ENV", "UV_")) and key != "PYTHONPATH"
        }
        | {f"{name}_PORT": str(port) for name, port in ports.items()}
        | {
            "SQS_PORT": str(free_port()),
            "IDP_DATA_DIR": str(tmp_path / "data"),
        }
    )
    log = tmp_path / "make-run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["make", "run"],
            cwd=repo,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "Ctrl-C stops everything" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the platform did not become ready"
            time.sleep(0.5)
        assert all(ready(port) for port in ports.values())
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
        if os.geteuid() == 0:  # commands run under uids of their own
            result, lines = asyncio.run(run(["cat", str(tmp_path / "data/operation-svc.db")]))
            assert result.status == "failed"
            assert lines[-1][1].endswith("operation-svc.db: Permission denied")
        with watched_default_ports() as listeners:
            a_dynamic_field_works(ports)
            for listener in listeners:
                with pytest.raises(BlockingIOError):
                    listener.accept()  # nothing called a default port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        process.wait(timeout=60)
    output_text = log.read_text(errors="replace")
    assert "Development token" in output_text
    assert "stopping the platform" in output_text
    assert not any(ready(port) for port in ports.values())


def test_every_call_between_services_follows_the_moved_ports() -> None:
    """Each setting that names another service (a localhost URL by default) is set by
    make run from the ports it was given."""
    from console.config import ConsoleSettings
    from datasource_svc.config import DatasourceSettings
    from executor_worker.config import WorkerSettings
    from operation_svc.config import OperationSettings
    from panel_svc.config import PanelSettings
    from scripts.run_platform import SERVICE_CALLS

    found = set()
    for settings in (
        PanelSettings,
        OperationSettings,
        DatasourceSettings,
        WorkerSettings,
        AuthSettings,
        ConsoleSettings,
    ):
        prefix = str(settings.model_config.get("env_prefix", ""))
        for name, field in settings.model_fields.items():
            if isinstance(field.default, str) and field.default.startswith("http://127.0.0.1:"):
                found.add(f"{prefix}{name}".upper())
    assert found <= set(SERVICE_CALLS)
