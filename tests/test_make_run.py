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
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        process.wait(timeout=60)
    output_text = log.read_text(errors="replace")
    assert "Development token" in output_text
    assert "stopping the platform" in output_text
    assert not any(ready(port) for port in ports.values())
