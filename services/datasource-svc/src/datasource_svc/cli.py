from datasource_svc.config import NAME, DatasourceSettings
from idp_common.cli import service_main


def main() -> None:
    service_main(
        name=NAME,
        settings_class=DatasourceSettings,
        create_app="datasource_svc.app:create_app",
        migrations="datasource_svc:migrations",
    )
