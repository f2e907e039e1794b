from executor_worker.config import NAME, WorkerSettings
from idp_common.cli import service_main


def main() -> None:
    # The standard loop, not uvloop: uvloop starts a child with fork(), which copies the
    # worker's whole address space (~10 ms here), where asyncio's subprocess support uses
    # vfork() (~1.5 ms, measured). The worker's other I/O (a long poll, a claim and a few
    # events per job) does not need uvloop.
    service_main(
        name=NAME,
        settings_class=WorkerSettings,
        create_app="executor_worker.app:create_app",
        event_loop="asyncio",
    )
