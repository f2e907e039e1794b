from idp_common.cli import service_main
from operation_svc.config import NAME, OperationSettings


def main() -> None:
    service_main(
        name=NAME,
        settings_class=OperationSettings,
        create_app="operation_svc.app:create_app",
        migrations="operation_svc:migrations",
    )
