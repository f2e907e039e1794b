from idp_common.cli import service_main
from panel_svc.app import NAME, create_app
from panel_svc.config import PanelSettings


def main() -> None:
    service_main(
        name=NAME,
        settings_class=PanelSettings,
        create_app=create_app,
        migrations="panel_svc:migrations",
    )
