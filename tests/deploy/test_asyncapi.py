"""docs/asyncapi.json: current with the code, valid for the AsyncAPI parser, and naming
every queue of the topology and every event type."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from idp_common import asyncapi
from idp_common.messaging.topology import QUEUES

from ._settings_env import REPO_ROOT

DOCUMENT = REPO_ROOT / "docs" / "asyncapi.json"
VALIDATOR = REPO_ROOT / "tools" / "asyncapi" / "validate.mjs"


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return dict(json.loads(DOCUMENT.read_text()))


def test_the_document_in_the_repository_is_the_one_the_code_makes(
    document: dict[str, Any],
) -> None:
    assert document == asyncapi.document(), (
        "docs/asyncapi.json is out of date: .venv/bin/python -m idp_common.asyncapi "
        "> docs/asyncapi.json"
    )


def test_the_asyncapi_parser_finds_it_valid() -> None:
    checked = validate(DOCUMENT)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "valid: " in checked.stdout


def test_the_parser_refuses_a_broken_document(document: dict[str, Any], tmp_path: Path) -> None:
    broken = json.loads(json.dumps(document))
    del broken["components"]["messages"]["ExecutionOutcome"]  # still referenced
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    assert validate(path).returncode == 1


def test_it_names_every_queue_and_dead_letter_queue(document: dict[str, Any]) -> None:
    addresses = {channel["address"] for channel in document["channels"].values()}
    for spec in QUEUES:
        assert {spec.name, spec.dlq_name} <= addresses
        binding = document["channels"][spec.name]["bindings"]["sqs"]
        assert binding["queue"]["visibilityTimeout"] == spec.visibility_timeout_seconds
        assert binding["queue"]["redrivePolicy"]["deadLetterQueue"] == {"name": spec.dlq_name}


def test_every_event_type_has_a_message_with_its_data_schema(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    types = {message["name"] for message in messages.values()}
    assert types == {
        "panel.submission.created",
        "panel.submission.updated",
        "panel.submission.requested",
        "operation.execution.requested",
        "operation.execution.requested.external",
        "operation.execution.log",
        "operation.execution.finished",
    }
    for message in messages.values():
        data = message["payload"]["properties"]["data"]["$ref"].rpartition("/")[2]
        assert data in document["components"]["schemas"]
    requested = messages["ExternalExecutionRequested"]
    assert requested["headers"]["required"] == ["authorization"]
    assert "replyto" in requested["payload"]["properties"]
    assert messages["ExecutionOutcome"]["correlationId"]["location"].endswith("/correlationid")
