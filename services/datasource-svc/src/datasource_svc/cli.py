from datasource_svc.app import NAME, create_app
from datasource_svc.config import DatasourceSettings
from idp_common.cli import service_main


def main() -> None:
    service_main(
        name=NAME,
        settings_class=DatasourceSettings,
        create_app=create_app,
        migrations="datasource_svc:migrations",
    )
