"""When a schedule fires: its slots, computed from the schedule alone (never from how long a
loop slept), so that every replica, and every restart, agrees on them. Times are aware
datetimes in UTC; nothing here reads a clock.

Cron expressions (five fields, or croniter's ``@hourly`` and the like) name wall-clock
times in the schedule's IANA timezone, which croniter iterates in. Across a change of
daylight saving time (checked against croniter 7.0, see tests/operation_svc/test_schedule_slots.py):

- a wall-clock time that does not exist (spring forward: 02:30 in Europe/Berlin on
  2026-03-29) fires at the end of the gap, **03:00 local** (01:00 UTC), as croniter gives it;
  an hourly ``30 * * * *`` has no 02:30 slot that day;
- a wall-clock time that occurs twice (fall back: 02:30 in Europe/Berlin on 2026-10-25)
  fires **once, at its first occurrence** (02:30 CEST, 00:30 UTC): croniter gives both and
  the repeat is dropped. That holds for every expression (``30 * * * *`` does not fire at
  the repeated 02:30 either): a cron expression names wall-clock times, and each fires once.

An interval counts from ``starts_at`` (or the schedule's creation) in UTC: daylight saving
time does not move it. Jitter delays each slot's fire by an offset of 0 to ``jitter_seconds``
derived from the schedule and the slot, the same in every replica; the slot itself (the
unique key of its run) is not moved.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadDateError, croniter

TICK = timedelta(microseconds=1)


# croniter's ``R`` (``R``, ``R(0-29)``, ``R/5``) draws a value at random each time an
# expression is read: every replica, and every next slot computed, would pick another time.
_RANDOM_FIELD = re.compile(r"r(\(\d+-\d+\))?(/\d+)?", re.IGNORECASE)
NOT_A_CRON = (
    "not a cron expression of five fields (minute hour day month weekday) naming a time that exists"
)


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is no schedule's cron, or None: five fields (minutes to weekdays; no
    seconds field) or an ``@`` alias, naming times that exist (not the 31st of February), the
    same times wherever and whenever they are computed."""
    fields = expression.split()
    if any(_RANDOM_FIELD.fullmatch(field) for field in fields):
        return "R (a random value) is not taken: each replica would draw another; write the value"
    if not (len(fields) == 5 or expression.startswith("@")) or not croniter.is_valid(expression):
        return NOT_A_CRON
    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        return NOT_A_CRON
    return None


def cron_shortest_gap(expression: str) -> timedelta:
    """The least time between two fires of a valid ``expression``, from its minutes and
    hours: its closest two times of day, or its last and first as on two days in a row."""
    fields = croniter.expand(expression)[0]
    minutes, hours = (
        range(count) if field == ["*"] else [int(each) for each in field]
        for field, count in ((fields[0], 60), (fields[1], 24))
    )
    times = sorted(hour * 60 + minute for hour in hours for minute in minutes)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    return timedelta(minutes=min([*gaps, times[0] + 24 * 60 - times[-1]]))


def timezone_named(name: str) -> ZoneInfo | None:
    """The IANA timezone ``name``, or None when there is none of that name.

    A name is looked up as a path in the time zone database: one naming a folder of it
    (``America``) is an IsADirectoryError, one too long for a file name an OSError, a file
    that is no zone (``zone.tab``) a ValueError. Only the database's zones are names: not
    the files beside them that are zones too but not the same on every host (``localtime``,
    the host's own; ``posixrules``; ``Factory``; the ``posix/`` and ``right/`` copies), or
    replicas would fire one schedule at different times."""
    if name not in _zone_names() or name in _HOST_ZONES:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


_HOST_ZONES = frozenset({"localtime", "Factory"})


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


@dataclass(frozen=True, slots=True)
class Timing:
    """When a schedule's slots are: ``cron`` in ``timezone``, or every ``interval`` from
    ``anchor``; none before ``starts_at`` or after ``ends_at``."""

    cron: str | None
    interval: timedelta | None
    timezone: ZoneInfo
    anchor: datetime
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot strictly after ``after``, or None when the schedule has ended."""
        if self.starts_at is not None:
            after = max(after, self.starts_at - TICK)
        try:
            slot = self._next_cron(after) if self.cron else self._next_interval(after)
        except OverflowError:  # past the year 9999: the schedule has ended
            return None
        if self.ends_at is not None and slot > self.ends_at:
            return None
        return slot

    def slots(self, after: datetime) -> Iterator[datetime]:
        """The slots after ``after``, in order, until the schedule ends."""
        slot = self.next_slot(after)
        while slot is not None:
            yield slot
            slot = self.next_slot(slot)

    def latest_slot(self, at_or_before: datetime) -> datetime | None:
        """The last slot at or before ``at_or_before`` (None if there is none): a jump over
        a long outage without walking every slot of it."""
        if self.ends_at is not None:
            at_or_before = min(at_or_before, self.ends_at)
        if self.cron:
            local = (at_or_before + TICK).astimezone(self.timezone)
            found = croniter(self.cron, local).get_prev(datetime)
            while _repeated_wall_time(found):
                found = croniter(self.cron, found).get_prev(datetime)
            slot: datetime = found.astimezone(UTC)
        else:
            assert self.interval is not None
            if at_or_before < self.anchor:
                return None
            slot = self.anchor + (at_or_before - self.anchor) // self.interval * self.interval
        if self.starts_at is not None and slot < self.starts_at:
            return None
        return slot

    def _next_cron(self, after: datetime) -> datetime:
        assert self.cron is not None
        moments = croniter(self.cron, after.astimezone(self.timezone))
        while True:
            found: datetime = moments.get_next(datetime)
            if not _repeated_wall_time(found):
                return found.astimezone(UTC)

    def _next_interval(self, after: datetime) -> datetime:
        assert self.interval is not None
        if after < self.anchor:
            return self.anchor
        return self.anchor + ((after - self.anchor) // self.interval + 1) * self.interval


def _repeated_wall_time(moment: datetime) -> bool:
    """Whether ``moment`` is the second occurrence of a wall-clock time (fall back)."""
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def jittered(slot: datetime, schedule_id: uuid.UUID, jitter_seconds: int) -> datetime:
    """When ``slot`` fires: up to ``jitter_seconds`` after it, by an offset every replica
    computes alike (spreading the schedules of one slot time over the jitter window)."""
    if jitter_seconds <= 0:
        return slot
    digest = hashlib.sha256(f"{schedule_id}/{slot.isoformat()}".encode()).digest()
    return slot + timedelta(seconds=int.from_bytes(digest[:4], "big") % (jitter_seconds + 1))
