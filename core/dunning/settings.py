"""The [dunning] section of the configuration: the ladder, the hour, the days off."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..document.settings import TEMPLATES as DOCUMENT_TEMPLATES

TEMPLATES = DOCUMENT_TEMPLATES / "dunning"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Step(_Section):
    """One rung of the ladder: ``after_days`` calendar days past the due date, and its tone
    (courtois, ferme, pressant, mise_en_demeure are shipped; a template_dir may add others)."""

    after_days: int = Field(ge=0, le=3650)
    template: str = Field(pattern=r"^[a-z0-9_]{1,40}$")


def _default_ladder() -> list[Step]:
    return [Step(after_days=1, template="courtois"), Step(after_days=7, template="ferme"),
            Step(after_days=15, template="pressant"), Step(after_days=30, template="mise_en_demeure")]


class DunningSettings(_Section):
    """``[dunning]``: off unless ``enabled``; reminders go out through ``[email]``."""

    enabled: bool = False
    # the daily run of `pouracquit run`, Europe/Paris
    hour: int = Field(default=9, ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)
    skip_weekends: bool = True
    skip_holidays: bool = True
    # French public holidays of this subdivision too (holidays library codes: "57" Moselle and
    # "6AE" Alsace keep Good Friday and St Stephen's Day; "971"... for overseas departments)
    holidays_subdivision: str | None = None
    language: Literal["fr", "en"] = "fr"
    steps: list[Step] = Field(default_factory=_default_ladder, min_length=1, max_length=12)
    # a folder of templates named like the shipped ones, tried before them
    template_dir: Path | None = None

    @property
    def template_folders(self) -> list[Path]:
        return [self.template_dir, TEMPLATES] if self.template_dir is not None else [TEMPLATES]

    @model_validator(mode="after")
    def _ladder(self) -> DunningSettings:
        days = [s.after_days for s in self.steps]
        if days != sorted(set(days)):
            raise ValueError(f"steps must have increasing after_days, got {days}")
        for step in self.steps:  # a missing tone is found at start-up, not on the day it falls due
            name = f"{step.template}.{self.language}.txt"
            if not any((folder / name).is_file() for folder in self.template_folders):
                raise ValueError(f"template {step.template!r} has no file {name} in "
                                 f"{' or '.join(str(f) for f in self.template_folders)}")
        return self

    @field_validator("holidays_subdivision")
    @classmethod
    def _subdivision(cls, v: str | None) -> str | None:
        if v is None:
            return v
        import holidays  # imported here: a config without it need not load the calendar data

        known = holidays.country_holidays("FR").subdivisions
        if v not in known:
            raise ValueError(f"unknown French subdivision {v!r}; known: {', '.join(known)}")
        return v
