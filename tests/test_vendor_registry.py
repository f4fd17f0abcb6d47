"""One registration per vendor (connectors/<vendor>/__init__.py) names all its parts,
and each part is where it says; reading the registrations imports no vendor SDK."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from pouracquit.common.errors import ConfigError
from pouracquit.connectors.base import OAuthConnector
from pouracquit.connectors.registry import factory, vendors
from pouracquit.mappings import load_mapping
from pouracquit.sandbox.launch import EMULATORS

EXPECTED = {"hubspot": "source", "salesforce": "source", "zoho": "source", "quickbooks": "ledger", "xero": "ledger"}


def test_every_vendor_is_registered_once_with_its_role() -> None:
    assert {name: v.role for name, v in vendors().items()} == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_part_a_registration_names_is_there(name: str) -> None:
    record = vendors()[name]
    cls = factory(name, record.role)
    assert (cls.vendor, cls.role) == (name, record.role)
    assert isinstance(cls, OAuthConnector)  # every vendor here is authorised with `pouracquit connect`
    assert load_mapping(record.mapping)
    emulator = importlib.import_module(record.emulator)
    assert all(hasattr(emulator, part) for part in ("SANDBOX", "connector_settings", "demo_seed"))
    assert EMULATORS[name].module == record.emulator  # the launcher takes it from the registration


def test_a_vendor_in_the_wrong_role_or_unknown_is_one_config_line() -> None:
    with pytest.raises(ConfigError, match="xero is a ledger, it cannot be used as a source"):
        factory("xero", "source")
    with pytest.raises(ConfigError, match="unknown vendor 'sage'; installed connectors: hubspot, "):
        factory("sage", "ledger")


def test_reading_the_registrations_imports_no_vendor_sdk() -> None:
    # (intuitlib is left out: its namespace .pth file registers it at interpreter start)
    probe = ("import sys; from pouracquit.connectors.registry import vendors; vendors(); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('hubspot', 'quickbooks', 'simple_salesforce', 'requests')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
