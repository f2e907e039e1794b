"""The README's run command, from a clean copy of the repository, brings every service to
/readyz 200 and stops cleanly on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.harness import ROOT, free_port

SERVICES = ("PANEL", "OPERATION", "DATASOURCE", "WORKER")


def checkout(destination: Path) -> Path:
    """The repository's versioned files, as a fresh clone would have them."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True  # noqa: S607
    ).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.exists():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def test_make_run_brings_every_service_to_ready_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    repo = checkout(tmp_path / "repo")
    ports = {name: free_port() for name in SERVICES}
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("VIRTUAL_ENV", "UV_")) and key != "PYTHONPATH"
    } | {f"{name}_PORT": str(port) for name, port in ports.items()} | {
        "SQS_PORT": str(free_port()),
        "IDP_DATA_DIR": str(tmp_path / "data"),
    }
    process = subprocess.Popen(
        ["make", "run"],  # noqa: S607
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not all(ready(port) for port in ports.values()):
            assert process.poll() is None, process.stdout.read().decode()[-3000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the platform did not become ready"
            time.sleep(0.5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output = process.communicate(timeout=60)[0].decode()
    assert "Development token" in output
    assert "stopping the platform" in output
    assert not any(ready(port) for port in ports.values())
