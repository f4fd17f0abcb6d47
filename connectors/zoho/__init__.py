"""Zoho CRM, a CRM source: connector in this folder, default mapping in
``mappings/zoho.toml``, emulator in ``sandbox/zoho/``."""

from pouracquit.connectors.registry import Vendor

VENDOR = Vendor(name="zoho", role="source", connector="pouracquit.connectors.zoho.source:ZohoSource",
                mapping="zoho", emulator="pouracquit.sandbox.zoho.emulator")
