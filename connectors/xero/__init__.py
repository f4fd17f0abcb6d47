"""Xero, a ledger: connector in this folder, default mapping in
``mappings/xero.toml``, emulator in ``sandbox/xero/``."""

from pouracquit.connectors.registry import Vendor

VENDOR = Vendor(name="xero", role="ledger", connector="pouracquit.connectors.xero.ledger:XeroLedger",
                mapping="xero", emulator="pouracquit.sandbox.xero.emulator")
