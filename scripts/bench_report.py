"""The table `make bench` ends with: one row per figure of issue #18, ours on each backend
run, the Celery peer's best pool when it ran, the target and whether each backend met it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from scripts.bench_peer import PeerFigures
from scripts.run_platform import SERVICES

BACKEND_TITLES = {"sqlite": "ours (SQLite)", "postgres": "ours (PostgreSQL)"}


@dataclass(frozen=True)
class Row:
    key: str  # the figure's name in the sections' results
    label: str
    higher_is_better: bool
    target: float | None = None  # a bound of its own
    peer: str | None = None  # the peer's SUMMARY row with the same figure (a regex)
    beat_peer: bool = False  # the target is the peer's best pool
    beat: str | None = None  # the target is this other figure, on the same backend
    digits: int = 1


ROWS = [
    Row(
        "burst_per_second",
        "execution path, burst (one worker): executions/s",
        True,
        peer=r"burst \(.*executions/s end to end",
        beat_peer=True,
    ),
    Row(
        "backlog_per_second",
        "execution path, backlog drained (one worker): executions/s",
        True,
        peer=r"backlog \(.*SIGSTOP.*executions/s",
        beat_peer=True,
    ),
    Row(
        "unloaded_spawn_p50_ms",
        "unloaded created -> spawn p50 ms",
        False,
        8,
        peer=r"unloaded \(.*created -> spawn p50",
    ),
    Row(
        "unloaded_spawn_p99_ms",
        "unloaded created -> spawn p99 ms",
        False,
        20,
        peer=r"unloaded: created -> spawn p99",
    ),
    Row(
        "burst_cpu_ms",
        "burst CPU/execution, all processes + DB + broker: ms",
        False,
        5,
        peer=r"burst CPU ms/exec: \+ postgres \+ redis",
        digits=2,
    ),
    Row(
        "backlog_cpu_ms",
        "backlog CPU/execution, all processes + DB + broker: ms",
        False,
        5,
        peer=r"backlog CPU ms/exec: \+ postgres \+ redis",
        digits=2,
    ),
    Row("panel_per_second", "panel path end to end (loaded): executions/s", True, 200),
    Row("panel_unloaded_p50_ms", "panel unloaded accepted -> succeeded p50 ms", False, 50),
    Row("panel_cpu_ms", "panel CPU/execution, all processes + DB + broker: ms", False, 10),
    Row("one_operation_per_second", "burst, 2 workers, 1 operation-svc: executions/s", True),
    Row(
        "two_operations_per_second",
        "burst, 2 workers, 2 operation-svc: executions/s",
        True,
        beat="one_operation_per_second",
    ),
    *(
        Row(f"ready_s:{name}", f"{name}: launch -> ready s", False, 3, digits=2)
        for name in SERVICES
    ),
    *(Row(f"rss_mb:{name}", f"{name}: idle RSS MB", False, 80, digits=0) for name in SERVICES),
    Row("outbox_p50_ms", "outbox commit -> consumer handles p50 ms", False),
    Row("output_drained_mib_s", "output past the caps, drained: MiB/s (any backend)", True),
    Row("output_masked_mib_s", "output forwarded with masking: MiB/s (any backend)", True),
    Row("sqs_botocore_ms", "SQS call CPU, aiobotocore: ms (any backend)", False, digits=2),
    Row("sqs_wire_ms", "SQS call CPU, SQSWire (what runs): ms (any backend)", False, digits=2),
]


Best = tuple[float, str] | None  # the peer's best figure and its pool


def peer_best(row: Row, peer: PeerFigures) -> Best:
    """The best pool's figure for ``row`` and the pool's name."""
    label = next((label for label in peer if row.peer and re.match(row.peer, label)), None)
    if label is None:
        return None
    pools = peer[label]
    pool = (max if row.higher_is_better else min)(pools, key=pools.__getitem__)
    return pools[pool], pool


def target_text(row: Row) -> str:
    sign = ">=" if row.higher_is_better else "<="
    if row.beat_peer:
        return f"{sign} peer's best"
    if row.beat:
        return "> 1 operation-svc"
    return "" if row.target is None else f"{sign} {row.target:g}"


def verdict(row: Row, value: float | None, figures: dict[str, float], best: Best) -> str:
    """Whether ``value`` met the row's target on a backend whose figures are ``figures``."""
    if value is None:
        return "-"
    if row.beat_peer:
        if best is None:
            return "no peer"
        bound: float | None = best[0]
    else:
        bound = figures.get(row.beat) if row.beat else row.target
    if bound is None:
        return "-"
    if row.beat:
        met = value > bound
    elif row.higher_is_better:
        met = value >= bound
    else:
        met = value <= bound
    return "met" if met else "NOT met"


def print_table(results: dict[str, dict[str, float]], peer: PeerFigures | None) -> None:
    """``results``: backend -> figure name -> value, for each backend run."""
    backends = list(results)
    header = ["figure", *(BACKEND_TITLES[b] for b in backends)]
    header += ["peer's best pool"] if peer else []
    header += ["target", "met? (" + " / ".join(backends) + ")"]
    lines = [header]
    for row in ROWS:
        values = [results[backend].get(row.key) for backend in backends]
        if all(value is None for value in values):
            continue
        best = peer_best(row, peer) if peer else None
        cells = [row.label]
        cells += ["-" if value is None else f"{value:.{row.digits}f}" for value in values]
        if peer:
            cells.append("-" if best is None else f"{best[0]:.{row.digits}f} ({best[1]})")
        verdicts = [
            verdict(row, value, results[backend], best)
            for backend, value in zip(backends, values, strict=True)
        ]
        met = "-" if set(verdicts) == {"-"} else " / ".join(verdicts)
        cells += [target_text(row), met]
        lines.append(cells)
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
    print(f"\n{rule}\nSUMMARY (issue #18 targets)")
    for n, line in enumerate(lines):
        print(
            "  ".join(
                cell.ljust(width) if column == 0 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(line, widths, strict=True))
            )
        )
        if n == 0:
            print("-" * len(rule))
    print(rule)
