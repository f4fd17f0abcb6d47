"""The configuration: one TOML file, one frozen pydantic model per section,
validated at start-up. A wrong or missing key is one line naming the key."""

from __future__ import annotations

import difflib
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from pouracquit.common.errors import ConfigError
from pouracquit.common.secrets import SecretRef
from pouracquit.state.tables import DEFAULT_TENANT, TENANT_PATTERN

from .delivery.settings import EmailSettings
from .document.settings import DocumentSettings, Seller
from .dunning.settings import DunningSettings
from .survey import SurveySettings


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LogSettings(_Section):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class StoreSettings(_Section):
    url: str | None = None
    # Fernet key sealing the OAuth tokens kept in the store (`pouracquit keygen` makes one).
    encryption_key: SecretRef = SecretRef(env="POURACQUIT_STATE_KEY")

    @field_validator("url")
    @classmethod
    def _database_url(cls, v: str | None) -> str | None:
        # Imported here: state.db loads alembic, which a config error need not wait for.
        from pouracquit.state.db import normalise_url

        return None if v is None else normalise_url(v)


class AdminSettings(_Section):
    bind: str = "127.0.0.1:8787"
    token: SecretRef | None = None
    # The address vendors reach this server at (behind a proxy): webhook signatures cover it.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")

    @field_validator("bind")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, _, port = v.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"expected HOST:PORT, got {v!r}")
        return v

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.bind.rpartition(":")
        return host.strip("[]"), int(port)


class NumberingSettings(_Section):
    """Numbers for invoices the CRM did not number: ``2026-000123``."""

    series: str = "default"
    prefix: str = "{year}-"
    width: int = Field(default=6, ge=1, le=12)
    # credit notes are always numbered by pouracquit, in their own gapless series
    credit_series: str = "credit"
    credit_prefix: str = "AV-{year}-"

    @model_validator(mode="after")
    def _fits(self) -> NumberingSettings:
        for series, prefix in ((self.series, self.prefix), (self.credit_series, self.credit_prefix)):
            try:
                shown = prefix.format(year=2026)
            except (KeyError, IndexError, ValueError):
                raise ValueError(f"prefix {prefix!r} may only use {{year}}") from None
            # BR-FR-01: a number is at most 35 characters; the store keys a series as "<series>:<prefix>"
            if len(shown) + self.width > 35:
                raise ValueError(f"prefix {prefix!r} with width {self.width} makes numbers longer than 35 characters")
            if len(series) + 1 + len(shown) > 60:
                raise ValueError(f"series {series!r} with its prefix is longer than 60 characters")
        return self


class PipelineSettings(_Section):
    max_attempts: int = Field(default=8, ge=1)
    backoff_seconds: float = Field(default=30.0, gt=0)
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    # renewed every third of it while a receipt is worked (core/lease.py): short, so a killed
    # worker's receipts are taken up again within seconds
    lease_seconds: float = Field(default=30.0, gt=0)
    workers: int = Field(default=4, ge=1, le=32)
    vendor_retry_attempts: int = Field(default=5, ge=1)
    vendor_backoff_seconds: float = Field(default=1.0, gt=0)


class Endpoint(BaseModel):
    """A connector's settings: ``vendor`` plus keys the connector validates."""

    model_config = ConfigDict(frozen=True, extra="allow")

    vendor: str

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class MappingOverrides(_Section):
    source: dict[str, Any] = Field(default_factory=dict)
    ledger: dict[str, Any] = Field(default_factory=dict)


class ConnectionSettings(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    enabled: bool = True
    interval_seconds: float = Field(default=300.0, gt=0)
    jitter_seconds: float = Field(default=15.0, ge=0)
    source: Endpoint
    ledger: Endpoint
    mapping: MappingOverrides = MappingOverrides()
    # money going back after a receipt: a credit note (facture d'avoir), or only an event to look at
    refunds: Literal["credit_note", "flag"] = "credit_note"
    # invoices paid before this day get no receipt (`pouracquit backfill` makes them on demand);
    # unset: the day of the connection's first sync
    start_date: date | None = None


class TenantsSettings(_Section):
    """One deployment for many companies: each ``<dir>/<name>.toml`` is one company's
    [seller], [document], [numbering], [email], [dunning], [survey] and [[connections]],
    laid key by key over this file's."""

    dir: Path


class FleetSettings(_Section):
    """Workers on Celery (``pouracquit worker``) and their one scheduler (``pouracquit scheduler``)."""

    # RabbitMQ (amqp://) or Redis (redis://) carries the tasks; the state store, not the broker,
    # keeps every effect exactly-once, so a redelivered or lost message costs time, never a duplicate
    broker: str = Field(default="amqp://guest:guest@127.0.0.1:5672//", pattern=r"^(amqps?|redis|rediss)://")
    # the connections' shared rate budgets and each tenant's receipts in flight
    redis: str = Field(default="redis://127.0.0.1:6379/0", pattern=r"^rediss?://")
    # fairness: no tenant has more receipts queued or running than this, so one company's
    # backlog cannot make another's receipt wait behind it
    tenant_inflight: int = Field(default=20, ge=1, le=1000)
    batch_size: int = Field(default=10, ge=1, le=100)  # receipts per pipeline task
    tick_seconds: float = Field(default=1.0, gt=0, le=60)
    queue: str = Field(default="pouracquit", pattern=r"^[A-Za-z0-9_.-]{1,100}$")


# the deployment's own keys: the same for every company it serves, refused in a tenant's file
DEPLOYMENT_KEYS = frozenset({"data_dir", "archive_dir", "time_factor", "log", "store", "admin", "pipeline",
                             "tenants", "fleet", "tenant"})


class Settings(_Section):
    # which company these settings are: "default" for a one-company config; a tenant's file name
    tenant: str = Field(default=DEFAULT_TENANT, pattern=TENANT_PATTERN)
    tenants: TenantsSettings | None = None
    fleet: FleetSettings = FleetSettings()
    data_dir: Path = Path("./data")
    archive_dir: Path | None = None
    time_factor: float = Field(default=1.0, gt=0, le=1)
    log: LogSettings = LogSettings()
    store: StoreSettings = StoreSettings()
    admin: AdminSettings = AdminSettings()
    numbering: NumberingSettings = NumberingSettings()
    pipeline: PipelineSettings = PipelineSettings()
    seller: Seller | None = None  # required of a company; a deployment's companies name theirs
    document: DocumentSettings = DocumentSettings()
    email: EmailSettings = EmailSettings()
    dunning: DunningSettings = DunningSettings()
    survey: SurveySettings = SurveySettings()
    connections: list[ConnectionSettings] = Field(default_factory=list)
    # the file as written, for the tenants laid over it (core/tenants.py)
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _one_company_or_many(self) -> Settings:
        if self.tenants is not None:
            for key in ("seller", "connections"):
                if getattr(self, key):
                    raise ValueError(f"{key} belongs in each tenant's file under {self.tenants.dir}, "
                                     f"not in the deployment's")
            return self
        if self.seller is None:
            raise ValueError("seller: missing required key")
        if not self.connections:
            raise ValueError("connections: at least one [[connections]] is required")
        return self

    @property
    def company(self) -> Seller:
        """The seller of a one-company config or of a tenant (never of a deployment)."""
        assert self.seller is not None, "a deployment's settings name no seller; use its tenants' settings"
        return self.seller

    @model_validator(mode="after")
    def _dunning_sends_email(self) -> Settings:
        if self.dunning.enabled and not self.email.enabled:
            raise ValueError("dunning.enabled needs email.enabled: reminders are sent through [email]")
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        names = [c.name for c in self.connections]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"connection names must be unique, repeated: {', '.join(dupes)}")
        return self

    @property
    def archive(self) -> Path:
        return self.archive_dir or self.data_dir / "archive"

    @property
    def store_url(self) -> str:
        from pouracquit.state.db import default_url

        return self.store.url or default_url(self.data_dir)

    def connection(self, name: str) -> ConnectionSettings:
        for conn in self.connections:
            if conn.name == name:
                return conn
        raise ConfigError(f"no connection named {name!r}; configured: {', '.join(c.name for c in self.connections)}")


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def first_error(exc: ValidationError, origin: str) -> ConfigError:
    """Turn pydantic's report into one line naming the key to fix."""
    err = exc.errors()[0]
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "missing required key"
    elif err["type"] == "extra_forbidden":
        close = _close_keys(err["loc"])
        msg = f"unknown key (did you mean {' or '.join(close)}?)" if close else "unknown key (check its spelling)"
    return ConfigError(f"{origin}: {_where(err['loc'])}: {msg}")


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The config section model an annotation holds (through list[...] and X | None)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (found := _section_model(arg)) is not None:
            return found
    return None


def _close_keys(loc: tuple[int | str, ...]) -> list[str]:
    """Known keys spelled like the unknown one at ``loc``."""
    model: type[BaseModel] | None = Settings
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _section_model(field.annotation) if field is not None else None
    if model is None or not isinstance(loc[-1], str):
        return []
    return difflib.get_close_matches(loc[-1], list(model.model_fields), n=2, cutoff=0.6)


def parse_settings(data: dict[str, Any], origin: str = "config", base_dir: Path | None = None) -> Settings:
    """Validate a config mapping; relative paths are taken from ``base_dir``."""
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise first_error(exc, origin) from None
    settings._raw = data
    if base_dir is not None:
        # paths in a config file are the file's own, not the working directory's
        moved = {name: base_dir / path for name in ("data_dir", "archive_dir")
                 if (path := getattr(settings, name)) is not None and not path.is_absolute()}
        if settings.tenants is not None and not settings.tenants.dir.is_absolute():
            moved["tenants"] = TenantsSettings(dir=base_dir / settings.tenants.dir)
        settings = settings.model_copy(update=moved)
        settings._raw = data
    return settings


def read_toml(path: Path, missing: str) -> dict[str, Any]:
    """The TOML file at ``path``; ``missing`` says what its absence means."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(missing) from None
    except OSError as exc:
        raise ConfigError(f"{path} unreadable: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_settings(path: Path) -> Settings:
    """Read and validate the TOML file at ``path``."""
    data = read_toml(path, f"config file {path} not found")
    return parse_settings(data, origin=str(path), base_dir=path.parent)
