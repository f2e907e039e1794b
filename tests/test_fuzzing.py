"""Schema-driven fuzzing of every service's OpenAPI (schemathesis): whatever a client sends
that the schema describes, or nearly does, no answer is a server error, and every answer is
what the schema says. Bounded and derandomized, so the suite stays fast and repeatable.

The fuzzer runs in a process of its own (``python -m tests.test_fuzzing URL``): the services
run in the test's process, where their own use of ``random`` (retry jitter) would look to
Hypothesis like a strategy drawing from it."""

from __future__ import annotations

import asyncio
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

from tests.harness import LocalSQSServer, Platform, auth_headers, running_platform

ADMIN = auth_headers(roles=("admin",))
EXAMPLES = 25
# Streams until its execution ends: exercised by its own tests.
NOT_FUZZED = {"GET /api/v1/executions/{execution_id}/logs/stream"}


def fuzz(raw_schema: dict[str, Any], base_url: str) -> list[str]:
    """Every operation, positive and negative cases; the failures, one line each."""
    schema = schemathesis.openapi.from_dict(raw_schema)
    failures = []
    for found in schema.get_all_operations():
        if isinstance(found, Err):
            failures.append(f"the schema has an operation that cannot be read: {found.err()}")
            continue
        operation = found.ok()
        if operation.label in NOT_FUZZED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
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
                    headers=ADMIN,
                    checks=[not_a_server_error, response_schema_conformance],
                    timeout=10,
                )

            try:
                call()
            except (Exception, BaseExceptionGroup) as exc:  # each reported, then all of them
                found_why = [str(exc), *map(str, getattr(exc, "exceptions", []))]
                failures.append(f"{operation.label} ({mode.value}): {' / '.join(found_why)}")
    return failures


@pytest.fixture(scope="module")
async def platform(module_tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite", module_tmp_path, sqs_server, with_datasource=True
    ) as running:
        yield running


@pytest.mark.parametrize("service", ["panel", "operation", "datasource", "worker"])
async def test_no_server_error_and_every_answer_as_documented(
    platform: Platform, service: str
) -> None:
    client: httpx.AsyncClient | None = getattr(platform, service)
    assert client is not None
    raw_schema = (await client.get("/openapi.json")).json()
    fuzzer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.test_fuzzing",
        str(client.base_url).rstrip("/"),
        json.dumps(raw_schema),
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await fuzzer.communicate()
    assert fuzzer.returncode == 0, output.decode()[-3000:]
    failures = json.loads(output)
    assert failures == [], "\n".join(failures)


if __name__ == "__main__":
    print(json.dumps(fuzz(json.loads(sys.argv[2]), sys.argv[1])))
