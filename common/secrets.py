"""Secrets never live in the TOML: the config names where to read them."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr, ValidationInfo, model_validator

from .errors import ConfigError


class SecretRef(BaseModel):
    """``{ env = "NAME" }`` or ``{ file = "/run/secrets/name" }`` in the config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: str | None = None
    file: Path | None = None
    # the settings key this reference sits under, so an error can name it
    _key: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_source(self, info: ValidationInfo) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env = \"VAR\" or file = \"PATH\"")
        self._key = info.field_name
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def value(self) -> SecretStr:
        """The secret itself; a missing, empty or blank one is a ConfigError
        naming the key and its source: an empty token or HMAC key would let
        anyone in (an empty bearer, a signature anyone can compute)."""
        key = f"secret {self._key}" if self._key else "secret"
        if self.env is not None:
            raw = os.environ.get(self.env)
            if raw is None:
                raise ConfigError(f"{key} missing: set the environment variable {self.env}")
        else:
            assert self.file is not None
            try:
                raw = self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{key}: file {self.file} unreadable: {exc.strerror}") from None
        if not raw.strip():
            raise ConfigError(f"{key} is empty: put the secret in the {self.describe()}")
        return SecretStr(raw)
