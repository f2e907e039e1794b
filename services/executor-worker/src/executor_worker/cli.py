from executor_worker.app import NAME, create_app
from executor_worker.config import WorkerSettings
from idp_common.cli import service_main


def main() -> None:
    service_main(name=NAME, load_settings=WorkerSettings, create_app=create_app)
