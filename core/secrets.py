"""Secrets never live in the TOML: the config names where to read them."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from .errors import ConfigError


class SecretRef(BaseModel):
    """``{ env = "NAME" }`` or ``{ file = "/run/secrets/name" }`` in the config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env = \"VAR\" or file = \"PATH\"")
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def value(self) -> SecretStr:
        """The secret itself; a missing source is a ConfigError naming it."""
        if self.env is not None:
            raw = os.environ.get(self.env)
            if not raw:
                raise ConfigError(f"secret missing: set the environment variable {self.env}")
            return SecretStr(raw)
        assert self.file is not None
        try:
            return SecretStr(self.file.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ConfigError(f"secret file {self.file} unreadable: {exc.strerror}") from None
