from executor_worker.app import NAME, create_app
from executor_worker.config import WorkerSettings
from idp_common.cli import service_main


def main() -> None:
    # The stdlib loop: its subprocess support takes user/group (uvloop's does not).
    service_main(
        name=NAME, load_settings=WorkerSettings, create_app=create_app, event_loop="asyncio"
    )
