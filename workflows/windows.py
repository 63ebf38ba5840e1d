"""Maintenance windows as a calendar: the occurrence a moment falls in, and when the next one opens.

Pure functions of the configured windows and a moment; every time given and returned is aware (UTC out). Each
occurrence is laid out in its window's own time zone, so a window at 02:00 Europe/Berlin stays at 02:00 local
time across daylight saving changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from workflows.config import MaintenanceWindow

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
_HORIZON_DAYS = 15  # windows repeat weekly: two weeks ahead hold every occurrence there is to find


@dataclass(frozen=True, slots=True)
class Opening:
    """One occurrence of a maintenance window: from `start` to `end` (UTC), and how it reads locally."""

    start: datetime
    end: datetime
    label: str  # "Sun 02:00-04:00 UTC", in the window's own time zone
    zone: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def zone(name: str) -> tzinfo:
    """A configured time zone; UTC needs no time zone database."""
    return UTC if name == "UTC" else ZoneInfo(name)


def local_text(moment: datetime, zone_name: str) -> str:
    """`Sun 4 Jan 02:00 UTC`: a moment as the people of a window's time zone read it."""
    local = moment.astimezone(zone(zone_name))
    return f"{WEEKDAYS[local.weekday()].capitalize()} {local.day} {local:%b %H:%M} {zone_name}"


def span_text(window: MaintenanceWindow) -> str:
    """`02:00-04:00 UTC`."""
    return f"{window.start:%H:%M}-{window.end:%H:%M} {window.timezone}"


def openings(windows: Iterable[MaintenanceWindow], around: datetime, days: int = _HORIZON_DAYS) -> list[Opening]:
    """Every occurrence from the day before `around` for `days` days, earliest first."""
    found: list[Opening] = []
    for window in windows:
        tz = zone(window.timezone)
        first = around.astimezone(tz).date() - timedelta(days=1)
        for offset in range(days + 1):
            day = first + timedelta(days=offset)
            if WEEKDAYS[day.weekday()] not in window.days:
                continue
            start = datetime.combine(day, window.start, tz)
            end_day = day if window.end > window.start else day + timedelta(days=1)
            end = datetime.combine(end_day, window.end, tz)
            label = f"{WEEKDAYS[day.weekday()].capitalize()} {span_text(window)}"
            found.append(Opening(start.astimezone(UTC), end.astimezone(UTC), label, window.timezone))
    return sorted(found, key=lambda o: (o.start, -o.seconds))


def opening_at(windows: Iterable[MaintenanceWindow], moment: datetime) -> Opening | None:
    """The occurrence `moment` falls in (the one lasting longest, where windows overlap), or None."""
    inside = [o for o in openings(windows, moment, days=2) if o.contains(moment)]
    return max(inside, key=lambda o: o.end, default=None)


def next_opening(windows: Iterable[MaintenanceWindow], after: datetime, lasting: float = 0.0) -> Opening | None:
    """The first occurrence opening at or after `after` that lasts at least `lasting` seconds; None if none does."""
    return next((o for o in openings(windows, after) if o.start >= after and o.seconds >= lasting), None)


def in_words(seconds: float) -> str:
    """`5 h 12 min`, `3 d 4 h`, `40 s`: a duration as a person says it, to the minute once it is that long."""
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"
