"""Schema-driven fuzzing of every service's OpenAPI (schemathesis): whatever a client sends
that the schema describes, or nearly does, no answer is a server error, and every answer is
what the schema says; as an admin, and (fewer cases) with no credential, as a viewer and as
another tenant's admin; panel-svc's API through the console too. Bounded and derandomized,
so the suite stays fast and repeatable.

The fuzzer runs in a process of its own (``python -m tests.test_fuzzing URL``): the services
run in the test's process, where their own use of ``random`` (retry jitter) would look to
Hypothesis like a strategy drawing from it."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode

from console.app import create_app as create_console
from console.config import ConsoleSettings
from tests.harness import (
    AUTH,
    LocalSQSServer,
    Platform,
    ServedApp,
    auth_headers,
    local_client,
    running_platform,
)

PRINCIPALS = {
    "admin": auth_headers(roles=("admin",)),
    "no credential": {},
    "viewer": auth_headers(roles=("viewer",)),
    "another tenant's admin": auth_headers(tenant="globex", roles=("admin",)),
}
# Cases per operation and mode: the admin reaches the most; the others are mostly refused
# (401, 403, 404), which takes few cases to see.
ADMIN_EXAMPLES = 25
OTHER_EXAMPLES = 2
AS_EVERYONE = {name: ADMIN_EXAMPLES if name == "admin" else OTHER_EXAMPLES for name in PRINCIPALS}
# Streams until its execution ends: exercised by its own tests.
NOT_FUZZED = {"GET /api/v1/executions/{execution_id}/logs/stream"}


def fuzz(raw_schema: dict[str, Any], base_url: str, principals: dict[str, int]) -> list[str]:
    """Every operation, positive and negative cases, as each principal (its number of
    cases); the failures, one line each."""
    schema = schemathesis.openapi.from_dict(raw_schema)
    failures = []
    for found in schema.get_all_operations():
        if isinstance(found, Err):
            failures.append(f"the schema has an operation that cannot be read: {found.err()}")
            continue
        operation = found.ok()
        if operation.label in NOT_FUZZED:
            continue
        for (principal, examples), mode in itertools.product(
            principals.items(), (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ):
            try:
                fuzz_one(operation, mode, base_url, PRINCIPALS[principal], examples)
            except (Exception, BaseExceptionGroup) as exc:  # each reported, then all of them
                found_why = [str(exc), *map(str, getattr(exc, "exceptions", []))]
                failures.append(
                    f"{operation.label} ({mode.value}, {principal}): {' / '.join(found_why)}"
                )
    return failures


def fuzz_one(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    examples: int,
) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        case.call_and_validate(
            base_url=base_url,
            headers=headers,
            checks=[not_a_server_error, response_schema_conformance],
            timeout=10,
        )

    call()


@pytest.fixture(scope="module")
async def platform(module_tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite", module_tmp_path, sqs_server, with_datasource=True
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def console(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    assert platform.datasource is not None
    settings = ConsoleSettings(
        panel_api_url=str(platform.panel.base_url).rstrip("/"),
        operation_api_url=str(platform.operation.base_url).rstrip("/"),
        datasource_api_url=str(platform.datasource.base_url).rstrip("/"),
        auth=AUTH,
        dev_platform=True,
    )
    async with ServedApp(create_console(settings)) as app, local_client(app.url) as client:
        yield client


@pytest.mark.parametrize(
    ("service", "principals"),
    [
        ("panel", AS_EVERYONE),
        ("operation", AS_EVERYONE),
        ("datasource", AS_EVERYONE),
        ("worker", {"admin": ADMIN_EXAMPLES}),
        # The console serves no schema of its own: it passes panel-svc's API on.
        ("console", {"admin": 3, "no credential": 1}),
    ],
)
async def test_no_server_error_and_every_answer_as_documented(
    platform: Platform, console: httpx.AsyncClient, service: str, principals: dict[str, int]
) -> None:
    client: httpx.AsyncClient | None = (
        console if service == "console" else getattr(platform, service)
    )
    assert client is not None
    schema_from = platform.panel if service == "console" else client
    raw_schema = (await schema_from.get("/openapi.json")).json()
    fuzzer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.test_fuzzing",
        str(client.base_url).rstrip("/"),
        json.dumps(raw_schema),
        json.dumps(principals),
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await fuzzer.communicate()
    assert fuzzer.returncode == 0, output.decode()[-3000:]
    failures = json.loads(output)
    assert failures == [], "\n".join(failures)


if __name__ == "__main__":
    print(json.dumps(fuzz(json.loads(sys.argv[2]), sys.argv[1], json.loads(sys.argv[3]))))
