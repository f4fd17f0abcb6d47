"""Vendor adapters: one module per vendor and role, found through entry points."""
