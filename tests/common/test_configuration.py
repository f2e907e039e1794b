"""Configuration a newcomer can find: lists as JSON or commas, a bad setting named by its
variable in one line, and a README table of every setting that cannot drift."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.settings_table import README, SERVICES, SHARED, rows, with_table
from tests.harness import ROOT

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATASOURCE_OUTBOUND_ALLOWED_HOSTS", "127.0.0.1,localhost", ["127.0.0.1", "localhost"]),
        ("DATASOURCE_OUTBOUND_ALLOWED_HOSTS", " a , b ,", ["a", "b"]),
        ("DATASOURCE_OUTBOUND_ALLOWED_HOSTS", '["a", "b,c"]', ["a", "b,c"]),
        ("DATASOURCE_OUTBOUND_ALLOWED_HOSTS", "", []),
    ],
)
def test_a_list_setting_takes_commas_or_json(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: list[str]
) -> None:
    from datasource_svc.config import DatasourceSettings

    monkeypatch.setenv(variable, value)
    assert DatasourceSettings().outbound_allowed_hosts == expected


def test_every_list_setting_takes_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    from executor_worker.config import WorkerSettings
    from operation_svc.config import OperationSettings

    for variable, value in {
        "WORKER_ALLOWED_EXECUTABLES": "echo,true",
        "WORKER_OUTBOUND_ALLOWED_HOSTS": "a,b",
        "OPERATION_ALLOWED_EXECUTABLES": "echo,true",
        "OPERATION_OUTBOUND_ALLOWED_HOSTS": "a,b",
        "AUTH_JWT_ALGORITHMS": "HS256",
    }.items():
        monkeypatch.setenv(variable, value)
    worker, operation = WorkerSettings(), OperationSettings()
    assert worker.allowed_executables == operation.allowed_executables == ["echo", "true"]
    assert worker.outbound_allowed_hosts == operation.outbound_allowed_hosts == ["a", "b"]
    assert worker.auth.jwt_algorithms == ["HS256"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "variable", "value", "expected"),
    [
        ("datasource-svc", "DATASOURCE_OUTBOUND_ALLOWED_HOSTS", '["x"', "DATASOURCE_OUTBOUND_"),
        ("executor-worker", "WORKER_CONCURRENCY", "many", "WORKER_CONCURRENCY: Input should"),
        ("panel-svc", "SQS_WAIT_TIME_SECONDS", "99", "SQS_WAIT_TIME_SECONDS: Input should"),
        ("operation-svc", "OPERATION_ALLOWED_EXECUTABLES", "sudo", "OPERATION_ALLOWED_EXECUTABLES"),
        ("operation-svc", "SECRETS_ENV_PREFIX", "AWS_", "SECRETS_ENV_PREFIX"),
    ],
)
def test_a_bad_setting_stops_the_service_with_one_line_naming_it(
    command: str, variable: str, value: str, expected: str
) -> None:
    action = "serve" if command == "executor-worker" else "migrate"
    env = dict(os.environ) | {variable: value}
    finished = subprocess.run(
        [str(BIN / command), action], env=env, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 1
    assert "Traceback" not in finished.stderr
    assert expected in finished.stderr
    assert f"{command}: bad configuration: " in finished.stderr


def test_every_setting_says_what_it_does() -> None:
    undescribed = [
        variable
        for settings in (*SHARED, *SERVICES)
        for variable, _, description in rows(settings)
        if not description
    ]
    assert undescribed == []


def test_the_readme_lists_every_setting_as_the_classes_define_it() -> None:
    current = README.read_text()
    assert with_table(current) == current, (
        "README.md's settings table is out of date: run .venv/bin/python scripts/settings_table.py"
    )
    assert ROOT / "README.md" == README
