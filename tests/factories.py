"""Objects the tests need, made through the services' own APIs."""

from __future__ import annotations

import uuid
from typing import Any

from tests.harness import SIGNER, Platform, auth_headers

ADMIN = auth_headers(roles=("admin",))


async def template(
    platform: Platform,
    slug: str,
    command: str,
    parameters: list[dict[str, Any]],
    headers: dict[str, str] = ADMIN,
    **options: Any,
) -> dict[str, Any]:
    """A command template, saved (201) in the tenant of ``headers``."""
    response = await platform.operation.post(
        "/api/v1/templates",
        json={
            "slug": slug,
            "name": slug,
            "command_template": command,
            "parameters": parameters,
        }
        | options,
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def new_execution(platform: Platform, slug: str) -> str:
    """The API path of a new execution of the template ``slug``."""
    created = await platform.operation.post(
        "/api/v1/executions", json={"template": slug}, headers=ADMIN
    )
    return f"/api/v1/executions/{created.json()['id']}"


async def has_status(platform: Platform, path: str, wanted: str) -> bool:
    """Whether the execution at ``path`` is ``wanted`` now."""
    found = (await platform.operation.get(path, headers=ADMIN)).json()
    return bool(found["status"] == wanted)


async def panel_for(
    platform: Platform,
    template: dict[str, Any],
    headers: dict[str, str] = ADMIN,
    **field_types: str,
) -> dict[str, Any]:
    """A panel with a field for each of the template's parameters (text unless
    ``field_types`` says otherwise), saved (201) under the template's slug."""
    fields = [
        {
            "name": parameter["name"],
            "label": parameter["name"],
            "field_type": field_types.get(parameter["name"], "text"),
            "is_required": parameter.get("required", True),
        }
        for parameter in template["parameters"]
    ]
    response = await platform.panel.post(
        "/api/v1/panels",
        json={
            "slug": template["slug"],
            "title": template["name"],
            "operation_template": template["slug"],
            "fields": fields,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def submitted_hello(platform: Platform, slug: str = "hello") -> dict[str, Any]:
    """A submission of a panel running ``echo hello`` (the template and panel ``slug`` made
    first)."""
    hello = await template(platform, slug, "echo hello", [])
    panel = await panel_for(platform, hello)
    response = await platform.panel.post(
        f"/api/v1/panels/{panel['id']}/submissions", json={"data": {}}, headers=ADMIN
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


async def poison(platform: Platform, queue: str, body: str = "poison") -> None:
    """A message no consumer can read, sent straight to ``queue``."""
    from idp_common.runtime import open_messaging

    async with open_messaging(platform.sqs, SIGNER) as bus:
        await bus.queues.client.send_message(QueueUrl=await bus.queues.url(queue), MessageBody=body)


async def secret_reference(
    platform: Platform, provider: str, key: str, headers: dict[str, str] = ADMIN
) -> Any:
    """A secret reference (the response: a 201 unless refused), its slug made up."""
    return await platform.operation.post(
        "/api/v1/secrets",
        json={"slug": f"s-{uuid.uuid4().hex[:8]}", "provider": provider, "key": key},
        headers=headers,
    )
