"""In-memory parts for the engine's fast tests: a CRM source, a ledger and a
renderer on the Protocols, with scripted faults. No sandbox, no PDF layout."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pouracquit.common.errors import BadRecord
from pouracquit.common.model import Invoice
from pouracquit.connectors.base import Document, Page, ReceiptOrder
from pouracquit.core.archive import Archive
from pouracquit.core.config import NumberingSettings, PipelineSettings
from pouracquit.core.document import PaidReceipt
from pouracquit.core.pipeline import Wiring
from pouracquit.state.store import Store


@dataclass
class FakeSource:
    vendor: str = "fake-crm"
    records: dict[str, Invoice] = field(default_factory=dict)
    attached: dict[str, list[str]] = field(default_factory=dict)

    def put(self, *invoices: Invoice) -> None:
        for invoice in invoices:
            self.records[invoice.source_id] = invoice

    def changes(self, cursor: str | None) -> Iterator[Page]:
        yield Page(invoices=list(self.records.values()), cursor=str(len(self.records)))

    def get(self, ref: str) -> Invoice:
        if ref not in self.records:
            raise BadRecord(f"no record {ref}")
        return self.records[ref]

    def attach(self, ref: str, document: Document, *, may_exist: bool) -> str:
        names = self.attached.setdefault(ref, [])
        if not (may_exist and document.name in names):
            names.append(document.name)
        return f"crm-{ref}-{names.index(document.name)}"


@dataclass
class FakeLedger:
    vendor: str = "fake-ledger"
    orders: list[ReceiptOrder] = field(default_factory=list)
    attached: dict[str, list[str]] = field(default_factory=dict)
    before_write: Callable[[ReceiptOrder], None] = lambda order: None

    def find_receipt(self, order: ReceiptOrder) -> str | None:
        return next((f"L{i}" for i, o in enumerate(self.orders) if o.key == order.key), None)

    def record_receipt(self, order: ReceiptOrder, *, may_exist: bool) -> str:
        if may_exist and (found := self.find_receipt(order)):
            return found
        self.before_write(order)
        self.orders.append(order)
        return f"L{len(self.orders) - 1}"

    def attach(self, ref: str, document: Document, *, may_exist: bool) -> str:
        self.attached.setdefault(ref, []).append(document.name)
        return f"att-{ref}"


@dataclass
class FakeRenderer:
    rendered: list[PaidReceipt] = field(default_factory=list)
    fail: Callable[[PaidReceipt], None] = lambda paid: None

    def check(self, paid: PaidReceipt) -> bytes:
        if paid.invoice.customer.name == "Sans Adresse":
            raise BadRecord("missing mandatory mention customer.address.line1")
        return b"<xml/>"

    def render(self, paid: PaidReceipt) -> bytes:
        self.fail(paid)
        self.rendered.append(paid)
        return f"%PDF {paid.number} {paid.receipt_id}".encode()

    def filename(self, paid: PaidReceipt) -> str:
        return f"{'Avoir' if paid.credits else 'Facture'}-{paid.number}.pdf"


def wiring(store: Store, tmp: Path, source: FakeSource, ledger: FakeLedger, renderer: FakeRenderer,
           **policy: float) -> Wiring:
    return Wiring(connection="conn", source=source, ledger=ledger, store=store, renderer=renderer,  # type: ignore[arg-type]
                  archive=Archive(tmp / "archive"), numbering=NumberingSettings(),
                  policy=PipelineSettings(**policy))  # type: ignore[arg-type]
