"""`make run`: the whole platform on the embedded default.

SQLite files under data/, the local SQS server on :9324, panel-svc, operation-svc,
datasource-svc, the executor worker and the web console, with the demo panel and template
seeded. Prints the console's address first (it signs the development admin in), then the
services' URLs and a development token. Ctrl-C (or SIGTERM) stops everything, worker first,
broker last. Ports and the data folder can be moved with CONSOLE_PORT, PANEL_PORT,
OPERATION_PORT, DATASOURCE_PORT, WORKER_PORT, SQS_PORT and IDP_DATA_DIR.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import FrameType

from idp_common.auth import mint_token
from idp_common.messaging.topology import create_queue_inputs
from idp_common.settings import AuthSettings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SERVICES = {  # name: (env prefix, default port, has a database)
    "operation-svc": ("OPERATION_", 8002, True),
    "panel-svc": ("PANEL_", 8001, True),
    "datasource-svc": ("DATASOURCE_", 8003, True),
    "executor-worker": ("WORKER_", 8004, False),
    "console": ("CONSOLE_", 8000, False),
}
READY_TIMEOUT_SECONDS = 90


class Stop(Exception):
    pass


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


# Every call one service makes to another, as (setting, the service it names): all derived
# from the ports below, so moving a port moves every caller with it.
SERVICE_CALLS = {
    "WORKER_OPERATION_API_URL": "operation-svc",
    "PANEL_OPERATION_API_URL": "operation-svc",
    "OPERATION_PANEL_API_URL": "panel-svc",
    "PANEL_DATASOURCE_API_URL": "datasource-svc",
    "AUTH_API_KEY_SERVICE_URL": "operation-svc",
    "CONSOLE_PANEL_API_URL": "panel-svc",
    "CONSOLE_OPERATION_API_URL": "operation-svc",
    "CONSOLE_DATASOURCE_API_URL": "datasource-svc",
}


def service_urls(ports: dict[str, int]) -> dict[str, str]:
    return {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}


def environment(data: Path, sqs_port: int, ports: dict[str, int]) -> dict[str, str]:
    env = dict(os.environ)
    urls = service_urls(ports)
    defaults = {
        "SQS_ENDPOINT_URL": f"http://127.0.0.1:{sqs_port}",
        "SQS_REGION": "us-east-1",
        "SQS_ACCESS_KEY_ID": "local",
        "SQS_SECRET_ACCESS_KEY": "local",
        "SQS_CREATE_QUEUES": "true",
        "PANEL_SEED_DEMO": "true",
        "SECRETS_FILE_ROOT": str(data / "secrets"),
        "OPERATION_SEED_DEMO": "true",
    }
    defaults |= {setting: urls[service] for setting, service in SERVICE_CALLS.items()}
    for name, (prefix, _, has_db) in SERVICES.items():
        defaults[f"{prefix}PORT"] = str(ports[name])
        if has_db:
            defaults[f"{prefix}DATABASE_URL"] = f"sqlite+aiosqlite:///{data / name}.db"
    return defaults | env


def migrate(env: dict[str, str]) -> None:
    """Every database to its head in one child process rather than a `<svc> migrate` each:
    Alembic and the models are imported once (measured at head: 0.5 s of CPU instead of
    4.2 s, all spent before any service can start). A child, so the launcher does not keep
    them; forked, as the launcher has no thread yet and its imports are then not redone."""
    databases = {
        name: env[f"{prefix}DATABASE_URL"]
        for name, (prefix, _, has_db) in SERVICES.items()
        if has_db
    }
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as child:
        child.submit(_upgrade_to_head, databases).result()


def _upgrade_to_head(databases: dict[str, str]) -> None:
    from idp_common.migrations import upgrade_to_head  # in the child only

    for name, url in databases.items():
        try:
            upgrade_to_head(url, f"{name.replace('-', '_')}:migrations")
        except Exception as exc:
            raise RuntimeError(f"{name} could not migrate: {exc!r}") from exc


def wait_ready(urls: dict[str, str], children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    pending = dict(urls)
    while pending:
        for name, process in children:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} during startup")
        for name, url in list(pending.items()):
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        del pending[name]
            except (urllib.error.URLError, OSError):
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {READY_TIMEOUT_SECONDS}s: {', '.join(pending)}")
        time.sleep(0.2)


def stop_all(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for name, process in reversed(children):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in 30s; killing it", file=sys.stderr)
                process.kill()
                process.wait()


def main() -> int:
    data = Path(os.environ.get("IDP_DATA_DIR", ROOT / "data")).resolve()
    # The worker's commands run under uids of their own, which must not read the databases,
    # the queues' state, the logs or the tenants' secret files kept here.
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    data.chmod(0o700)
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (data / "secrets" / "demo").mkdir(parents=True, exist_ok=True)  # the demo tenant's files
    sqs_port = int(os.environ.get("SQS_PORT", "9324"))
    ports = {
        name: int(os.environ.get(f"{prefix}PORT", default))
        for name, (prefix, default, _) in SERVICES.items()
    }
    env = environment(data, sqs_port, ports)
    queues_file = data / "queues.json"
    queues_file.write_text(json.dumps(create_queue_inputs()))

    children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, argv: list[str]) -> None:
        log = (logs / f"{name}.log").open("ab")
        # Own session: Ctrl-C reaches this launcher only, which then stops each child in order.
        process = subprocess.Popen(  # noqa: S603
            argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        children.append((name, process))

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        start(
            "local-sqs",
            [
                "node",
                str(ROOT / "tools/local-sqs/server.mjs"),
                "--port",
                str(sqs_port),
                "--queues",
                str(queues_file),
                "--state",  # queued messages survive a restart (see server.mjs)
                str(data / "sqs-state.json"),
            ],
        )
        migrate(env)
        for name in SERVICES:
            start(name, [str(BIN / name), "serve"])
        urls = service_urls(ports)
        wait_ready(urls, children)
        token = mint_token(
            AuthSettings(),
            subject="dev-admin",
            tenant="demo",
            roles=["admin"],
            ttl_seconds=12 * 3600,
        )
        print(
            f"\nThe console (signs you in as the development admin): {urls['console']}/#dev-sign-in"
        )
        print("\nThe platform is ready (embedded default: SQLite, in-process cache, local SQS).\n")
        for name, url in urls.items():
            docs = "" if name in ("executor-worker", "console") else f"   docs: {url}/docs"
            print(f"  {name:16} {url}{docs}")
        print(f"  {'local SQS':16} http://127.0.0.1:{sqs_port}")
        print(f"\n  data and logs    {data}")
        print("\nDevelopment token (tenant demo, admin, 12 h):\n")
        print(f"  export TOKEN={token}\n")
        panel = urls["panel-svc"]
        print("Try the demo panel (list the panels, submit, then GET the submission):")
        print(f'  curl -s -H "Authorization: Bearer $TOKEN" {panel}/api/v1/panels')
        print('  curl -s -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\')
        submissions = f"{panel}/api/v1/panels/echo-message/submissions"
        print(f"""    -d '{{"data": {{"message": "hi"}}}}' {submissions}\n""")
        print("Ctrl-C stops everything.", flush=True)
        while all(process.poll() is None for _, process in children):
            time.sleep(0.5)
        crashed = [name for name, process in children if process.poll() is not None]
        print(f"stopping: {', '.join(crashed)} exited (see {logs})", file=sys.stderr)
        return 1
    except Stop as signal_name:
        print(f"\n{signal_name}: stopping the platform…", flush=True)
        return 0
    except RuntimeError as exc:
        print(f"startup failed: {exc}", file=sys.stderr)
        for name, process in children:
            if process.poll() is not None:
                tail = (logs / f"{name}.log").read_text(errors="replace").splitlines()[-5:]
                print(f"--- last lines of {logs / name}.log", *tail, sep="\n", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all(children)


if __name__ == "__main__":
    sys.exit(main())
