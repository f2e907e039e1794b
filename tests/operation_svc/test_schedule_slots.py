"""Slots are computed from the schedule alone: cron in its timezone (what croniter does on
the days daylight saving time changes, and the policy on top of it), intervals in UTC,
jitter the same in every replica, and missed slots told apart from those on time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from operation_svc.schedules.scheduler import MAX_RECORDED_MISSES, due_slots
from operation_svc.schedules.slots import NOT_A_CRON, Timing, cron_problem, jittered, timezone_named

BERLIN = ZoneInfo("Europe/Berlin")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def cron(expression: str, **bounds: datetime) -> Timing:
    return Timing(expression, None, BERLIN, anchor=utc(2026, 1, 1), **bounds)


def every(seconds: int, anchor: datetime, **bounds: datetime) -> Timing:
    return Timing(None, timedelta(seconds=seconds), BERLIN, anchor, **bounds)


def test_a_daily_0230_on_the_spring_forward_day_fires_once_at_0300_local() -> None:
    slots = list(islice(cron("30 2 * * *").slots(utc(2026, 3, 27, 12)), 3))
    assert slots == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]
    assert slots[1].astimezone(BERLIN).strftime("%H:%M %Z") == "03:00 CEST"


def test_a_daily_0230_on_the_fall_back_day_fires_once_at_the_first_0230() -> None:
    slots = list(islice(cron("30 2 * * *").slots(utc(2026, 10, 24, 12)), 2))
    assert slots == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    assert slots[0].astimezone(BERLIN).strftime("%H:%M %Z") == "02:30 CEST"


def test_an_hourly_cron_fires_each_wall_clock_time_once_across_both_changes() -> None:
    spring = islice(cron("30 * * * *").slots(utc(2026, 3, 29, 0)), 3)
    assert [s.astimezone(BERLIN).strftime("%H:%M") for s in spring] == ["01:30", "03:30", "04:30"]
    fall = list(islice(cron("30 * * * *").slots(utc(2026, 10, 24, 23)), 4))
    assert [s.astimezone(BERLIN).strftime("%H:%M %Z") for s in fall] == [
        "01:30 CEST",
        "02:30 CEST",
        "03:30 CET",  # the repeated 02:30 (CET) is dropped
        "04:30 CET",
    ]


def test_an_interval_counts_in_utc_from_its_anchor_whatever_the_daylight_saving_time() -> None:
    timing = every(3600, utc(2026, 3, 28, 23, 15))
    assert list(islice(timing.slots(utc(2026, 3, 29, 0, 0)), 3)) == [
        utc(2026, 3, 29, 0, 15),
        utc(2026, 3, 29, 1, 15),
        utc(2026, 3, 29, 2, 15),
    ]
    assert timing.next_slot(utc(2026, 1, 1)) == utc(2026, 3, 28, 23, 15)
    assert timing.latest_slot(utc(2026, 3, 29, 2, 14)) == utc(2026, 3, 29, 1, 15)


def test_no_slot_before_starts_at_nor_after_ends_at() -> None:
    timing = cron("0 * * * *", starts_at=utc(2026, 5, 1, 10, 30), ends_at=utc(2026, 5, 1, 12))
    assert list(timing.slots(utc(2026, 5, 1))) == [utc(2026, 5, 1, 11), utc(2026, 5, 1, 12)]
    assert timing.latest_slot(utc(2026, 5, 1, 10, 59)) is None
    assert timing.latest_slot(utc(2026, 6, 1)) == utc(2026, 5, 1, 12)


def test_cron_expressions_have_five_fields() -> None:
    assert cron_problem("*/5 * * * *") is None
    assert cron_problem("@hourly") is None
    assert cron_problem("0 9 * mar fri") is None  # names with an r are no random value
    assert cron_problem("* * * * * *") == NOT_A_CRON  # seconds would slip under the minimum
    assert cron_problem("61 * * * *") == NOT_A_CRON
    assert cron_problem("every minute") == NOT_A_CRON


def test_a_random_field_is_refused_since_every_replica_would_draw_another_time() -> None:
    for expression in ("R * * * *", "0 r * * *", "R(0-29) * * * *", "0 0 * * R/2"):
        assert (problem := cron_problem(expression)) is not None
        assert problem.startswith("R (a random value)"), expression


def test_jitter_is_the_same_everywhere_and_within_its_bounds() -> None:
    schedule_id, slot = uuid.uuid4(), utc(2026, 5, 1, 12)
    fires = {jittered(slot + timedelta(minutes=i), schedule_id, 30) for i in range(200)}
    offsets = {(fire - slot).total_seconds() % 60 for fire in fires}
    assert offsets <= set(range(31))
    assert len(offsets) > 10
    assert jittered(slot, schedule_id, 30) == jittered(slot, schedule_id, 30)
    assert jittered(slot, schedule_id, 0) == slot


def test_slots_past_the_grace_are_missed_and_a_long_outage_jumps_to_its_latest() -> None:
    timing = every(60, utc(2026, 5, 1))
    now = utc(2026, 5, 1, 0, 10, 30)
    due = due_slots(timing, utc(2026, 5, 1, 0, 5), now, timedelta(seconds=90), lambda s: s)
    assert due.missed == [utc(2026, 5, 1, 0, m) for m in range(5, 9)]
    assert due.on_time == [utc(2026, 5, 1, 0, 9), utc(2026, 5, 1, 0, 10)]
    assert due.next_slot == utc(2026, 5, 1, 0, 11)
    week_later = utc(2026, 5, 8)
    due = due_slots(timing, utc(2026, 5, 1), week_later, timedelta(seconds=90), lambda s: s)
    assert len(due.missed) == MAX_RECORDED_MISSES + 1
    assert due.missed[-1] == week_later - timedelta(minutes=2)  # the latest before the grace
    assert due.on_time == [week_later - timedelta(minutes=1), week_later]


def test_a_name_too_long_for_a_file_names_no_timezone() -> None:
    # Past the API's 64 characters, but the lookup must answer rather than raise.
    assert timezone_named("x" * 300) is None
    assert timezone_named("Europe/" + "é" * 200) is None


def test_a_long_outage_fires_no_missed_slot_when_jitter_delays_its_latest_past_the_grace() -> None:
    """The jump took the latest slot before the cut-off only if its jittered fire was before
    it too; else it stopped after the first 50 misses, and the next 50, hours late, fired."""
    timing = every(60, utc(2026, 5, 1))
    now, grace = utc(2026, 5, 1, 10, 0, 30), timedelta(seconds=90)
    cut_off = now - grace
    latest = utc(2026, 5, 1, 9, 59)  # the last slot before the cut-off, 30 s before it

    def fire_at(slot: datetime) -> datetime:
        return slot + timedelta(seconds=45 if slot == latest else 0)

    due = due_slots(timing, utc(2026, 5, 1), now, grace, fire_at)
    assert len(due.missed) == MAX_RECORDED_MISSES + 1
    assert due.missed[-1] == latest - timedelta(minutes=1)
    assert due.on_time == [latest, utc(2026, 5, 1, 10, 0)]
    assert all(fire_at(slot) >= cut_off for slot in due.on_time)
