"""A panel's fields are replaced by a PATCH, the new ones free to keep the old ones' names."""

from __future__ import annotations

from pathlib import Path

from tests.factories import panel_for, template
from tests.harness import LocalSQSServer, auth_headers, running_platform

ADMIN = auth_headers(roles=("admin",))


async def test_new_fields_may_keep_the_names_of_the_fields_they_replace(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform(backend, tmp_path, sqs_server, with_worker=False) as platform:
        say = await template(
            platform, "say", "echo {{m}} {{n}}", [{"name": "m"}, {"name": "n", "required": False}]
        )
        await panel_for(platform, say)
        fields = [{"name": "n", "label": "Note"}, {"name": "m", "label": "Message"}]
        changed = await platform.panel.patch(
            "/api/v1/panels/say", json={"fields": fields}, headers=ADMIN
        )
        assert changed.status_code == 200, changed.text
        shown = await platform.panel.get("/api/v1/panels/say", headers=ADMIN)
    assert [(f["name"], f["label"]) for f in shown.json()["fields"]] == [
        ("n", "Note"),
        ("m", "Message"),
    ]
