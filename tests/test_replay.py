"""Recorded vendor sessions (tests/replay/*/, made by ``pouracquit sync --record``) replayed through
``pouracquit sync`` with no sandbox running: the same receipts come out, every recorded call is made
and no other. Also: what a recording redacts (core.redaction)."""

from __future__ import annotations

import gzip
import json
import shutil
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from replay_harness import Replayer, ReplayMiss, replaying

from pouracquit.app.cli import main
from pouracquit.app.toml_out import dumps
from pouracquit.core import intake as intake_module
from pouracquit.core.config import parse_settings
from pouracquit.core.recording import EXCHANGES, Recorder
from pouracquit.core.redaction import Redactor
from pouracquit.core.service import Service

HERE = Path(__file__).resolve().parent / "replay"
SESSIONS = sorted(p for p in HERE.iterdir() if (p / "session.json").exists())
# what a replay must reproduce: the receipt ids are replayed (below), the rest comes from the recorded answers
COMPARED = ("id", "source_id", "kind", "payment_version", "status", "number", "document_name", "ledger_id",
            "ledger_attachment_id", "crm_attachment_id", "currency", "amount")


def _replay(session: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Replayer, int, list[dict]]:
    """``pouracquit sync`` against the recording; the receipts it produced."""
    replayer = Replayer(session)
    ids = replayer.receipt_ids()
    real = intake_module.new_receipt

    # receipt ids are random (uuid4) and the vendors' idempotency keys are derived from them: the
    # replay gives each receipt the id it had when recorded, so every key and reference matches
    def recorded_id(connection: str, invoice: Any, version: int, **kw: Any) -> Any:
        receipt = real(connection, invoice, version, **kw)
        receipt.id = ids.get((connection, invoice.source_id, receipt.kind, version), receipt.id)
        return receipt

    monkeypatch.setattr(intake_module, "new_receipt", recorded_id)
    config = workdir / "replay.toml"
    data = replayer.config(workdir)
    config.write_text(dumps(data), encoding="utf-8")
    with replaying(replayer):
        code = main(["sync", "--config", str(config)])
    service = Service.open(parse_settings(data, origin="replay"))
    try:
        produced = [{"connection": r.connection, **{f: getattr(r, f) for f in COMPARED}, "amount": str(r.amount)}
                    for r in service.store.receipts(limit=100_000)]
    finally:
        service.close()
    return replayer, code, produced


def _key(r: dict) -> tuple:
    return (r["connection"], r["source_id"], r["kind"], r["payment_version"])


@pytest.mark.parametrize("session", SESSIONS, ids=[p.name for p in SESSIONS])
def test_recorded_session_replays_with_the_same_receipts(session: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    replayer, code, produced = _replay(session, tmp_path, monkeypatch)
    assert replayer.misses == [], "requests the recording does not have"
    assert replayer.unused() == [], "recorded requests the replay never made"
    assert code == 0
    recorded = sorted(({f: r[f] for f in ("connection", *COMPARED)} for r in replayer.session["receipts"]), key=_key)
    assert sorted(produced, key=_key) == recorded
    assert len(recorded) >= 5 and all(r["status"] == "done" and r["ledger_id"] and r["crm_attachment_id"]
                                      and r["ledger_attachment_id"] for r in recorded)
    assert sum(Decimal(r["amount"]) for r in produced) == sum(Decimal(r["amount"]) for r in recorded)


def test_a_missing_or_an_extra_call_fails_the_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay is loud both ways: a request the recording lacks, a recorded request never made."""
    session = tmp_path / "session"
    shutil.copytree(SESSIONS[0], session)
    lines = (session / EXCHANGES).read_text(encoding="utf-8").splitlines()
    dropped = json.loads(lines[-1])
    extra = {**dropped, "seq": 10_000, "key": "GET /never/asked", "url": "http://127.0.0.1:1/never/asked"}
    (session / EXCHANGES).write_text("\n".join([*lines[:-1], json.dumps(extra)]) + "\n", encoding="utf-8")
    replayer, code, _ = _replay(session, tmp_path / "work", monkeypatch)
    # the first miss is the dropped call; when it was a batch (HubSpot's notes), the receipts it
    # carried then go one by one with lookups, which the recording lacks too
    assert replayer.misses[0] == dropped["key"]
    assert replayer.unused() == ["#10000 GET /never/asked"]
    assert code == 1  # the receipt whose call found no answer did not finish


def test_a_call_outside_the_recording_raises(tmp_path: Path) -> None:
    import requests

    replayer = Replayer(SESSIONS[0])
    with replaying(replayer), pytest.raises(ReplayMiss, match="GET /nowhere"):
        requests.get("http://127.0.0.1:9/nowhere", timeout=1)
    assert replayer.misses == ["GET /nowhere"]


@pytest.mark.parametrize("session", SESSIONS, ids=[p.name for p in SESSIONS])
def test_recordings_hold_no_secret_and_stay_small(session: Path) -> None:
    text = (session / EXCHANGES).read_text(encoding="utf-8")
    assert (session / EXCHANGES).stat().st_size < 1_000_000
    for line in text.splitlines():
        ex = json.loads(line)
        for part in (ex["request"], ex["response"]):
            for name, value in part["headers"].items():
                if name.lower() in ("authorization", "cookie", "set-cookie"):
                    assert value == "redacted"
            body = json.dumps(part["body"])
            for secret in ("access_token", "refresh_token", "client_secret"):
                for found in body.split(f'{secret}": "')[1:] + body.split(f"{secret}=")[1:]:
                    assert found.startswith("redacted"), f"{secret} in #{ex['seq']}"
    assert "%PDF" not in text


def test_redactor_makes_each_value_one_placeholder_everywhere() -> None:
    contact = {"Name": "Élise Durand", "EmailAddress": "elise@durand.fr", "Phones": [{"PhoneNumber": "06 12 34 56 78"}],
               "Addresses": [{"AddressLine1": "3 rue des Lilas", "City": "Rennes", "PostalCode": "35000"}]}
    token = {"access_token": "eyJ.abc", "refresh_token": "rt-123", "expires_in": 1800}
    r = Redactor()
    r.collect_json({"Contacts": [contact]})
    r.collect_json(token)
    r.collect_pairs([("grant_type", "authorization_code"), ("code", "c0de-xyz"), ("client_secret", "s3cr3t")])
    r.collect_text("virement sur FR76 3000 6000 0112 3456 7890 189 merci")
    replace = r.replacer()
    out = r.apply_json({"Contacts": [contact], "where": 'Name=="Élise Durand"', **token}, replace)
    assert out["Contacts"][0]["Name"] == "Redacted name 1"
    assert out["where"] == 'Name=="Redacted name 1"'  # the same placeholder inside a query
    assert out["Contacts"][0]["EmailAddress"] == "person1@redacted.invalid"
    assert out["Contacts"][0]["Phones"][0]["PhoneNumber"] == "+33 1 00 00 00 01"
    assert out["Contacts"][0]["Addresses"][0]["AddressLine1"].startswith("Redacted address")
    assert out["Contacts"][0]["Addresses"][0]["City"].startswith("Redacted city")
    assert out["access_token"] == "redacted" and out["refresh_token"] == "redacted" and out["expires_in"] == 1800
    assert r.apply_pairs([("code", "c0de-xyz"), ("grant_type", "authorization_code")], replace) == [
        ("code", "redacted"), ("grant_type", "authorization_code")]
    assert "3000 6000" not in replace("virement sur FR76 3000 6000 0112 3456 7890 189 merci")
    # a VAT number or a tax code is not personal data: left as it is
    assert replace("FR96552100554 TVA 20%") == "FR96552100554 TVA 20%"


class _Vendor(BaseHTTPRequestHandler):
    """A vendor answering every request with a gzip'd token and a cookie."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = gzip.compress(json.dumps({"access_token": "tok-2", "contact": {"name": "Ana Souza"}}).encode())
        self.send_response(200)
        for name, value in (("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                            ("Set-Cookie", "sid=1"), ("Content-Length", str(len(body)))):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


def test_recorder_sees_requests_and_urllib3_and_redacts(tmp_path: Path) -> None:
    import requests
    import urllib3

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Vendor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    recorder = Recorder()
    try:
        with recorder.installed():
            got = requests.post(f"{base}/oauth/token", data={"refresh_token": "rt-9", "grant_type": "refresh_token"},
                                headers={"Authorization": "Basic Y2xpZW50OnNlY3JldA=="}, timeout=5)
            raw = urllib3.PoolManager().request("GET", f"{base}/contacts?email=ana%40ex.fr")
    finally:
        server.shutdown()
    # the callers still read their answers, decoded
    assert got.json()["access_token"] == "tok-2" and json.loads(raw.data)["access_token"] == "tok-2"
    recorder.write(tmp_path / "rec")
    first, second = (json.loads(line) for line in (tmp_path / "rec" / EXCHANGES).read_text().splitlines())
    assert first["key"] == "POST /oauth/token"
    assert first["request"]["body"]["text"] == "refresh_token=redacted&grant_type=refresh_token"
    assert first["request"]["headers"]["Authorization"] == "redacted"
    assert first["response"]["headers"]["Set-Cookie"] == "redacted"
    assert first["response"]["body"]["json"] == {"access_token": "redacted", "contact": {"name": "Redacted name 1"}}
    assert second["key"] == "GET /contacts?email=person1%40redacted.invalid"


def test_record_refuses_a_directory_that_holds_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(dumps(Replayer(SESSIONS[0]).config(tmp_path)), encoding="utf-8")
    target = tmp_path / "rec"
    target.mkdir()
    (target / "exchanges.jsonl").write_text("{}\n", encoding="utf-8")
    assert main(["sync", "--config", str(config), "--record", str(target)]) == 2
    assert "--record" in capsys.readouterr().err
    assert (target / "exchanges.jsonl").read_text(encoding="utf-8") == "{}\n"  # an earlier recording is kept
