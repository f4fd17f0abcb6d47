"""Which reminder an unpaid invoice is due today: the ladder and the calendar.

Pure functions of dates: the selection and its tests need neither a store nor a CRM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import holidays

from .settings import DunningSettings, Step


@lru_cache(maxsize=8)
def _french_holidays(subdivision: str | None) -> holidays.HolidayBase:
    # years are filled in lazily by the library as dates are looked up
    return holidays.country_holidays("FR", subdiv=subdivision)


def day_off(day: date, settings: DunningSettings) -> str | None:
    """Why no reminder goes out on ``day`` (a weekend, a named public holiday), or None."""
    if settings.skip_weekends and day.weekday() >= 5:
        return "weekend"
    if settings.skip_holidays:
        name = _french_holidays(settings.holidays_subdivision).get(day)
        if name:
            return f"public holiday ({name})"
    return None


@dataclass(frozen=True)
class Due:
    """The step to send today: its index in the ladder, its tone, how late the invoice is."""

    step: int
    template: str
    days_late: int


def step_due(due_date: date, today: date, steps: Sequence[Step], written: Mapping[int, date]) -> Due | None:
    """The next step of the ladder if it is due today, else None. ``written``: the steps
    already written for this invoice (sent, failed, unknown) and the day each was.

    The steps go out in order, each at ``after_days`` past the due date and never sooner
    after the previous one than the ladder spaces them: an invoice found long overdue
    (dunning just switched on, the service stopped for weeks) starts with the courteous
    reminder, never with the formal notice, and a day off shifts the following steps.
    """
    late = (today - due_date).days
    following = [i for i in range(len(steps)) if i not in written]
    if not following or late < steps[following[0]].after_days:
        return None
    step = following[0]
    if step > 0 and written:
        gap = steps[step].after_days - steps[step - 1].after_days
        if (today - max(written.values())).days < gap:
            return None
    return Due(step=step, template=steps[step].template, days_late=late)
