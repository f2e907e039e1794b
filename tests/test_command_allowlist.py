"""The allowlist from outside: programs planted under an allowlisted name, launchers that
would start something else, and options made of values, refused by the API at save or at
run, and again by the worker."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.harness import (
    LocalSQSServer,
    Platform,
    auth_headers,
    eventually,
    running_platform,
)

ADMIN = auth_headers(roles=("admin",))


async def save(platform: Platform, command: str, *parameters: str) -> httpx.Response:
    return await platform.operation.post(
        "/api/v1/templates",
        json={
            "slug": f"t-{uuid.uuid4().hex[:8]}",
            "name": "attempt",
            "command_template": command,
            "parameters": [{"name": name, "required": False} for name in parameters],
        },
        headers=ADMIN,
    )


def refusal_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    error: dict[str, Any] = response.json()["errors"][0]
    assert error["field"] == "command_template"
    return error


async def test_a_planted_program_is_refused_at_save_and_by_the_worker(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    planted = tmp_path / "bin" / "echo"
    planted.parent.mkdir()
    marker = tmp_path / "pwned"
    planted.write_text(f"#!/bin/sh\ntouch {marker}\n")
    planted.chmod(0o755)
    # operation-svc is told to accept the planted path; the worker, with its own allowlist,
    # must still refuse it.
    async with running_platform(
        "sqlite",
        tmp_path,
        sqs_server,
        operation={"allowed_executables": ["echo", str(planted)]},
    ) as platform:
        relative = f"../../../../../../..{planted}"
        for command in (f"{tmp_path}/x/echo hi", f"{relative} hi", "./echo hi"):
            error = refusal_of(await save(platform, command))
            assert error["code"] == "executable_not_allowed"
            assert "OPERATION_ALLOWED_EXECUTABLES" in error["message"]
        saved = await save(platform, f"{planted} hi")
        assert saved.status_code == 201, saved.text
        started = await platform.operation.post(
            "/api/v1/executions",
            json={"template": saved.json()["slug"], "parameters": {}},
            headers=ADMIN,
        )
        assert started.status_code == 202, started.text

        async def ended() -> dict[str, Any] | None:
            response = await platform.operation.get(
                f"/api/v1/executions/{started.json()['id']}", headers=ADMIN
            )
            body: dict[str, Any] = response.json()
            return body if body["status"] not in ("pending", "running") else None

        execution = await eventually(ended)
        assert execution["status"] == "failed"
        assert "WORKER_ALLOWED_EXECUTABLES" in execution["error"]
        assert not marker.exists()


async def test_launchers_start_only_literal_allowlisted_programs(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as default:
        for command in ("env sh -c id", "env echo hi", "/usr/bin/env echo hi"):
            assert refusal_of(await save(default, command))["code"] == "executable_not_allowed"
    (tmp_path / "launchers").mkdir()
    async with running_platform(
        "sqlite",
        tmp_path / "launchers",
        sqs_server,
        allowed_executables=["echo", "env", "nice", "find"],
        with_worker=False,
    ) as platform:
        attempts = {
            "env sh -c 'id'": "executable_not_allowed",
            "env python3 -c 'import os'": "executable_not_allowed",
            "env -u FOO {{cmd}} {{arg}}": "program_not_literal",
            "env -C /tmp {{cmd}} {{arg}}": "program_not_literal",
            "env A=B {{cmd}} {{arg}}": "program_not_literal",
            "env -S 'sh -c id'": "launcher_option",
            "nice -n 5 env sh": "executable_not_allowed",
            "find . -exec sh -c id \\;": "executable_not_allowed",
        }
        for command, rule in attempts.items():
            names = [name for name in ("cmd", "arg") if f"{{{{{name}}}}}" in command]
            assert refusal_of(await save(platform, command, *names))["code"] == rule, command
        assert (await save(platform, "nice -n 5 env A=B echo {{arg}}", "arg")).status_code == 201


async def test_a_value_never_makes_an_option_in_preview_or_run(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        saved = await save(platform, "echo {{a}}{{b}} hello", "a", "b")
        assert saved.status_code == 201, saved.text
        template = saved.json()
        for values, parameter in (({"a": "-", "b": "n"}, "a"), ({"a": "", "b": "-n"}, "b")):
            preview = await platform.operation.post(
                f"/api/v1/templates/{template['id']}/preview",
                json={"parameters": values},
                headers=ADMIN,
            )
            verdict = preview.json()
            assert verdict["allowed"] is False
            assert [(r["rule"], r["parameter"]) for r in verdict["refusals"]] == [
                ("leading_dash", parameter)
            ]
            started = await platform.operation.post(
                "/api/v1/executions",
                json={"template": template["slug"], "parameters": values},
                headers=ADMIN,
            )
            assert started.status_code == 422, started.text
            assert started.json()["errors"][0]["field"] == f"parameters.{parameter}"
