"""Start vendor emulators and describe how a connection reaches them.

Each emulator entry knows its sandbox class, how to seed it with the demo
data set, and the connector settings (with secrets in files, never inline)
that point a real connector at it. The demo, ``pouracquit sandbox``, the
end-to-end tests and the contract suite all start sandboxes through here.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from pouracquit.common.errors import ConfigError
from pouracquit.connectors.registry import vendors

from .mail import MailCatcher
from .server import Sandbox


def secret_file(directory: Path, name: str, value: str) -> dict[str, str]:
    """Write one secret (mode 600) and return its ``{ file = ... }`` reference."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(value, encoding="utf-8")
    os.chmod(path, 0o600)
    return {"file": str(path)}


@dataclass(frozen=True)
class Emulator:
    """One vendor's emulator. Its module (the vendor record's ``emulator``) exposes
    ``SANDBOX`` (the Sandbox class), ``connector_settings(box, secrets_dir)`` and
    ``demo_seed(count, seed)``; it is imported on first use."""

    vendor: str
    role: str
    module: str

    def _load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def make(self, **options: Any) -> Sandbox:
        return self._load().SANDBOX(**options)

    def settings(self, box: Sandbox, secrets: Path) -> dict[str, Any]:
        return self._load().connector_settings(box, secrets)

    def demo_seed(self, count: int, seed: int) -> dict[str, Any]:
        return self._load().demo_seed(count, seed)


# The launcher reads the vendors' registrations (connectors/<vendor>/__init__.py) for where
# each emulator lives; the emulators themselves never import a connector.
EMULATORS: dict[str, Emulator] = {
    v.name: Emulator(v.name, v.role, v.emulator) for v in sorted(vendors().values(), key=lambda v: v.name)
}

DEFAULT_SOURCE, DEFAULT_LEDGER = "hubspot", "quickbooks"

DEMO_SELLER: dict[str, Any] = {
    "name": "Atelier Lumière SAS",
    "legal_form": "SAS",
    "share_capital": "10000",
    "siren": "552100554",
    "siret": "55210055410004",
    "rcs_city": "Lyon",
    "ape": "6201Z",
    "vat_number": "FR96552100554",
    "email": "facturation@atelier-lumiere.example",
    "phone": "+33 4 72 00 00 00",
    "iban": "FR7630006000011234567890189",
    "bic": "AGRIFRPPXXX",
    "address": {"line1": "12 rue de la République", "postal_code": "69002", "city": "Lyon", "country": "FR"},
}


def state_key(secrets: Path) -> dict[str, str]:
    """A fresh Fernet key for the state store, as a ``{ file = ... }`` reference."""
    from cryptography.fernet import Fernet

    return secret_file(secrets, "state_key", Fernet.generate_key().decode())


def emulator(vendor: str, role: str) -> Emulator:
    found = EMULATORS.get(vendor.strip().lower())
    if found is None or found.role != role:
        choices = ", ".join(sorted(v for v, e in EMULATORS.items() if e.role == role))
        raise ConfigError(f"no {role} sandbox named {vendor!r} (choose from {choices})")
    return found


@dataclass
class Launched:
    """Running sandboxes for one CRM → ledger pair and the connection that uses them."""

    source: Sandbox
    ledger: Sandbox
    connection: dict[str, Any] = field(default_factory=dict)
    # the local mail catcher the [email] section sends to (sandbox/mail.py)
    mail: MailCatcher | None = None

    @property
    def sandboxes(self) -> dict[str, Sandbox]:
        return {self.source.vendor: self.source, self.ledger.vendor: self.ledger}

    def stop(self) -> None:
        self.source.stop()
        self.ledger.stop()
        if self.mail is not None:
            self.mail.stop()


def launch(source: str | None, ledger: str | None, secrets: Path, *, count: int = 60, seed: int = 7,
           time_factor: float = 1.0, name: str = "demo") -> Launched:
    """Start, seed and describe a source and a ledger sandbox (defaults when None)."""
    src = emulator(source or DEFAULT_SOURCE, "source")
    led = emulator(ledger or DEFAULT_LEDGER, "ledger")
    boxes = []
    for emu in (src, led):
        box = emu.make(time_factor=time_factor).start()
        spec = emu.demo_seed(count, seed)
        if spec:
            box.seed(spec)
        boxes.append(box)
    connection = {
        "name": name,
        "interval_seconds": 60,
        "jitter_seconds": 2,
        # the seeded history is paid from January 2026 on; a real connection leaves start_date
        # unset (its first sync's day), so that its first run does not book years of invoices
        "start_date": "2026-01-01",
        "source": src.settings(boxes[0], secrets),
        "ledger": led.settings(boxes[1], secrets),
    }
    return Launched(source=boxes[0], ledger=boxes[1], connection=connection, mail=MailCatcher().start())
