"""Benchmark of the message bus and the vertical slice (prints figures; not a test), ending
with a table of issue #18's figures: ours on each backend, the Celery peer's best pool (when
``../shared/peers/celery`` can be installed and run, after our sections, never beside them),
the target and whether it is met.

Sections, each on every backend asked for (SQLite, PostgreSQL: fresh databases of their own):

1. outbox: from the commit of a business transaction holding an event to the moment a
   consumer on the real local SQS server handles it (relay woken by the commit).
2. startup (``scripts/bench_startup.py``): each service's launch -> ready and idle RSS.
3. panel (``scripts/bench_panel.py``), on the real multi-process platform started as `make
   run` starts it: panel-svc accepts a submission -> operation-svc -> the worker runs `echo`
   -> back to panel-svc as `succeeded`, one at a time and under concurrent clients.
4. worker (``scripts/bench_executions.py``): trivial executions (`true`) through
   operation-svc's API and one worker process: latency one at a time (the worker's
   histograms), a burst created by concurrent clients while the worker runs them, and a
   backlog queued while the worker is paused, then drained.
5. scale-out (PostgreSQL only): the burst through one operation-svc process, then two.
6. output (``scripts/bench_output.py``, once: no database): MiB/s and the worker's CPU per
   MiB for a flood drained past the cap and for lines forwarded with masking, and a trivial
   run's latency beside a flooding run.
7. sqs (``scripts/bench_sqs.py``, once): this process's CPU per call of the hot loop's SQS
   calls, on aiobotocore and on ``SQSWire``.

Each load prints the CPU each process spent per execution (the PostgreSQL backends serving
the platform's databases included) and the machine-wide CPU (which also counts the commands
the worker starts, the kernel and this load generator).

The worker runs 32 executions at once (``--worker-slots``): a trivial run spends most of its
slot waiting for its claim's round trip through a loaded operation-svc (~85 ms of ~110 ms
with 16 slots), so under a burst the slots, not the CPU, set the worker's rate.

Usage: .venv/bin/python scripts/bench.py [--backends sqlite,postgres] [--no-peer]
       [--only outbox,startup,panel,worker,scale-out,output,sqs] [--events N] [--submissions N]
       [--concurrency N] [--executions N] [--worker-slots N] [--output-megabytes N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from idp_common.db import Database
from idp_common.loops import Supervisor
from idp_common.messaging.envelope import Event
from idp_common.messaging.outbox import OutboxRelay, add_event
from idp_common.messaging.signing import MessageSigner
from idp_common.messaging.topology import PANEL_SUBMISSIONS
from idp_common.runtime import open_messaging
from idp_common.settings import AuthSettings
from idp_common.telemetry import configure_logging
from operation_svc.models import messaging
from scripts.bench_executions import scaled_out, worker_throughput
from scripts.bench_output import output_throughput
from scripts.bench_panel import end_to_end
from scripts.bench_peer import run_peer
from scripts.bench_platform import report
from scripts.bench_report import print_table
from scripts.bench_sqs import sqs_call_costs
from scripts.bench_startup import startup
from tests.harness import LocalSQSServer, eventually, fresh_database, migrate, sqs_settings

BACKENDS = ("sqlite", "postgres")
SQS_CALLS = 400
SECTIONS = ("outbox", "startup", "panel", "worker", "scale-out", "output", "sqs")


async def _arrived(received: dict[str, float], event_id: str) -> bool:
    return event_id in received


async def outbox_latency(backend: str, tmp: Path, count: int) -> dict[str, float]:
    os.makedirs(tmp, exist_ok=True)
    server = LocalSQSServer()
    server.start()
    try:
        return {"outbox_p50_ms": await relayed(backend, tmp, server, count)}
    finally:
        server.stop()


async def relayed(backend: str, tmp: Path, server: LocalSQSServer, count: int) -> float:
    """Events committed one at a time; returns the p50 (ms) of commit -> handled."""
    received: dict[str, float] = {}

    async def handler(event: Event) -> None:
        received[event.id] = time.perf_counter()

    async with (
        fresh_database(backend, tmp, "operation") as url,
        open_messaging(sqs_settings(server), MessageSigner.of(AuthSettings())) as bus,
    ):
        await migrate(url, "operation")
        db = Database(url)
        relay = OutboxRelay(db, messaging, bus.publisher, poll_seconds=5)
        committed: dict[str, float] = {}
        async with Supervisor([bus.consumer(PANEL_SUBMISSIONS, handler), relay]).running():
            await asyncio.sleep(0.3)
            for _ in range(count):
                event = Event(type="bench.happened", source="urn:bench", tenant="t", data={})
                async with db.transaction() as session:
                    add_event(session, messaging, PANEL_SUBMISSIONS, event)
                committed[event.id] = time.perf_counter()
                await eventually(partial(_arrived, received, event.id), timeout=10)
        await db.dispose()
    p50, _ = report(
        "commit -> consumer handles", [(received[k] - v) * 1000 for k, v in committed.items()]
    )
    return p50


async def run_sections(args: argparse.Namespace, backend: str, tmp: Path) -> dict[str, float]:
    """The sections asked for, on one backend; their figures."""
    figures: dict[str, float] = {}
    clients = f"{args.concurrency} concurrent clients"
    if "outbox" in args.only:
        print(f"Outbox relay latency ({backend}, one event per transaction):")
        figures |= await outbox_latency(backend, tmp / "outbox", args.events)
    if "startup" in args.only:
        print(f"Startup of each service, one after the other ({backend}, warm install):")
        figures |= await startup(backend, tmp / "startup")
    if "panel" in args.only:
        print(
            f"Panel submissions end to end, real multi-process platform ({backend}, one worker "
            f"with {args.worker_slots} slots):"
        )
        figures |= await end_to_end(backend, tmp / "panel", args.submissions, args.concurrency)
    if "worker" in args.only:
        print(f"Trivial executions through operation-svc and one worker ({backend}, {clients}):")
        figures |= await worker_throughput(
            backend, tmp / "worker", args.executions, args.concurrency, args.worker_slots
        )
    if "scale-out" in args.only and backend == "postgres":
        print(f"One operation-svc process against two, one PostgreSQL ({clients}):")
        figures |= await scaled_out(
            tmp / "scale-out", args.executions, args.concurrency, args.worker_slots
        )
    return figures


def comma_list(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        items = value.split(",")
        unknown = set(items) - set(choices)
        if unknown:
            raise argparse.ArgumentTypeError(f"not one of {', '.join(choices)}: {unknown}")
        return items

    return parse


def load_average() -> str:
    return Path("/proc/loadavg").read_text().strip()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", type=comma_list(BACKENDS), default=list(BACKENDS))
    parser.add_argument("--only", type=comma_list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--no-peer", action="store_true", help="leave the Celery peer out")
    parser.add_argument("--events", type=int, default=300)
    # 200 lasted a second, half of it the pipeline filling and draining (a submission takes
    # ~0.5 s end to end under this load): a figure of the run's edges, not of the throughput.
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--executions", type=int, default=500)
    parser.add_argument("--worker-slots", type=int, default=32)
    parser.add_argument("--output-megabytes", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    # The machine is shared: how busy it was around the run says how far to trust it.
    print(f"load average at start: {load_average()}")
    os.environ["WORKER_CONCURRENCY"] = str(args.worker_slots)
    os.environ["OPERATION_ALLOWED_EXECUTABLES"] = '["true", "echo"]'
    os.environ["WORKER_ALLOWED_EXECUTABLES"] = '["true", "echo"]'
    configure_logging("bench", "WARNING")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            results[backend] = await run_sections(args, backend, Path(tmp) / backend)
    if "output" in args.only:
        print("Command output read by the worker's runner (this process's CPU only):")
        results[args.backends[0]] |= await output_throughput(args.output_megabytes)
    if "sqs" in args.only:
        print("SQS calls of the hot loop (this process's CPU per call, local SQS server):")
        results[args.backends[0]] |= await sqs_call_costs(SQS_CALLS)
    peer = None
    if "worker" in args.only and not args.no_peer:
        peer = await asyncio.to_thread(run_peer, args.executions, args.concurrency)
    print_table(results, peer)
    print(f"load average at end: {load_average()}")
    print(f"make bench took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
