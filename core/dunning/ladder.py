"""Which reminder an unpaid invoice is due today: the ladder and the calendar.

Pure functions of dates: the selection and its tests need neither a store nor a CRM.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
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
    """The step to send today (its index in the ladder) and the earlier ones it passes over."""

    step: int
    template: str
    days_late: int
    passed_over: tuple[int, ...] = ()


def step_due(due_date: date, today: date, steps: Sequence[Step], done: Collection[int]) -> Due | None:
    """The latest step reached by ``today`` that was never written (sent, skipped...), or None.

    After a pause (days off, the service stopped) only the latest reached step goes out:
    the earlier unsent ones are passed over, never sent late beside a firmer one.
    """
    late = (today - due_date).days
    reached = [i for i, step in enumerate(steps) if late >= step.after_days]
    if not reached or reached[-1] in done:
        return None
    last = reached[-1]
    return Due(step=last, template=steps[last].template, days_late=late,
               passed_over=tuple(i for i in reached[:-1] if i not in done))
