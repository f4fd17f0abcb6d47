"""The admin server of a deployment of several companies (``pouracquit admin``): two
tenants in one store (SQLite, and the machine's PostgreSQL when it is up), each with a
connection named alike and a receipt with its archived PDF. /status and /metrics per
tenant, and every admin route tried across tenants: a receipt of company a is never
shown, downloaded, retried, verified or answered through company b."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import PG_ADMIN_URL
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from support import fresh_database
from test_admin_page import Browser, csrf_of

from pouracquit.app.admin import AdminServer
from pouracquit.app.toml_out import dumps
from pouracquit.core.archive import Archive
from pouracquit.core.config import Settings, load_settings
from pouracquit.core.service import Service
from pouracquit.core.survey import sign, survey_counts
from pouracquit.core.tenants import Tenants
from pouracquit.sandbox.launch import DEMO_SELLER
from pouracquit.state.tables import Receipt

TOKEN = "fleet-admin-s3cret"
SURVEY_KEY = "s" * 40  # one key for the whole deployment: a's links are signed alike for b's address
IDS = {"a": "a" * 20, "b": "b" * 20}
SELLERS = {"a": "Alpha Conseil SAS", "b": "Beta Industrie SARL"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _pg_up() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except SQLAlchemyError:
        return False


@pytest.fixture(scope="module")
def pg_db() -> Iterator[str]:
    """A PostgreSQL database of this module's own, dropped afterwards."""
    if not _pg_up():
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    with fresh_database(PG_ADMIN_URL, "test_admin_tenants") as url:
        yield url


def _connection() -> dict[str, Any]:
    """A connection whose vendors are never called; both companies name theirs "c"."""
    return {"name": "c", "interval_seconds": 3600,
            "source": {"vendor": "hubspot", "base_url": "http://127.0.0.1:9", "access_token": {"env": "T_HS_TOKEN"}},
            "ledger": {"vendor": "quickbooks", "base_url": "http://127.0.0.1:9", "realm_id": "1", "client_id": "q",
                       "client_secret": {"env": "T_QB_SECRET"}}}


def write_deployment(root: Path, store_url: str | None, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("T_STATE_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("T_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("T_SURVEY_KEY", SURVEY_KEY)
    monkeypatch.setenv("T_HS_TOKEN", "pat-test")
    monkeypatch.setenv("T_QB_SECRET", "qb-secret")
    tenants = root / "tenants"
    tenants.mkdir(parents=True)
    store: dict[str, Any] = {"encryption_key": {"env": "T_STATE_KEY"}}
    if store_url:
        store["url"] = store_url
    config = {"data_dir": str(root / "data"), "store": store, "log": {"format": "json"},
              "admin": {"bind": "127.0.0.1:0", "token": {"env": "T_ADMIN_TOKEN"},
                        "public_url": "https://admin.example"},
              "survey": {"enabled": True, "secret": {"env": "T_SURVEY_KEY"}},
              "tenants": {"dir": str(tenants)}}
    (root / "pouracquit.toml").write_text(dumps(config), encoding="utf-8")
    for name, seller in SELLERS.items():
        data = {"seller": {**DEMO_SELLER, "name": seller}, "document": {"render_processes": 0},
                "connections": [_connection()]}
        (tenants / f"{name}.toml").write_text(dumps(data), encoding="utf-8")
    (tenants / "broken.toml").write_text("seller = [not toml", encoding="utf-8")
    return load_settings(root / "pouracquit.toml")


def _failed_receipt(service: Service, rid: str, number: str) -> None:
    """A failed receipt of ``service``'s company with its PDF archived."""
    content = f"%PDF-1.7 {service.tenant}".encode()
    sha, path = Archive(service.settings.archive).store(content)
    with service.store.unit() as u:
        u.record_document(sha, rid, str(path), len(content))
        u.save(Receipt(id=rid, connection="c", source_id=f"crm-{service.tenant}", payment_version=1,
                       status="failed", step="ledger_record", invoice_json="{}", amount=Decimal("120.00"),
                       currency="EUR", customer=f"Client {service.tenant}", number=number,
                       last_error=f"ledger refused {service.tenant}", document_sha256=sha,
                       document_name=f"{number}.pdf"))


@dataclass
class Fleet:
    tenants: Tenants
    server: AdminServer

    def service(self, name: str) -> Service:
        return self.tenants.service(name)

    def get(self, path: str, auth: bool = True) -> tuple[int, str]:
        request = urllib.request.Request(self.server.url + path, headers=AUTH if auth else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fleet(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("pg_db")
        engine = create_engine(url)
        with engine.begin() as conn:  # the tables exist once the first test migrated them
            names = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                      "AND tablename <> 'alembic_version'")).scalars().all()
            if names:
                conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY"))
        engine.dispose()
    tenants = Tenants.open(write_deployment(tmp_path, url, monkeypatch))
    for name, rid in IDS.items():
        _failed_receipt(tenants.service(name), rid, f"{name.upper()}-1")
    server = AdminServer(tenants).start()
    try:
        yield Fleet(tenants, server)
    finally:
        server.stop()
        tenants.close()
        tenants.store.engine.dispose()


def test_status_per_tenant_and_the_summary(fleet: Fleet) -> None:
    assert fleet.get("/status", auth=False)[0] == 401
    code, body = fleet.get("/status")
    summary = json.loads(body)
    assert code == 200 and set(summary["tenants"]) == {"a", "b", "broken"}
    for name in IDS:
        company = summary["tenants"][name]
        assert company["state"] == "enabled" and company["receipts"] == {"failed": 1}
        assert company["connections"]["c"]["stale"] is True and company["stale"] == ["c"]
    assert summary["tenants"]["broken"]["state"] == "unusable"
    assert "not valid TOML" in summary["problems"]["broken"] and "\n" not in summary["problems"]["broken"]
    assert "pouracquit run" in summary["webhooks"]
    # one company: today's /status shape, its receipts only
    code, body = fleet.get("/status?tenant=a")
    status = json.loads(body)
    assert code == 200 and set(status) == {"c"}
    assert [p["id"] for p in status["c"]["problems"]] == [IDS["a"]] and IDS["b"] not in body
    assert status["c"]["receipts"] == {"failed": 1}
    code, body = fleet.get("/status?tenant=nope")
    assert code == 404 and json.loads(body) == {"error": "no tenant 'nope'"}
    code, body = fleet.get("/status?tenant=broken")
    assert code == 404 and "not valid TOML" in json.loads(body)["error"]
    # a disabled company stays in the summary, not late
    fleet.tenants.set_enabled("b", False)
    b = json.loads(fleet.get("/status")[1])["tenants"]["b"]
    assert b["state"] == "disabled" and b["stale"] == [] and b["receipts"] == {"failed": 1}


def test_metrics_label_every_series_with_its_tenant(fleet: Fleet) -> None:
    code, body = fleet.get("/metrics")
    assert code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body) for s in family.samples}
    for name in IDS:
        assert samples[("pouracquit_receipts", (("connection", "c"), ("status", "failed"), ("tenant", name)))] == 1
        assert samples[("pouracquit_sync_stale", (("connection", "c"), ("tenant", name)))] == 1
        assert samples[("pouracquit_connection_disconnected",
                        (("connection", "c"), ("side", "ledger"), ("tenant", name)))] == 0
    assert samples[("pouracquit_tenants", (("state", "enabled"),))] == 2
    assert samples[("pouracquit_tenants", (("state", "unusable"),))] == 1
    assert samples[("pouracquit_tenant_unusable", (("tenant", "broken"),))] == 1
    assert samples[("pouracquit_state_store_up", ())] == 1
    labelled = [key for key in samples if key[0].startswith("pouracquit_") and "connection" in dict(key[1])]
    assert labelled and all("tenant" in dict(labels) for _, labels in labelled)


def test_the_admin_page_never_crosses_tenants(fleet: Fleet) -> None:
    a, b = IDS["a"], IDS["b"]
    browser = Browser(fleet.server)
    assert browser.login(TOKEN).status == 303
    home = browser.send("GET", "/admin/connections")  # no company chosen: the companies
    assert home.status == 200 and 'id="tenant-a"' in home.body and 'id="tenant-broken"' in home.body
    assert 'href="/admin/connections?tenant=b"' in home.body
    page = browser.send("GET", "/admin/connections?tenant=b")
    assert page.status == 200 and f"/admin/receipts/{b}?tenant=b" in page.body and a not in page.body
    assert 'href="/admin/receipts?tenant=b"' in page.body  # the choice is kept in the links
    assert "tenant=b" in page.body.split('class="lang"')[1].split(">")[0]  # and by the language switch
    assert browser.send("GET", "/admin/connections?tenant=nope").status == 404
    # search: within the chosen company only; none chosen, none searched
    found = browser.send("GET", "/admin/receipts?tenant=b&q=A-1")
    assert found.status == 200 and a not in found.body and 'id="no-match"' in found.body
    listed = browser.send("GET", "/admin/receipts?tenant=b")
    assert f'id="r-{b}"' in listed.body and a not in listed.body
    assert 'id="choose-tenant"' in browser.send("GET", "/admin/receipts?q=A-1").body
    # a's receipt, its PDF and its audit trail through b (or through no company): not found
    for path in (f"/admin/receipts/{a}?tenant=b", f"/admin/receipts/{a}", f"/admin/receipts/{a}/pdf?tenant=b",
                 f"/admin/receipts/{a}/pdf", f"/admin/receipts/{a[:6]}?tenant=b"):
        refused = browser.send("GET", path)
        assert refused.status == 404 and "Client a" not in refused.body and "%PDF" not in refused.body, path
    shown = browser.send("GET", f"/admin/receipts/{a}?tenant=a")
    assert shown.status == 200 and "Client a" in shown.body and f'href="/t/a/receipts/{a}/verify"' in shown.body
    assert f'href="/admin/receipts/{a}/pdf?tenant=a"' in shown.body
    pdf = browser.send("GET", f"/admin/receipts/{a}/pdf?tenant=a")
    assert pdf.status == 200 and pdf.body == "%PDF-1.7 a"
    # retry: through b refused and nothing written; through a, made due for the fleet's workers
    csrf = csrf_of(shown.body)
    assert browser.send("POST", f"/admin/receipts/{a}/retry?tenant=b", {"csrf": csrf}).status == 404
    assert browser.send("POST", f"/admin/receipts/{a}/retry", {"csrf": csrf}).status == 404
    store_a, store_b = fleet.service("a").store, fleet.service("b").store
    assert store_a.receipt(a).status == "failed" and not store_a.events(a)  # type: ignore[union-attr]
    done = browser.send("POST", f"/admin/receipts/{a}/retry?tenant=a", {"csrf": csrf})
    assert done.status == 303 and done.header("location") == f"/admin/receipts/{a}?retried=queued&tenant=a"
    assert store_a.receipt(a).status == "pending"  # type: ignore[union-attr]
    assert [e.kind for e in store_a.events(a)] == ["retry_requested"] and not store_b.events()
    assert store_b.receipt(b).status == "failed"  # type: ignore[union-attr]
    again = browser.send("GET", done.header("location") or "")
    assert 'id="retried"' in again.body and "retry_requested" in again.body
    trail_b = browser.send("GET", f"/admin/receipts/{b}?tenant=b")
    assert trail_b.status == 200 and "retry_requested" not in trail_b.body and a not in trail_b.body
    report = browser.send("GET", "/admin/reports?tenant=nope&kind=payments")
    assert report.status == 404
    # the new pages keep the strict CSP: no script, no inline style; the choice is a plain GET form
    for seen in (home, page, listed, shown, browser.send("GET", "/admin/reports?tenant=a&lang=en")):
        assert "default-src 'none'" in (seen.header("content-security-policy") or "")
        assert "<script" not in seen.body and "style=" not in seen.body
    assert '<select name="tenant"' in listed.body and "Choose a company." in browser.send("GET", "/admin/receipts").body


def test_verify_and_survey_links_resolve_within_their_company(fleet: Fleet) -> None:
    a = IDS["a"]
    for path in (f"/receipts/{a}/verify", f"/t/a/receipts/{a}/verify"):  # an old link, a company's own
        code, page = fleet.get(path, auth=False)
        assert code == 200 and SELLERS["a"] in page and "Document authentique" in page, path
    for path in (f"/t/b/receipts/{a}/verify", f"/t/nope/receipts/{a}/verify", f"/receipts/{'c' * 20}/verify"):
        code, page = fleet.get(path, auth=False)
        assert code == 404 and SELLERS["a"] not in page, path
    token = sign(SURVEY_KEY.encode(), a, datetime.now(UTC) + timedelta(days=1))
    browser = Browser(fleet.server)
    old = browser.send("GET", f"/survey/{token}")
    assert old.status == 200 and SELLERS["a"] in old.body and 'action="/survey/answer"' in old.body
    own = browser.send("GET", f"/t/a/survey/{token}")
    assert own.status == 200 and 'action="/t/a/survey/answer"' in own.body
    assert browser.send("GET", "/t/a/survey/style.css").status == 200
    # a's link at b's address: validly signed (one key for all) yet no receipt of b's
    other = browser.send("GET", f"/t/b/survey/{token}")
    assert other.status == 404 and "n&#39;existe pas" in other.body and SELLERS["b"] not in other.body
    assert browser.send("POST", "/t/b/survey/answer", {"token": token, "score": "1"}).status == 404
    assert browser.send("GET", f"/survey/{'c' * 20}.ffffffffff.{'x' * 43}").status == 404
    answered = browser.send("POST", "/survey/answer", {"token": token, "score": "5"})
    assert answered.status == 200 and "Merci" in answered.body
    assert survey_counts(fleet.service("a").store) == {"c": {"answers": 1, "average": "5.00"}}
    assert survey_counts(fleet.service("b").store) == {}


def test_one_company_is_served_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from security_support import offline_settings

    service = Service.open(offline_settings(tmp_path, monkeypatch))
    _failed_receipt(service, IDS["a"], "F-1")
    server = AdminServer(service).start()
    try:
        single = Fleet(Tenants(service.settings, service.store), server)
        code, body = single.get("/status")
        assert code == 200 and set(json.loads(body)) == {"c"}  # today's shape, no summary
        assert single.get("/status?tenant=default") == (code, body)
        assert single.get("/status?tenant=a")[0] == 404
        assert single.get(f"/t/default/receipts/{IDS['a']}/verify", auth=False)[0] == 200
        assert single.get(f"/receipts/{IDS['a']}/verify", auth=False)[0] == 200
        assert single.get(f"/t/other/receipts/{IDS['a']}/verify", auth=False)[0] == 404
        assert 'pouracquit_receipts{connection="c",status="failed",tenant="default"} 1.0' in single.get("/metrics")[1]
        assert "pouracquit_tenants" not in single.get("/metrics")[1]
    finally:
        server.stop()
        service.store.engine.dispose()


def test_pouracquit_admin_serves_until_sigterm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = write_deployment(tmp_path, None, monkeypatch)
    script = ("import sys, pathlib\nfrom pouracquit.app.admin_cmd import admin_command\n"
              "from pouracquit.core.config import load_settings\n"
              "sys.exit(admin_command(load_settings(pathlib.Path(sys.argv[1]))))")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "pouracquit.toml")],
                            stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            if not line:
                break
            if '"admin API listening"' in line:
                url = json.loads(line)["url"]
        assert url, "the admin API did not start"
        request = urllib.request.Request(url + "/status", headers=AUTH)
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert set(json.loads(answer.read())["tenants"]) == {"a", "b", "broken"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert settings.tenants is not None
