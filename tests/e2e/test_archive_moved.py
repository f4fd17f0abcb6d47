"""`archive verify` answers the same from any working directory, and checks
the data directory the config names, also after the data was moved."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pouracquit.app.cli import main
from pouracquit.app.toml_out import dumps
from pouracquit.core.service import Service


def test_verify_a_moved_copy_from_elsewhere(make_rig, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=6)
    site = tmp_path / "site"
    site.mkdir()
    data = json.loads(json.dumps(rig.config))
    data["data_dir"] = "data"  # relative: the config file's own directory
    (site / "pouracquit.toml").write_text(dumps(data), encoding="utf-8")
    monkeypatch.chdir(site)
    assert main(["sync", "--config", "pouracquit.toml"]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(site, copy)
    service = Service.open(rig.settings())
    service.close()
    from pouracquit.core.config import load_settings
    moved = load_settings(copy / "pouracquit.toml")
    opened = Service.open(moved)
    try:
        altered, removed = opened.store.receipts("demo", "done")[:2]
    finally:
        opened.close()
    pdfs = {p.stem: p for p in (copy / "data" / "archive").rglob("*.pdf")}
    os.chmod(pdfs[altered.document_sha256], 0o600)
    pdfs[altered.document_sha256].write_bytes(b"%PDF-1.7 forged")
    pdfs[removed.document_sha256].unlink()
    monkeypatch.chdir("/")
    capsys.readouterr()
    assert main(["archive", "verify", "--config", str(copy / "pouracquit.toml")]) == 1
    out = capsys.readouterr().out
    assert f"document {altered.document_sha256}: content altered" in out
    assert f"document {removed.document_sha256}: missing" in out
    assert main(["archive", "verify", "--config", str(site / "pouracquit.toml")]) == 0
