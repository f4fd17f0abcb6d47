"""``demo`` and ``sandbox``: the product on its built-in vendor emulators."""

from __future__ import annotations

import json
import secrets as token_source
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pouracquit.core.config import AdminSettings, parse_settings
from pouracquit.core.service import Service
from pouracquit.core.sync import sync_connection
from pouracquit.sandbox.launch import DEMO_SELLER, Launched, launch, secret_file, state_key

from .toml_out import dumps

# The QR code of a demo receipt opens its verify page on the local admin API.
LOCAL_VERIFY_URL = f"http://{AdminSettings().bind}"


def _demo_settings(workdir: Path, launched: Launched) -> dict[str, Any]:
    return {
        "data_dir": str(workdir / "data"),
        "store": {"encryption_key": state_key(workdir / "secrets")},
        "seller": DEMO_SELLER,
        "document": {"thank_you": "Merci pour votre confiance.", "verify_base_url": LOCAL_VERIFY_URL},
        "pipeline": {"vendor_backoff_seconds": 0.2, "backoff_seconds": 2.0},
        "email": launched.mail.email_settings() if launched.mail else {},
        "connections": [launched.connection],
    }


def run_demo(source: str | None, ledger: str | None, out: Path, count: int) -> dict[str, Any]:
    """Seed the sandboxes, run one sync, export the PDFs; returns the summary."""
    workdir = Path(tempfile.mkdtemp(prefix="pouracquit-demo-"))
    launched = launch(source, ledger, workdir / "secrets", count=count)
    try:
        settings = parse_settings(_demo_settings(workdir, launched), origin="demo")
        service = Service.open(settings)
        clock = time.monotonic()
        try:
            result = sync_connection(service, "demo")
        finally:
            service.close()
        elapsed = time.monotonic() - clock
        out.mkdir(parents=True, exist_ok=True)
        archive = service.wiring(settings.connections[0]).archive
        done = service.store.receipts("demo", "done", limit=100_000)
        for receipt in done:
            assert receipt.document_sha256 and receipt.document_name
            shutil.copyfile(archive.path_for(receipt.document_sha256), out / receipt.document_name)
        calls = {vendor: box.call_counts()["total"] for vendor, box in launched.sandboxes.items()}
        created = len(done)
        return {
            "source": launched.source.vendor,
            "ledger": launched.ledger.vendor,
            "invoices_seen": result.seen,
            "paid_invoices": result.events["paid"],
            "receipts_created": created,
            "attachments_crm": sum(1 for r in done if r.crm_attachment_id),
            "attachments_ledger": sum(1 for r in done if r.ledger_attachment_id),
            # what the mail catcher received, and of it the messages with their PDF attached
            "emails_sent": len(launched.mail.messages) if launched.mail else 0,
            "emails_with_pdf": sum(1 for m in launched.mail.messages
                                   if any(a["type"] == "application/pdf" for a in m["attachments"]))
            if launched.mail else 0,
            "api_calls": calls,
            "api_calls_per_receipt": round(sum(calls.values()) / created, 2) if created else None,
            "failed": result.outcomes["failed"] + (1 if result.error else 0),
            "quarantined": result.outcomes["quarantined"] + len(result.rejected),
            "retrying": result.outcomes["retrying"],
            "errors": {**result.errors, **({"sync": result.error} if result.error else {})},
            "seconds": round(elapsed, 2),
            "out": str(out),
        }
    finally:
        launched.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def demo_command(source: str | None, ledger: str | None, out: Path, count: int, as_json: bool) -> int:
    console = Console()
    if not as_json:
        console.print(f"Seeding {count} demo invoices in the sandboxes and running one sync…")
    summary = run_demo(source, ledger, out, count)
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        table = Table(title=f"pouracquit demo: {summary['source']} → {summary['ledger']}", show_header=False)
        table.add_column("what")
        table.add_column("value", justify="right")
        rows = [
            ("invoices seen", summary["invoices_seen"]),
            ("receipts created", summary["receipts_created"]),
            ("PDFs attached in the CRM", summary["attachments_crm"]),
            ("PDFs attached in the ledger", summary["attachments_ledger"]),
            ("emails sent", summary["emails_sent"]),
            *((f"API calls, {vendor}", n) for vendor, n in summary["api_calls"].items()),
            ("API calls per receipt", summary["api_calls_per_receipt"]),
            ("failed", summary["failed"]),
            ("quarantined", summary["quarantined"]),
            ("time taken (s)", summary["seconds"]),
        ]
        for what, value in rows:
            table.add_row(what, str(value))
        console.print(table)
        for rid, reason in summary["errors"].items():
            console.print(f"  {rid}: {reason}", markup=False)
        console.print(f"PDFs written to {summary['out']}/")
    return 1 if summary["failed"] else 0


def sandbox_command(source: str | None, ledger: str | None, write_config: str | None, count: int) -> int:
    """Run the emulators until interrupted; optionally write a config for them."""
    config = Path(write_config).resolve() if write_config else None
    secrets = config.with_suffix(".secrets") if config else Path(tempfile.mkdtemp(prefix="pouracquit-sbx-"))
    launched = launch(source, ledger, secrets, count=count, name="sandbox")
    console = Console()
    for vendor, box in launched.sandboxes.items():
        console.print(f"{vendor} sandbox: {box.url}  (state: {box.url}/_sandbox/state)", markup=False)
    if launched.mail is not None:
        console.print(f"mail catcher: SMTP {launched.mail.smtp_host}:{launched.mail.smtp_port}  "
                      f"(received: {launched.mail.url}/_sandbox/mail)", markup=False)
    if config:
        # a token of its own, so that `pouracquit run` on this config opens the admin page at once
        token = secret_file(secrets, "admin_token", token_source.token_urlsafe(24))
        data = {"data_dir": "./pouracquit-data", "store": {"encryption_key": state_key(secrets)},
                "seller": DEMO_SELLER, "document": {"verify_base_url": LOCAL_VERIFY_URL},
                "admin": {"token": token},
                "email": launched.mail.email_settings() if launched.mail else {},
                "connections": [launched.connection]}
        config.write_text(dumps(data), encoding="utf-8")
        console.print(f"config written to {config}: try `pouracquit sync --config {config}`; with "
                      f"`pouracquit run` the admin page is {LOCAL_VERIFY_URL}/admin/ (token in {token['file']})",
                      markup=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.print("sandboxes running; Ctrl-C to stop")
    stop.wait()
    launched.stop()
    return 0
