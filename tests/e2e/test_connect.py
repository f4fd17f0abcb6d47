"""`pouracquit connect VENDOR` against the sandboxes' real authorize and token
endpoints: the test plays the browser (GET the printed URL, follow the 302 to
the local listener), then checks that the refresh token is sealed in the state
store under the connector's own key and that a sync runs on it alone."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

from pouracquit.app import cli
from pouracquit.app.connect import connect_command
from pouracquit.common.errors import ConfigError
from pouracquit.core.config import Settings, parse_settings
from pouracquit.core.service import Service
from pouracquit.core.sync import sync_connection
from pouracquit.state.credentials import CredentialStore
from pouracquit.state.tables import Credential

# The pair each vendor is tested in, and the store key its connector reads.
CASES = {
    "hubspot": ("hubspot", "xero", "hubspot.demo.refresh_token"),
    "salesforce": ("salesforce", "quickbooks", "salesforce.demo.refresh_token"),
    "zoho": ("zoho", "quickbooks", "zoho.demo.refresh_token"),
    "quickbooks": ("hubspot", "quickbooks", "quickbooks.refresh_token"),
    "xero": ("zoho", "xero", "xero.refresh_token"),
}


class Browser:
    """Runs ``connect_command`` in a thread and acts as the user's browser."""

    def __init__(self, settings: Settings, vendor: str, ca: str | bool = True, **options: Any) -> None:
        self.urls: list[str] = []
        self.got_url = threading.Event()
        self.rc: int | None = None
        self.error: BaseException | None = None
        self.verify = ca

        def on_url(url: str) -> None:
            self.urls.append(url)
            self.got_url.set()

        def run() -> None:
            try:
                self.rc = connect_command(settings, vendor, port=0, open_browser=False, on_url=on_url, **options)
            except BaseException as exc:  # handed to the test thread by finish()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def authorize(self, tamper: Callable[[str], str] = lambda u: u) -> requests.Response:
        """Approve at the vendor, then follow its redirect to the local callback."""
        assert self.got_url.wait(10), "connect printed no URL"
        answer = requests.get(self.urls[0], allow_redirects=False, timeout=10, verify=self.verify)
        assert answer.status_code == 302, answer.text
        return requests.get(tamper(answer.headers["Location"]), timeout=10)

    def finish(self) -> int | None:
        self.thread.join(15)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.rc


def sealed(settings: Settings, name: str) -> str | None:
    """The raw stored value of ``name`` (sealed), or None."""
    with Service.open(settings).store.session() as session:
        row = session.get(Credential, ("default", "demo", name))
        return row.value if row else None


def ca_of(rig: Any) -> str | bool:
    """The CA bundle the source trusts (the Salesforce sandbox serves HTTPS), else True."""
    bundle = rig.config["connections"][0]["source"].get("ca_bundle")
    return str(bundle) if bundle else True


def _without_refresh_token(rig: Any, vendor: str) -> Settings:
    """The rig's settings with ``vendor``'s configured refresh token removed: a sync
    then only works with the token connect stored."""
    data = json.loads(json.dumps(rig.config))
    conn = data["connections"][0]
    for role in ("source", "ledger"):
        if conn[role]["vendor"] == vendor:
            del conn[role]["refresh_token"]
    return parse_settings(data, origin="e2e")


@pytest.fixture(scope="module")
def renderers() -> dict[str, Any]:
    """One receipt renderer for the module: building one trims fonts for seconds,
    and every rig has the same seller."""
    return {}


@pytest.mark.parametrize("vendor", sorted(CASES))
def test_connect_stores_the_token_the_next_sync_uses(make_rig, renderers, vendor: str) -> None:  # type: ignore[no-untyped-def]
    source, ledger, token_name = CASES[vendor]
    rig = make_rig(count=4, source=source, ledger=ledger)
    settings = rig.settings()
    browser = Browser(settings, vendor, ca=ca_of(rig))
    page = browser.authorize()
    assert browser.finish() == 0
    assert page.status_code == 200 and "pouracquit is connected" in page.text

    url = urlsplit(browser.urls[0])
    query = dict(parse_qsl(url.query))
    assert query["response_type"] == "code" and len(query["state"]) >= 32
    assert query["redirect_uri"].endswith("/callback")

    raw = sealed(settings, token_name)
    assert raw is not None
    service = Service.open(_without_refresh_token(rig, vendor))
    stored = CredentialStore(service.store, "demo", service.cipher).get(token_name)
    assert stored and stored not in raw  # sealed at rest, not the plain token

    if "shared" in renderers:
        service._renderer = renderers["shared"]
    result = sync_connection(service, "demo")
    renderers["shared"] = service.renderer
    assert result.error is None and result.ok, (result.error, result.errors)
    assert result.seen > 0


def test_wrong_state_stores_nothing(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=1, source="hubspot", ledger="quickbooks")
    settings = rig.settings()
    browser = Browser(settings, "quickbooks")

    def forge(location: str) -> str:
        parts = urlsplit(location)
        query = dict(parse_qsl(parts.query))
        query["state"] = "forged-" + query["state"]
        return urlunsplit(parts._replace(query=urlencode(query)))

    page = browser.authorize(forge)
    assert browser.finish() == 1
    assert page.status_code == 400 and "state" in page.text
    assert sealed(settings, "quickbooks.refresh_token") is None
    assert "state does not match" in capsys.readouterr().err


def test_refused_consent_stores_nothing(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=1, source="hubspot", ledger="xero")
    settings = rig.settings()
    browser = Browser(settings, "xero")
    assert browser.got_url.wait(10)
    state = dict(parse_qsl(urlsplit(browser.urls[0]).query))["state"]
    callback = dict(parse_qsl(urlsplit(browser.urls[0]).query))["redirect_uri"]
    # a browser's speculative connection that never sends a request must not stall the listener
    idle = socket.create_connection(("127.0.0.1", urlsplit(callback).port or 0), timeout=5)
    page = requests.get(f"{callback}?{urlencode({'error': 'access_denied', 'state': state})}", timeout=10)
    idle.close()
    assert browser.finish() == 1
    assert page.status_code == 400 and "access_denied" in page.text
    assert sealed(settings, "xero.refresh_token") is None


def test_timeout_stores_nothing(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=1, source="zoho", ledger="quickbooks")
    settings = rig.settings()
    browser = Browser(settings, "zoho", timeout=0.3)
    assert browser.finish() == 1
    assert sealed(settings, "zoho.demo.refresh_token") is None


def test_unknown_or_ambiguous_vendor_is_a_configuration_error(make_rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=1, source="hubspot", ledger="quickbooks")
    with pytest.raises(ConfigError, match="no connection uses vendor 'nope'"):
        connect_command(rig.settings(), "nope", port=0, open_browser=False, timeout=0.1)
    with pytest.raises(ConfigError, match="uses hubspot and quickbooks, not 'xero'"):
        connect_command(rig.settings(), "xero", connection="demo", port=0, open_browser=False, timeout=0.1)
    assert cli.main(["connect", "nope", "--config", str(rig.write_config()), "--no-browser", "--port", "0"]) == 2
