"""Insight: what the state store and the ledger say about payments, for people.

``facts`` reads the store (read-only), ``payments`` turns it into per-customer
payment behaviour, ``reconcile`` compares the CRM, the store and the ledger at
amount level, ``render`` writes either report as a table, CSV, JSON or HTML.
"""
