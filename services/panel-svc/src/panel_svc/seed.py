"""The demo panel of the embedded default (``make run``)."""

from __future__ import annotations

from idp_common.db import Database
from panel_svc.models import Panel, PanelField
from panel_svc.panels.repository import PanelRepository

DEMO_TENANT = "demo"
DEMO_PANEL_SLUG = "echo-message"


async def seed_demo_panel(db: Database) -> None:
    async with db.transaction() as session:
        panels = PanelRepository(session, DEMO_TENANT)
        if await panels.get_by_slug(DEMO_PANEL_SLUG) is not None:
            return
        panels.add(
            Panel(
                tenant=DEMO_TENANT,
                slug=DEMO_PANEL_SLUG,
                title="Echo a message",
                description="Runs `echo` with your message: the smallest operation there is.",
                operation_template="echo-message",
                created_by="seed",
                updated_by="seed",
                fields=[
                    PanelField(
                        name="message",
                        label="Message",
                        field_type="text",
                        is_required=True,
                        max_length=200,
                        order=0,
                    )
                ],
            )
        )
