"""QuickBooks Online, a ledger: connector in this folder, default mapping in
``mappings/quickbooks.toml``, emulator in ``sandbox/quickbooks/``."""

from pouracquit.connectors.registry import Vendor

VENDOR = Vendor(name="quickbooks", role="ledger", connector="pouracquit.connectors.quickbooks.ledger:QuickBooksLedger",
                mapping="quickbooks", emulator="pouracquit.sandbox.quickbooks.emulator")
