"""The execution lifecycle is enforced in one place; illegal moves are ignored."""

from __future__ import annotations

import pytest

from operation_svc.executions.state import can_enter, transition
from operation_svc.models import Execution

TERMINAL = ["succeeded", "failed", "timed_out", "cancelled", "lost", "rejected", "expired"]


def execution(status: str) -> Execution:
    return Execution(status=status)


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("pending", "running"),
        ("pending", "cancelled"),
        ("pending", "rejected"),
        ("running", "succeeded"),
        ("running", "failed"),
        ("running", "timed_out"),
        ("running", "cancelled"),
        ("running", "lost"),
        ("awaiting_approval", "pending"),
        ("awaiting_approval", "rejected"),
        ("awaiting_approval", "expired"),
        ("awaiting_approval", "cancelled"),
    ],
)
def test_legal_transitions_apply_and_stamp_the_time(start: str, target: str) -> None:
    moving = execution(start)
    assert transition(moving, target)
    assert moving.status == target
    assert (moving.finished_at is not None) == (target in TERMINAL)
    assert (moving.started_at is not None) == (target == "running")


@pytest.mark.parametrize("terminal", TERMINAL)
@pytest.mark.parametrize("target", ["pending", "running", *TERMINAL])
def test_nothing_leaves_a_terminal_state(terminal: str, target: str) -> None:
    ended = execution(terminal)
    assert not transition(ended, target)
    assert ended.status == terminal


@pytest.mark.parametrize("target", ["succeeded", "failed", "timed_out", "lost", "pending"])
def test_a_pending_execution_cannot_finish_without_running(target: str) -> None:
    assert not transition(execution("pending"), target)


@pytest.mark.parametrize("target", ["running", "succeeded", "failed", "lost"])
def test_a_run_awaiting_approval_can_only_be_approved_or_ended(target: str) -> None:
    assert not transition(execution("awaiting_approval"), target)


def test_claims_only_take_pending_executions() -> None:
    assert can_enter("running") == {"pending"}
