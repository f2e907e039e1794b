"""Output throughput of the worker's runner (``make bench`` section "output"): what reading a
command's output costs the worker, measured in this process (the runner's own code, the real
sandbox launcher; the commands' CPU is theirs, not counted).

- drained: past the forwarded caps (1 MiB, 20,000 lines) a flood is only counted, read no
  faster than the drain pace, until the run ends;
- forwarded: lines split, masked (two secrets) and batched into log events with no cap
  (publishing the events to the queue is left out: the caps bound it in use);
- interference: a trivial run's latency while another run floods, against none.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

from executor_worker.log_batches import LogBatcher
from executor_worker.runner import OutputLimits, RunResult, run_command
from executor_worker.sandbox import Sandbox
from idp_common.masking import SecretMasker
from idp_common.messaging.envelope import Event

PATH = "/usr/local/bin:/usr/bin:/bin"
SANDBOX = Sandbox(
    cpu_seconds=600,
    memory_bytes=1 << 30,
    processes=64,
    file_bytes=1 << 20,
    open_files=64,
    uid_first=200_000,
    uid_count=100_000,
)
MIB = 1 << 20


async def _discard(report: Event) -> None:
    return None


DEFAULTS = OutputLimits(hard_limit_bytes=1 << 40)  # the worker's caps; no ceiling
UNCAPPED = OutputLimits(cap_bytes=1 << 40, cap_lines=1 << 40, hard_limit_bytes=1 << 40)


async def _run(
    argv: list[str],
    *,
    limits: OutputLimits = DEFAULTS,
    masker: SecretMasker | None = None,
    seconds: float = 120,
) -> tuple[RunResult, float, float]:
    """(result, wall seconds, this process's CPU seconds)."""
    batcher = LogBatcher(
        _discard,
        tenant="bench",
        execution_id=uuid.uuid4(),
        source="urn:bench",
    )
    wall, cpu = time.perf_counter(), time.process_time()
    result = await run_command(
        argv,
        env={},
        path=PATH,
        timeout_seconds=seconds,
        limits=limits,
        sandbox=SANDBOX,
        sink=batcher.add,
        masker=masker,
    )
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _throughput(label: str, result: RunResult, wall: float, cpu: float) -> float:
    """Prints the figures; returns the MiB/s."""
    if result.output_bytes == 0:
        raise RuntimeError(f"{label}: the command printed nothing ({result.error})")
    megabytes = result.output_bytes / MIB
    print(
        f"  {label}: {megabytes:.0f} MiB in {wall:.2f} s = {megabytes / wall:.0f} MiB/s, "
        f"worker CPU {1000 * cpu / megabytes:.2f} ms per MiB ({result.status})"
    )
    return megabytes / wall


async def _latencies(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await _run(["/bin/true"])
        times.append(1000 * (time.perf_counter() - started))
    return times


async def output_throughput(megabytes: int) -> dict[str, float]:
    size = str(megabytes * MIB)
    tiny = await _run(["/bin/sh", "-c", "yes | head -c 1048576"], limits=UNCAPPED)
    _throughput("forwarded, 2-byte lines (the worst case per byte), no cap", *tiny)
    drained = await _run(["/bin/sh", "-c", f"yes | head -c {size}0"])
    drained_per_second = _throughput(
        "2-byte lines, up to the caps forwarded, the rest drained", *drained
    )
    line = "x" * 79
    masker = SecretMasker(["correct-horse-battery-staple", "s3cr3t-token-value"])
    forwarded = await _run(
        ["/bin/sh", "-c", f"yes {line} | head -c {size}"], limits=UNCAPPED, masker=masker
    )
    masked_per_second = _throughput("forwarded with masking (80-byte lines)", *forwarded)
    quiet = await _latencies(20)
    flood = asyncio.create_task(_run(["/usr/bin/yes"], seconds=5))
    await asyncio.sleep(0.5)
    noisy = await _latencies(20)
    flooded = await flood
    print(
        f"  a trivial run, p50 / max: {statistics.median(quiet):.1f} / {max(quiet):.1f} ms "
        f"alone, {statistics.median(noisy):.1f} / {max(noisy):.1f} ms beside a flooding run"
    )
    _throughput("the flooding run meanwhile", *flooded)
    return {"output_drained_mib_s": drained_per_second, "output_masked_mib_s": masked_per_second}
