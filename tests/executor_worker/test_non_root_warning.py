"""A worker that is not root says at start what its runs then share."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tests.harness import LocalSQSServer, running_platform


@pytest.mark.parametrize("euid", [0, 10001])
async def test_a_non_root_worker_warns_that_runs_share_its_uid(
    euid: int,
    tmp_path: Path,
    sqs_server: LocalSQSServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    with caplog.at_level(logging.WARNING, logger="executor_worker.app"):
        async with running_platform("sqlite", tmp_path, sqs_server):
            pass
    warned = [r.getMessage() for r in caplog.records if r.name == "executor_worker.app"]
    if euid == 0:
        assert warned == []
    else:
        assert warned == [
            "the worker is not root: runs share its uid 10001, so they can read each other's "
            "/proc, and processes a run leaves outside its group are not killed"
        ]
