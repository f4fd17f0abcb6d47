"""`pouracquit demo --json`: the quick start's main job, on the built-in sandboxes."""

from __future__ import annotations

import json
from pathlib import Path

from pouracquit.app.cli import main


def test_demo_json_summary(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    assert main(["demo", "--json", "--out", str(out), "--count", "60"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("receipts_created", "attachments_crm", "attachments_ledger", "api_calls",
                "api_calls_per_receipt", "failed"):
        assert key in summary
    assert summary["failed"] == 0
    assert summary["receipts_created"] == summary["attachments_crm"] == summary["attachments_ledger"] >= 30
    assert set(summary["api_calls"]) == {"hubspot", "quickbooks"}
    # API calls are the scarce resource: reads in pages, bookings in batches
    assert summary["api_calls_per_receipt"] <= 4
    pdfs = sorted(out.glob("*.pdf"))
    assert len(pdfs) == summary["receipts_created"]
    assert all(p.read_bytes().startswith(b"%PDF-") for p in pdfs)
