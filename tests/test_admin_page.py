"""The admin page over real HTTP (the admin server on uvicorn, no browser):
cookie flags, CSRF refusals, the CSP, the login rate limit, escaping of
hostile CRM values, and the language choice."""

from __future__ import annotations

import http.client
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from security_support import offline_settings

from pouracquit.app.admin import AdminServer
from pouracquit.app.admin_page.i18n import choose
from pouracquit.app.admin_page.session import LoginLimiter, Sessions
from pouracquit.core.disconnections import record_disconnected
from pouracquit.core.service import Service
from pouracquit.state.tables import Receipt

TOKEN = "page-s3cret-token"
HOSTILE = '<script>alert("crm")</script><img src=x onerror=alert(1)> & "Dupont"'
FAILED_ID = "f" * 20


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def cookies(self) -> dict[str, str]:
        """Set-Cookie lines by cookie name."""
        return {v.split("=", 1)[0]: v for k, v in self.headers if k.lower() == "set-cookie"}


@dataclass
class Browser:
    """Just enough of a browser: a cookie jar and no redirect following."""

    server: AdminServer
    jar: dict[str, str] = field(default_factory=dict)

    def send(self, method: str, path: str, form: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> Answer:
        host, port = self.server.url.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        sent = dict(headers or {})
        if self.jar:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        answer = Answer(resp.status, resp.getheaders(), resp.read().decode("utf-8", "replace"))
        conn.close()
        for name, line in answer.cookies().items():
            value = line.split(";", 1)[0].split("=", 1)[1]
            if "Max-Age=0" in line or not value or value == '""':
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return answer

    def login(self, token: str = TOKEN, **headers: str) -> Answer:
        form = self.send("GET", "/admin/login")
        return self.send("POST", "/admin/login", {"csrf": csrf_of(form.body), "token": token}, headers)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: bool = True) -> Iterator[AdminServer]:
    monkeypatch.setenv("T_ADMIN_TOKEN", TOKEN)
    admin = {"bind": "127.0.0.1:0", **({"token": {"env": "T_ADMIN_TOKEN"}} if token else {})}
    service = Service.open(offline_settings(tmp_path, monkeypatch, admin=admin))
    with service.store.unit() as u:
        u.save(Receipt(id=FAILED_ID, connection="c", source_id='crm-<b>1</b>', payment_version=1, status="failed",
                       step="ledger_record", invoice_json="{}", amount=Decimal("120.00"), currency="EUR",
                       customer=HOSTILE, number="F-<i>7</i>", last_error=f"ledger refused {HOSTILE}"))
    server = AdminServer(service).start()
    try:
        yield server
    finally:
        server.stop()
        service.store.engine.dispose()


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminServer]:
    yield from _server(tmp_path, monkeypatch)


def test_login_sets_a_signed_httponly_samesite_expiring_cookie(server: AdminServer) -> None:
    browser = Browser(server)
    assert browser.send("GET", "/admin").header("location") == "/admin/"
    assert browser.send("GET", "/admin/").header("location") == "/admin/login"
    assert browser.send("GET", "/admin/connections").header("location") == "/admin/login"
    answer = browser.login()
    assert answer.status == 303 and answer.header("location") == "/admin/connections"
    cookie = answer.cookies()["pouracquit_admin"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=28800" in cookie
    assert "Path=/admin" in cookie and "Secure" not in cookie  # plain HTTP here
    page = browser.send("GET", "/admin/connections")
    assert page.status == 200 and 'id="connection-c"' in page.body
    # a session id with a forged signature or expiry is no session
    sid, expires, signature = browser.jar["pouracquit_admin"].split(".")
    for forged in (f"{sid}.{int(expires) + 3600}.{signature}", f"{sid}.{expires}.{'0' * 64}", sid):
        assert Browser(server, {"pouracquit_admin": forged}).send("GET", "/admin/receipts").status == 303


def test_cookie_is_secure_behind_https(server: AdminServer) -> None:
    # uvicorn takes the scheme from X-Forwarded-Proto when the proxy is local (its forwarded_allow_ips default)
    answer = Browser(server).login(**{"X-Forwarded-Proto": "https"})
    assert answer.status == 303 and "Secure" in answer.cookies()["pouracquit_admin"]


def test_wrong_token_is_refused_and_logout_ends_the_session(server: AdminServer) -> None:
    browser = Browser(server)
    refused = browser.login("not-the-token")
    assert refused.status == 401 and "pouracquit_admin" not in refused.cookies()
    assert "Jeton refusé" in refused.body
    assert browser.login().status == 303
    kept = dict(browser.jar)
    page = browser.send("GET", "/admin/receipts")
    assert browser.send("POST", "/admin/logout", {"csrf": csrf_of(page.body)}).status == 303
    assert Browser(server, kept).send("GET", "/admin/receipts").status == 303  # the old cookie no longer works


def test_posts_without_their_csrf_token_are_refused(server: AdminServer) -> None:
    browser = Browser(server)
    assert browser.login().status == 303
    retry = f"/admin/receipts/{FAILED_ID}/retry"
    assert browser.send("POST", retry, {}).status == 403
    assert browser.send("POST", retry, {"csrf": "0" * 64}).status == 403
    other = Browser(server)
    assert other.login().status == 303
    token_of_another_session = csrf_of(other.send("GET", "/admin/receipts").body)
    assert browser.send("POST", retry, {"csrf": token_of_another_session}).status == 403
    mine = csrf_of(browser.send("GET", "/admin/receipts").body)
    assert browser.send("POST", retry, {"csrf": mine}, {"Origin": "https://evil.example"}).status == 403
    assert browser.send("POST", "/admin/logout", {}).status == 403
    assert Browser(server).send("POST", retry, {"csrf": mine}).status == 403  # no session at all
    # the login form's own token: without the cookie it came with, refused
    form = Browser(server).send("GET", "/admin/login")
    assert Browser(server).send("POST", "/admin/login", {"csrf": csrf_of(form.body), "token": TOKEN}).status == 403
    events = server.service.store.events(FAILED_ID)
    assert not events and server.service.store.receipt(FAILED_ID).status == "failed"  # type: ignore[union-attr]


def test_every_page_sends_a_strict_csp_and_no_inline_code(server: AdminServer) -> None:
    browser = Browser(server)
    login = browser.send("GET", "/admin/login")
    browser.login()
    pages = [login] + [browser.send("GET", p) for p in (
        "/admin/connections", "/admin/receipts", f"/admin/receipts/{FAILED_ID}", "/admin/receipts/nope")]
    for page in pages:
        csp = page.header("content-security-policy") or ""
        assert "default-src 'none'" in csp and "style-src 'self'" in csp and "script-src" not in csp
        assert page.header("x-frame-options") == "DENY" and page.header("cache-control") == "no-store"
        assert "<script" not in page.body and "style=" not in page.body and "<style" not in page.body
        assert '<link rel="stylesheet" href="/admin/static/style.css">' in page.body
    css = browser.send("GET", "/admin/static/style.css")
    assert css.status == 200 and css.header("content-type", ).startswith("text/css")  # type: ignore[union-attr]


def test_hostile_crm_values_are_escaped(server: AdminServer) -> None:
    browser = Browser(server)
    browser.login()
    for path in ("/admin/receipts?q=Dupont", f"/admin/receipts/{FAILED_ID}", "/admin/connections"):
        page = browser.send("GET", path)
        assert page.status == 200
        assert "&lt;script&gt;alert(&#34;crm&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page.body
        assert "<script" not in page.body and "<img" not in page.body and "<b>1</b>" not in page.body
    assert "F-&lt;i&gt;7&lt;/i&gt;" in browser.send("GET", "/admin/receipts?q=%3Ci%3E").body
    reflected = browser.send("GET", "/admin/receipts?q=%22%3E%3Cscript%3E")
    assert 'value="&#34;&gt;&lt;script&gt;"' in reflected.body and "<script" not in reflected.body


def test_login_attempts_are_rate_limited(server: AdminServer) -> None:
    browser = Browser(server)
    for _ in range(5):
        assert browser.login("wrong").status == 401
    blocked = browser.login()  # even the right token waits
    assert blocked.status == 429 and "pouracquit_admin" not in blocked.cookies()
    assert 1 <= int(blocked.header("retry-after") or 0) <= 60


def test_without_an_admin_token_nobody_logs_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for server in _server(tmp_path, monkeypatch, token=False):
        browser = Browser(server)
        form = browser.send("GET", "/admin/login")
        assert 'id="no-token"' in form.body
        assert browser.login("").status == 401 and browser.login("anything").status == 401


def test_language_follows_the_browser_or_the_choice(server: AdminServer) -> None:
    assert "Log in" in Browser(server).send("GET", "/admin/login", headers={"Accept-Language": "en-GB,en;q=0.8"}).body
    browser = Browser(server)
    assert "Connexion" in browser.send("GET", "/admin/login", headers={"Accept-Language": "de, fr;q=0.5"}).body
    assert "Log in" in browser.send("GET", "/admin/login?lang=en").body
    assert "Log in" in browser.send("GET", "/admin/login").body  # remembered in a cookie
    assert choose(None, None, "en;q=0.2, fr;q=0.9") == "fr" and choose(None, None, "xx") == "fr"
    assert choose("en", "fr", "fr") == "en"


def test_limiter_and_sessions_on_their_own() -> None:
    limiter = LoginLimiter(attempts=2, window=60)
    assert limiter.hit("a") is None and limiter.hit("a") is None and limiter.hit("a") is not None
    assert limiter.hit("b") is None  # per address
    sessions = Sessions()
    cookie = sessions.open()
    sid = sessions.valid(cookie)
    assert sid and sessions.csrf_matches(sessions.csrf(sid), sessions.csrf(sid))
    assert Sessions().valid(cookie) is None  # another process's key
    sessions.close(sid)
    assert sessions.valid(cookie) is None


def test_connections_show_a_disconnection_with_the_command_that_fixes_it(server: AdminServer) -> None:
    conn = server.service.settings.connection("c")
    record_disconnected(server.service.store, conn, "ledger", "quickbooks", "invalid_grant: refresh token revoked")
    browser = Browser(server)
    browser.login()
    page = browser.send("GET", "/admin/connections")
    assert "invalid_grant: refresh token revoked" in page.body
    assert "<code>pouracquit connect quickbooks --connection c</code>" in page.body
    assert f'href="/admin/receipts/{FAILED_ID}"' in page.body and "Relancer" in page.body  # the failed one


def test_report_parameters_are_checked_before_anything_runs(server: AdminServer) -> None:
    browser = Browser(server)
    browser.login()
    bad = browser.send("GET", "/admin/reports?kind=payments&from=2026-13-01")
    assert bad.status == 400 and "is not a date" in bad.body
    hostile = browser.send("GET", "/admin/reports?kind=reconcile&connection=%3Cscript%3E")
    assert hostile.status == 400 and "&#39;&lt;script&gt;&#39;" in hostile.body and "<script" not in hostile.body
    backwards = browser.send("GET", "/admin/reports?kind=payments&from=2026-11-02&to=2026-11-01")
    assert backwards.status == 400 and "is after" in backwards.body
    assert browser.send("GET", "/admin/reports?kind=other").status == 200  # a form, nothing run


def test_a_retry_stopped_by_the_configuration_says_so(server: AdminServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_STATE_KEY", "not-a-fernet-key")  # no connector is built without a usable store key
    browser = Browser(server)
    browser.login()
    page = browser.send("GET", f"/admin/receipts/{FAILED_ID}")
    answer = browser.send("POST", f"/admin/receipts/{FAILED_ID}/retry", {"csrf": csrf_of(page.body)})
    assert answer.status == 303 and answer.header("location") == f"/admin/receipts/{FAILED_ID}?retried=config_error"
    shown = browser.send("GET", answer.header("location") or "")
    assert "pouracquit doctor" in shown.body and 'id="status">pending' in shown.body
    [event] = server.service.store.events(FAILED_ID)
    assert event.kind == "retry_requested" and '"by": "admin page"' in event.data
