"""The Celery peer (``../shared/peers/celery``, beside the project): its own benchmark run
from `make bench` (its output passed through), and the figures of its SUMMARY table."""

from __future__ import annotations

import re
import subprocess

from tests.harness import ROOT

PEER_RUN = ROOT.parent / "shared" / "peers" / "celery" / "run.sh"
SUMMARY_TITLE = "SUMMARY (Celery peer)"

# label of a SUMMARY row -> pool ("prefork x2") -> its figure
PeerFigures = dict[str, dict[str, float]]


def run_peer(executions: int, concurrency: int) -> PeerFigures | None:
    """Runs the peer's benchmark with our load's size; its figures, or None (said why)."""
    if not PEER_RUN.exists():
        print(f"The Celery peer is not there ({PEER_RUN}): the table has no peer column.")
        return None
    print(f"The Celery peer ({PEER_RUN}), its own benchmark (installs its venv the first time):")
    lines = []
    with subprocess.Popen(  # noqa: S603
        [str(PEER_RUN), "--executions", str(executions), "--concurrency", str(concurrency)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as peer:
        assert peer.stdout is not None
        for line in peer.stdout:
            print(f"  | {line}", end="", flush=True)
            lines.append(line.rstrip("\n"))
    figures = parse_summary(lines)
    if peer.returncode or not figures:
        print(
            f"The Celery peer could not be installed or run (exit {peer.returncode}; its "
            "output is above): the table has no peer column."
        )
        return None
    return figures


def parse_summary(lines: list[str]) -> PeerFigures:
    """The rows of the peer's SUMMARY table: a header naming a column per pool, then one
    line per figure whose last fields are the pools' values."""
    titles = [n for n, line in enumerate(lines) if line.startswith(SUMMARY_TITLE)]
    if not titles:
        return {}
    header = lines[titles[0]]
    pools = re.split(r"\s{2,}", header.removeprefix(SUMMARY_TITLE).strip())
    figures: PeerFigures = {}
    for line in lines[titles[0] + 2 :]:
        if line.startswith("="):
            break
        fields = line.split()
        label = " ".join(fields[: -len(pools)])
        figures[label] = dict(zip(pools, map(float, fields[-len(pools) :]), strict=True))
    return figures
