from idp_common.cli import service_main
from operation_svc.app import NAME, create_app
from operation_svc.config import OperationSettings


def main() -> None:
    service_main(
        name=NAME,
        settings_class=OperationSettings,
        create_app=create_app,
        migrations="operation_svc:migrations",
    )
