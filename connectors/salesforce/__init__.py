"""Salesforce, a CRM source: connector in this folder, default mapping in
``mappings/salesforce.toml``, emulator in ``sandbox/salesforce/``."""

from pouracquit.connectors.registry import Vendor

VENDOR = Vendor(name="salesforce", role="source", connector="pouracquit.connectors.salesforce.source:SalesforceSource",
                mapping="salesforce", emulator="pouracquit.sandbox.salesforce.emulator")
