"""Throughput of the document step: N one-page receipts with Factur-X and a QR code.

Run:  .venv/bin/python bench/bench_render.py [N]  (make bench runs bench/render.py)
Prints documents per second per core (one process, one core, one Renderer,
as a pipeline worker uses it).  Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time
from datetime import UTC, date, datetime

from pouracquit.common.model import Address, Invoice, InvoiceStatus, Line, Party, Payment, PaymentMethod
from pouracquit.common.money import Money
from pouracquit.core.document import DocumentSettings, PaidReceipt, Renderer, Seller
from pouracquit.sandbox.launch import DEMO_SELLER

SELLER = Seller.model_validate(DEMO_SELLER)


def receipt(i: int) -> PaidReceipt:
    lines = tuple(
        Line(description=f"Prestation {i}-{k}", quantity=str(k + 1), unit_price="125.50", vat_rate=rate)
        for k, rate in enumerate(["20", "10", "5.5", "20", "2.1"])
    )
    base = dict(
        source_id=f"src-{i}",
        number=f"F-2026-{i:05d}",
        currency="EUR",
        issue_date=date(2026, 3, 2),
        customer=Party(
            name=f"Client {i} SAS",
            siren="443061841",
            address=Address(line1="5 avenue Foch", postal_code="69006", city="Lyon"),
        ),
        lines=lines,
        status=InvoiceStatus.PAID,
        modified_at=datetime(2026, 3, 3, tzinfo=UTC),
    )
    gross = Invoice(**base, amount_paid=Money(amount="0", currency="EUR")).gross_total
    invoice = Invoice(
        **base,
        amount_paid=gross,
        payments=(Payment(amount=gross, paid_at=datetime(2026, 3, 3, 9, tzinfo=UTC), method=PaymentMethod.TRANSFER),),
    )
    return PaidReceipt(invoice=invoice, number=f"F-2026-{i:05d}", issued_on=date(2026, 3, 3), receipt_id=f"r{i}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    renderer = Renderer(SELLER, DocumentSettings(verify_base_url="https://receipts.example"))
    receipts = [receipt(i) for i in range(n + 1)]
    renderer.render(receipts[0])  # warm-up: first use loads fonts and code paths
    profile = cProfile.Profile() if os.environ.get("PROFILE") else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profile:
        profile.enable()
    for r in receipts[1:]:
        renderer.render(r)
    if profile:
        profile.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"{n} documents in {wall:.2f} s wall, {cpu:.2f} s CPU")
    print(f"{n / wall:.1f} documents/s (wall), {n / cpu:.1f} documents/s/core (CPU)")
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
