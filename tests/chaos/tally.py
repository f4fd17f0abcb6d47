"""Counts every exactly-once figure of a chaos run without stopping at the first
broken one (``run_chaos.check`` asserts; this measures, so a report can say
how many of each went wrong, not only that something did)."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from chaos.run_chaos import ALLOCATED, ChaosRig, cli

ARCHIVED = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})\.pdf")


def _extra(counter: Counter[str]) -> int:
    """How many more than one each key has, summed: the duplicates."""
    return sum(n - 1 for n in counter.values() if n > 1)


def tally(rig: ChaosRig, books: dict[str, Any], crm: dict[str, Any]) -> dict[str, Any]:
    """Duplicates, losses and gaps over the store, the archive and the two sandboxes' states."""
    paid = {inv["id"] for inv in crm["invoices"] if inv["properties"]["hs_invoice_status"] == "paid"}
    receipts = rig.rows("SELECT id, source_id, status, number, ledger_id, document_sha256, intent FROM receipt")
    by_source = Counter(r[1] for r in receipts)
    done = {r[1] for r in receipts if r[2] == "done"}

    sales = books.get("SalesReceipts", [])
    by_doc = Counter(sr["DocNumber"] for sr in sales)
    attach = Counter(link["EntityRef"]["value"] for a in books.get("Attachables", [])
                     for link in a.get("AttachableRef", []))
    booked_ids = {sr["Id"] for sr in sales}
    notes = Counter(ref for note in crm.get("notes", []) for ref in note.get("associations", {}).get("invoices", []))
    files = Counter(f.get("name") for f in crm.get("files", []) if not f.get("archived"))

    documents = rig.rows("SELECT sha256, receipt_id FROM document")
    docs_per_receipt = Counter(d[1] for d in documents)
    on_disk = {m.group(1) for p in rig.archive.rglob("*.pdf")
               if (m := ARCHIVED.fullmatch(p.relative_to(rig.archive).as_posix()))}
    referenced = {r[5] for r in receipts if r[5]}

    allocated = sorted(int(m.group(1)) for r in receipts if r[3] and (m := ALLOCATED.match(r[3])))
    top = max(allocated, default=0)
    series = rig.rows("SELECT series, last FROM number_series")
    number_events = Counter(json.loads(d)["number"] for (d,) in rig.rows("SELECT data FROM event_log WHERE kind = "
                                                                        "'number'"))
    number_events_per_receipt = Counter(r for (r,) in rig.rows("SELECT receipt_id FROM event_log WHERE kind = "
                                                               "'number'"))
    verify = cli(rig.config, "archive", "verify")
    return {
        "paid_invoices": len(paid),
        "receipts_by_status": dict(Counter(r[2] for r in receipts)),
        "duplicate_receipts": _extra(by_source),
        "lost": len(paid - done),
        "salesreceipts": len(sales), "duplicate_salesreceipts": _extra(by_doc),
        "salesreceipts_without_receipt": len(booked_ids - {r[4] for r in receipts}),
        "attachables": sum(attach.values()), "duplicate_attachables": _extra(attach),
        "crm_notes": sum(notes.values()), "duplicate_crm_notes": _extra(notes),
        "crm_files": sum(files.values()), "duplicate_crm_files": _extra(files),
        "paid_without_note": len(paid - set(notes)),
        "archived_pdfs": len(on_disk), "document_rows": len(documents),
        "receipts_with_several_documents": sum(1 for n in docs_per_receipt.values() if n > 1),
        "archived_pdfs_not_sent": len(on_disk - referenced),
        "allocated_numbers": len(allocated), "number_gaps": len(set(range(1, top + 1)) - set(allocated)),
        "number_repeats": _extra(Counter(allocated)), "series_last": [last for _, last in series],
        "numbers_allocated_twice_for_one_receipt": sum(1 for n in number_events_per_receipt.values() if n > 1),
        "number_events_repeating_a_number": _extra(number_events),
        "intents_left": sum(1 for r in receipts if r[6]),
        "archive_verify_exit": verify.returncode,
        "archive_verify": (verify.stdout.strip().splitlines() or verify.stderr.strip().splitlines() or [""])[-1],
    }
