"""The archive and audit trail: verify, tamper detection, the public verify page, render."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pouracquit.app.admin import AdminServer
from pouracquit.app.cli import main
from pouracquit.common.model import Address, Party
from pouracquit.state.tables import Event


def test_archive_verify_detects_edits_and_removals(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=10)
    config = rig.write_config()
    assert main(["sync", "--config", str(config)]) == 0
    assert main(["archive", "verify", "--config", str(config)]) == 0
    assert ": OK" in capsys.readouterr().out

    service = rig.service()
    done = service.store.receipts("demo", "done")
    kinds = [e.kind for e in service.store.events(done[0].id)]
    assert kinds == ["payment_detected", "number", "render", "archive", "ledger_record", "ledger_attach",
                     "crm_attach", "receipt_done"]

    admin = AdminServer(service).start()
    try:
        import urllib.request

        with urllib.request.urlopen(f"{admin.url}/receipts/{done[0].id}/verify", timeout=5) as resp:
            page = resp.read().decode()
        assert "Document authentique" in page and (done[0].number or "") in page

        archived = Path(service.wiring(service.settings.connections[0]).archive.path_for(done[0].document_sha256))
        os.chmod(archived, 0o644)
        archived.write_bytes(archived.read_bytes() + b"%tampered")
        with urllib.request.urlopen(f"{admin.url}/receipts/{done[0].id}/verify", timeout=5) as resp:
            assert "a été modifié" in resp.read().decode()
    finally:
        admin.stop()

    with service.store.session() as session:
        victim = session.get(Event, ("default", 3))
        session.delete(victim)
        session.commit()
    assert main(["archive", "verify", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"document {done[0].document_sha256}: content altered" in out
    assert "event #4: entries 3..3 are missing" in out


def test_render_command_and_template_errors(make_rig, make_invoice, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=1)
    invoice = make_invoice(number="F-2026-0042")
    invoice = invoice.model_copy(update={"customer": Party(
        name="Zoë Bréhaut", kind="person", email="zoe@example.org",
        address=Address(line1="3 place Bellecour", postal_code="69002", city="Lyon"))})
    source = tmp_path / "invoice.json"
    source.write_text(invoice.model_dump_json())
    config = rig.write_config()
    out = tmp_path / "preview.pdf"
    assert main(["render", "--invoice", str(source), "--out", str(out), "--config", str(config)]) == 0
    assert out.read_bytes().startswith(b"%PDF-")

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "receipt.html").write_text("<html>\n<body>\n{{ seller.name }\n</body></html>\n")
    rig.config["document"]["template_dir"] = str(templates)
    config = rig.write_config()
    assert main(["render", "--invoice", str(source), "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "template error at" in err and "receipt.html, line 3" in err

    bad = tmp_path / "bad.json"
    data = json.loads(invoice.model_dump_json())
    data["currency"] = "EURO"
    bad.write_text(json.dumps(data))
    assert main(["render", "--invoice", str(bad), "--config", str(config)]) == 2
