"""HubSpot CRM, a CRM source: connector in this folder, default mapping in
``mappings/hubspot.toml``, emulator in ``sandbox/hubspot/``."""

from pouracquit.connectors.registry import Vendor

VENDOR = Vendor(name="hubspot", role="source", connector="pouracquit.connectors.hubspot.source:HubSpotSource",
                mapping="hubspot", emulator="pouracquit.sandbox.hubspot.emulator")
