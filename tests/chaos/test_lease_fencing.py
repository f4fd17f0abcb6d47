"""What the two-process chaos run (run_duo.py) found, replayed deterministically
in one process: a worker whose lease lapsed in the middle of a step (a stall
longer than the lease: a loaded machine, a GC pause, a suspended VM) still
commits that step and the local steps after it, over the work of the worker
that took the receipt over. See docs/reliability.md, "Two processes on one
PostgreSQL store"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine_fakes import FakeLedger, FakeRenderer, FakeSource, wiring
from sqlmodel import select

from pouracquit.common.model import Invoice
from pouracquit.core.document import PaidReceipt
from pouracquit.core.intake import new_receipt
from pouracquit.core.pipeline import Pipeline
from pouracquit.state.store import Store
from pouracquit.state.tables import Document, Receipt


class StampedRenderer(FakeRenderer):
    """Two renders of one receipt differ, as real PDFs do (creation time, document id)."""

    def render(self, paid: PaidReceipt) -> bytes:
        return super().render(paid) + f" render {len(self.rendered)}".encode()


def test_a_worker_whose_lease_lapsed_mid_render_commits_nothing(
        store: Store, make_invoice: Callable[..., Invoice], tmp_path: Path) -> None:
    receipt = new_receipt("conn", make_invoice("s1"), 1)
    with store.unit() as u:
        u.save(receipt)
    rid = receipt.id
    source, ledger, renderer = FakeSource(), FakeLedger(), StampedRenderer()
    w = wiring(store, tmp_path, source, ledger, renderer, lease_seconds=30)
    slow, other = Pipeline(w, "worker-a"), Pipeline(w, "worker-b")

    stalled: list[str] = []

    def stall_past_the_lease(paid: PaidReceipt) -> None:
        if stalled:
            return  # only worker a's render stalls
        stalled.append(rid)
        with store.unit() as u:  # a's lease runs out while it renders ...
            row = u.session.get(Receipt, rid)
            assert row is not None
            row.lease_until = datetime.now(UTC) - timedelta(seconds=1)
        assert other.process(rid) == ("done", None)  # ... b takes the receipt over and finishes it
        slow.heartbeat.renew_now()  # a's next heartbeat finds the lease gone (as in the chaos run)

    renderer.fail = stall_past_the_lease
    slow.process(rid)
    with store.unit() as u:
        final = u.session.get(Receipt, rid)
        documents = [d.sha256 for d in u.session.exec(select(Document).where(Document.receipt_id == rid))]
    assert final is not None
    assert len(ledger.orders) == 1 and len(source.attached["s1"]) == 1
    # b's document is the one the vendors got: the receipt must still name it, alone, and stay done
    assert (final.status, final.step) == ("done", "done"), (final.status, final.step)
    assert documents == [final.document_sha256], documents
