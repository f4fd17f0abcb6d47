"""Rendering on worker processes (document.render_processes): the same
receipts, and a missing mention comes back from a worker naming its field."""

from __future__ import annotations

from pouracquit.core.sync import sync_connection


def test_worker_processes_render_the_same_receipts(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=10)
    rig.config["document"] = {"render_processes": 2}
    rig.config["seller"] = {**rig.config["seller"], "iban": "", "bic": ""}  # transfers then miss a mention
    service = rig.service()
    try:
        result = sync_connection(service, "demo")
    finally:
        service.close()
    receipts = service.store.receipts("demo", limit=100)
    assert receipts and result.error is None
    assert {r.status for r in receipts} <= {"done", "quarantined"}
    done = [r for r in receipts if r.status == "done"]
    stopped = [r for r in receipts if r.status == "quarantined"]
    assert done and stopped, "the demo data pays both by transfer and by other means"
    assert all(r.step == "render" and "missing mandatory mention seller.iban" in (r.last_error or "")
               for r in stopped)
    assert all(r.document_sha256 and r.crm_attachment_id for r in done)
