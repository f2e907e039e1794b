from idp_common.cli import service_main
from panel_svc.config import NAME, PanelSettings


def main() -> None:
    service_main(
        name=NAME,
        settings_class=PanelSettings,
        create_app="panel_svc.app:create_app",
        migrations="panel_svc:migrations",
    )
