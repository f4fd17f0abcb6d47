"""The companies one deployment serves, and each one's wiring.

Without ``[tenants]`` the config is one company, the tenant "default", exactly as
before. With it, every ``<dir>/<name>.toml`` is one company: its keys laid over the
deployment file's, key by key, so a firm sets its SMTP relay or document defaults
once and each client its seller, connections and secrets. Whether a company is
worked is kept in the store's tenant registry (``pouracquit tenants disable``), so a
disabled company stays disabled whatever happens to its file.

Files are read again when they change (``refresh``): companies come and go while
the fleet runs. One unreadable file stops only its own company, with the reason.
"""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import select

from pouracquit.common.calls import GateFactory
from pouracquit.common.errors import ConfigError
from pouracquit.state.db import open_engine
from pouracquit.state.store import Store
from pouracquit.state.tables import DEFAULT_TENANT, TenantRecord
from pouracquit.state.tenancy import check_tenant_name
from pouracquit.state.types import utcnow

from .config import DEPLOYMENT_KEYS, Settings, parse_settings, read_toml
from .datadir import secure_data_dir
from .service import Service


def laid_over(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` laid over ``base``: tables merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in top.items():
        out[key] = laid_over(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) \
            else value
    return out


def tenant_settings(deployment: Settings, name: str, data: Mapping[str, Any], origin: str,
                    overrides: Mapping[str, Any] | None = None) -> Settings:
    """One company's settings: its file's keys over the deployment's (and ``overrides`` over both)."""
    check = sorted(DEPLOYMENT_KEYS & set(data))
    if check:
        raise ConfigError(f"{origin}: {check[0]}: set for the whole deployment, not in a tenant's file")
    base = {k: v for k, v in deployment._raw.items() if k != "tenants"}
    merged = laid_over(laid_over(base, data), overrides or {})
    merged["tenant"] = name
    # absolute, so the company's copy does not re-anchor them on its own file
    merged["data_dir"] = str(deployment.data_dir)
    merged["archive_dir"] = str(deployment.archive / name)  # each company's documents apart
    # the company's QR and survey links name it: the admin server then reads the receipt in its rows
    # only (app/verify_page.py, app/survey_page.py); a URL the company's own file sets is kept as it is
    own = {key: data.get(key) or {} for key in ("document", "survey")}
    document, survey = dict(merged.get("document") or {}), dict(merged.get("survey") or {})
    if document.get("verify_base_url") and "verify_base_url" not in own["document"]:
        merged["document"] = {**document, "verify_base_url": f"{document['verify_base_url'].rstrip('/')}/t/{name}"}
    public = survey.get("public_url") or (merged.get("admin") or {}).get("public_url")
    if public and "public_url" not in own["survey"]:
        merged["survey"] = {**survey, "public_url": f"{public.rstrip('/')}/t/{name}"}
    return parse_settings(merged, origin=origin)


def load_tenant(deployment: Settings, name: str, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Company ``name`` of a deployment, read from its file; a one-company config is its own "default"."""
    if deployment.tenants is None:
        if name != DEFAULT_TENANT:
            raise ConfigError(f"no tenant {name!r}: this config serves one company (tenant {DEFAULT_TENANT!r})")
        return deployment
    try:
        check_tenant_name(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    path = deployment.tenants.dir / f"{name}.toml"
    data = read_toml(path, f"no tenant {name!r}: {path} not found")
    return tenant_settings(deployment, name, data, str(path), overrides)


@dataclass
class _Loaded:
    stamp: tuple[int, int]  # the file's mtime and size when read
    settings: Settings | None
    problem: str | None


class Tenants:
    """The companies of one deployment over one state store."""

    def __init__(self, settings: Settings, store: Store,
                 gates: Callable[[str, str, str], GateFactory] | None = None,
                 overrides: Mapping[str, Any] | None = None) -> None:
        """``gates``: the connectors' rate gates by (tenant, connection, vendor); in-process when None.
        ``overrides``: keys the process lays over every company's (a fleet worker's own choices)."""
        self.settings, self.store, self.gates, self.overrides = settings, store, gates, overrides
        self._lock = threading.Lock()
        self._files: dict[str, _Loaded] = {}
        self._services: dict[str, Service] = {}
        self.refresh()

    @classmethod
    def open(cls, settings: Settings, gates: Callable[[str, str, str], GateFactory] | None = None,
             overrides: Mapping[str, Any] | None = None) -> Tenants:
        secure_data_dir(settings)
        return cls(settings, Store(open_engine(settings.store_url), settings.tenant), gates, overrides)

    @property
    def many(self) -> bool:
        return self.settings.tenants is not None

    @property
    def directory(self) -> Path | None:
        return self.settings.tenants.dir if self.settings.tenants is not None else None

    # -- the directory --------------------------------------------------------------
    def refresh(self) -> list[str]:
        """Read new and changed tenant files; returns the names whose settings changed."""
        if self.directory is None:
            return []
        found = {}
        for path in sorted(self.directory.glob("*.toml")) if self.directory.is_dir() else []:
            try:
                stat = path.stat()
            except OSError:
                continue
            found[path.stem] = (stat.st_mtime_ns, stat.st_size)
        changed = []
        with self._lock:
            for name in set(self._files) - set(found):
                self._files.pop(name)
                self._drop(name)
                changed.append(name)
            for name, stamp in found.items():
                if name in self._files and self._files[name].stamp == stamp:
                    continue
                self._files[name] = self._read(name, stamp)
                self._drop(name)
                changed.append(name)
        return changed

    def _read(self, name: str, stamp: tuple[int, int]) -> _Loaded:
        try:
            return _Loaded(stamp, load_tenant(self.settings, name, self.overrides), None)
        except ConfigError as exc:
            return _Loaded(stamp, None, str(exc))

    def _drop(self, name: str) -> None:
        service = self._services.pop(name, None)
        if service is not None:
            service.stop.set()
            service.close()

    def problems(self) -> dict[str, str]:
        """Tenant files that cannot be used, with why."""
        with self._lock:
            return {name: f.problem for name, f in self._files.items() if f.problem}

    # -- the registry ---------------------------------------------------------------
    def records(self) -> dict[str, TenantRecord]:
        with self.store.session() as session:
            return {row.name: row for row in session.exec(select(TenantRecord))}

    def names(self, *, enabled_only: bool = True) -> list[str]:
        """The companies served (only those enabled and usable, unless ``enabled_only`` is False)."""
        if not self.many:
            return [DEFAULT_TENANT]
        with self._lock:
            names = sorted(self._files)
            usable = {n for n, f in self._files.items() if f.settings is not None}
        if not enabled_only:
            return names
        records = self.records()
        return [n for n in names if n in usable and (n not in records or records[n].enabled)]

    def set_enabled(self, name: str, enabled: bool) -> None:
        with self.store.session() as session:
            row = session.get(TenantRecord, name)
            if row is None:
                known = self.names(enabled_only=False)
                if name not in known:
                    raise ConfigError(f"no tenant {name!r}; known: {', '.join(known) or 'none'}")
                row = TenantRecord(name=name)
            row.enabled, row.changed_at = enabled, utcnow()
            session.add(row)
            session.commit()
        if not enabled:
            with self._lock:
                self._drop(name)

    def add(self, name: str, source: Path) -> Settings:
        """Check ``source`` as the company ``name`` and place it in the tenants directory."""
        if self.directory is None:
            raise ConfigError("this config serves one company; add [tenants] dir = \"tenants\" to serve several")
        try:
            check_tenant_name(name)
            text = source.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{source}: {getattr(exc, 'strerror', None) or exc}") from None
        target = self.directory / f"{name}.toml"
        if target.exists():
            raise ConfigError(f"tenant {name!r} exists already ({target})")
        settings = tenant_settings(self.settings, name, data, str(source))
        self.directory.mkdir(parents=True, exist_ok=True)
        # the file may name secrets: only the service's user reads it
        target.touch(mode=0o600)
        target.write_text(text, encoding="utf-8")
        self.refresh()
        if name in self.records():  # a company added back after it was disabled
            self.set_enabled(name, True)
        return settings

    # -- wiring ---------------------------------------------------------------------
    def settings_of(self, name: str) -> Settings:
        if not self.many:
            if name != DEFAULT_TENANT:
                raise ConfigError(f"no tenant {name!r}: this config serves one company (tenant {DEFAULT_TENANT!r})")
            return self.settings
        with self._lock:
            loaded = self._files.get(name)
        if loaded is None:
            raise ConfigError(f"no tenant {name!r} in {self.directory}")
        if loaded.settings is None:
            raise ConfigError(loaded.problem or f"tenant {name!r} is unusable")
        return loaded.settings

    def service(self, name: str) -> Service:
        """The wiring of company ``name``, built once (again after its file changed)."""
        with self._lock:
            if name in self._services:
                return self._services[name]
        settings = self.settings_of(name)
        service = Service(settings=settings, store=self.store.for_tenant(name))
        if self.gates is not None:
            gates = self.gates
            service.gates = lambda connection, vendor: gates(name, connection, vendor)
        with self._lock:
            return self._services.setdefault(name, service)

    def close(self) -> None:
        with self._lock:
            for name in list(self._services):
                self._drop(name)
