"""The pipeline's CRM attach in batches (connectors.base.BatchAttach), on the engine
fakes: intents first, answers matched by key, and every failure path writing once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine_fakes import FakeLedger, FakeRenderer, FakeSource, wiring

from pouracquit.common.errors import PermanentError, RetryableError
from pouracquit.common.model import Invoice
from pouracquit.connectors.base import AttachOrder, BatchAttach
from pouracquit.core.intake import IntakeReport, take_page
from pouracquit.core.pipeline import DrainReport, Pipeline
from pouracquit.state.store import Store


@dataclass
class BatchSource(FakeSource):
    """Writes each document once per name; ``fault`` may change a batch's answer."""

    attach_batch_size: int = 3
    batches: list[list[AttachOrder]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    fault: Callable[[dict[str, str | PermanentError]], None] = lambda answer: None

    def attach_documents(self, orders: Sequence[AttachOrder]) -> dict[str, str | PermanentError]:
        self.batches.append(list(orders))
        answer: dict[str, str | PermanentError] = {}
        for order in orders:
            if not (order.may_exist and order.document.name in self.written):
                self.written.append(order.document.name)
            answer[order.key] = f"note-{self.written.index(order.document.name)}"
        self.fault(answer)
        return answer


def run(store: Store, tmp: Path, source: BatchSource, invoices: list[Invoice]) -> DrainReport:
    source.put(*invoices)
    for page in source.changes(None):
        with store.unit() as u:
            take_page(u, "conn", page, IntakeReport())
    return Pipeline(wiring(store, tmp, source, FakeLedger(), FakeRenderer()), "me").drain()


def test_documents_are_attached_in_batches_with_the_stored_invoice(store: Store, tmp_path: Path,
                                                                   make_invoice) -> None:  # type: ignore[no-untyped-def]
    source = BatchSource()
    assert isinstance(source, BatchAttach)
    report = run(store, tmp_path, source, [make_invoice(f"s{i}", number=f"F-{i}") for i in range(7)])
    assert report.outcomes["done"] == 7  # the batch ended them: the drain counts them all the same
    fresh = [b for b in source.batches if not any(o.may_exist for o in b)]
    assert [len(b) for b in fresh] == [3, 3, 1] and len(source.batches) == 3
    assert sorted(source.written) == sorted(f"Facture-F-{i}.pdf" for i in range(7))
    assert all(o.invoice.source_id == o.ref for b in source.batches for o in b)
    receipts = store.receipts()
    assert {r.status for r in receipts} == {"done"} and len({r.crm_attachment_id for r in receipts}) == 7


def test_a_lost_batch_answer_is_found_by_each_receipt_not_written_twice(store: Store, tmp_path: Path,
                                                                        make_invoice) -> None:  # type: ignore[no-untyped-def]
    lost = iter([True])

    def lose(answer: dict[str, str | PermanentError]) -> None:
        if next(lost, False):
            raise RetryableError("the answer was lost on the way back")

    source = BatchSource(fault=lose)
    run(store, tmp_path, source, [make_invoice(f"s{i}", number=f"F-{i}") for i in range(3)])
    assert len(source.written) == 3  # written by the lost batch, found by the retries
    assert [o.may_exist for o in source.batches[1]] == [True]  # then one by one, looking first
    assert {r.status for r in store.receipts()} == {"done"}


def test_one_refused_and_one_unanswered_order_leave_the_others_done(store: Store, tmp_path: Path,
                                                                    make_invoice) -> None:  # type: ignore[no-untyped-def]
    first = iter([True])

    def partial(answer: dict[str, str | PermanentError]) -> None:
        keys = sorted(answer)
        if len(keys) == 3 and next(first, False):
            answer[keys[0]] = PermanentError("the deal was deleted")
            del answer[keys[1]]  # a 207 input HubSpot did not create: not in results

    source = BatchSource(fault=partial)
    report = run(store, tmp_path, source, [make_invoice(f"s{i}", number=f"F-{i}") for i in range(3)])
    assert report.outcomes == {"done": 2, "failed": 1}
    by_status = {r.status for r in store.receipts()}
    assert by_status == {"done", "failed"}
    failed = [r for r in store.receipts() if r.status == "failed"]
    assert len(failed) == 1 and "crm_attach: the deal was deleted" in (failed[0].last_error or "")
    assert len(source.written) == 3  # the unanswered one was found on its retry, not written again
