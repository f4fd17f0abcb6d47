"""``pouracquit connect VENDOR``: the OAuth 2.0 authorisation-code flow with a
local redirect listener, ending with the refresh token sealed in the state store.

The flow is the same for every vendor; what differs (URLs, scopes, how the
token endpoint authenticates the app, the store key the connector reads) comes
from the connector's ``oauth_app`` (see ``connectors/oauth.py``). The user
registers ``http://<host>:PORT/callback`` as a redirect URI of their app once.

Exit codes: 0 connected, 1 refused / state mismatch / timeout / vendor
unreachable, 2 configuration error (raised as ConfigError, which the CLI turns
into 2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import queue
import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, TextIO
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from pouracquit.common.errors import ConfigError, RetryableError
from pouracquit.connectors.base import OAuthConnector
from pouracquit.connectors.oauth import OAuthApp
from pouracquit.connectors.registry import ConnectorContext, factory
from pouracquit.core.config import ConnectionSettings, Settings
from pouracquit.core.disconnections import record_reconnected
from pouracquit.core.service import Service
from pouracquit.state.credentials import CredentialStore

DEFAULT_TIMEOUT = 300.0  # how long the user has to approve in the browser
DESCRIBE_ATTEMPTS = 5  # reading the vendor's app description, waits of 0.5, 1, 2, 4 s between tries
DESCRIBE_BACKOFF = 0.5
CALLBACK_PATH = "/callback"
_PAGE_WAIT = 120.0  # how long the callback page waits for the token exchange to finish

Role = Literal["source", "ledger"]


def pick_connection(settings: Settings, vendor: str, name: str | None) -> tuple[ConnectionSettings, Role]:
    """The connection to authorise and the role ``vendor`` plays in it: the one
    named by ``--connection``, else the only one using ``vendor``."""
    def role_of(conn: ConnectionSettings) -> Role | None:
        if conn.source.vendor == vendor:
            return "source"
        return "ledger" if conn.ledger.vendor == vendor else None

    if name:
        conn = settings.connection(name)
        role = role_of(conn)
        if role is None:
            raise ConfigError(f"connection {name!r} uses {conn.source.vendor} and {conn.ledger.vendor}, "
                              f"not {vendor!r}")
        return conn, role
    found = [(c, r) for c in settings.connections if (r := role_of(c)) is not None]
    if not found:
        used = sorted({v for c in settings.connections for v in (c.source.vendor, c.ledger.vendor)})
        raise ConfigError(f"no connection uses vendor {vendor!r}; the configured vendors are {', '.join(used)}")
    if len(found) > 1:
        names = ", ".join(c.name for c, _ in found)
        raise ConfigError(f"{len(found)} connections use {vendor} ({names}): choose one with --connection")
    return found[0]


def _pkce_pair() -> tuple[str, str]:
    """RFC 7636 S256: a 64-character verifier and its base64url SHA-256."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(app: OAuthApp, redirect_uri: str, state: str, challenge: str | None) -> str:
    """The URL the user opens to approve the app."""
    params = {"client_id": app.client_id, "redirect_uri": redirect_uri, "response_type": "code",
              "scope": app.scope, "state": state, **app.extra_params}
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    # spaces as %20, as the vendors document their scope lists (not form-style "+")
    return f"{app.authorize_url}{'&' if '?' in app.authorize_url else '?'}{urlencode(params, quote_via=quote)}"


# -- the redirect listener -------------------------------------------------------------
@dataclass
class _Callback:
    """One request to the callback path; the handler waits for ``page``."""

    params: dict[str, str]
    done: threading.Event = field(default_factory=threading.Event)
    sent: threading.Event = field(default_factory=threading.Event)
    page: tuple[int, str] = (500, "")


def _page(title: str, detail: str, ok: bool) -> str:
    colour = "#1a7f37" if ok else "#b42318"
    return ("<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>pouracquit</title>"
            "<body style=\"font-family:system-ui,sans-serif;max-width:36em;margin:4em auto\">"
            f"<h1 style=\"color:{colour}\">{html.escape(title)}</h1><p>{html.escape(detail)}</p></body></html>")


def _listener(port: int, inbox: queue.Queue[_Callback]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # seconds per socket: a browser's idle preconnect must not hold a thread forever

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != CALLBACK_PATH:
                self._send(404, _page("Not found", "pouracquit only answers on /callback.", ok=False))
                return
            callback = _Callback(dict(parse_qsl(url.query, keep_blank_values=True)))
            inbox.put(callback)
            # the page says whether the exchange worked, so it waits for it (bounded)
            try:
                if not callback.done.wait(_PAGE_WAIT):
                    callback.page = (504, _page("pouracquit did not finish", "See the terminal.", ok=False))
                self._send(*callback.page)
            finally:
                callback.sent.set()

        def _send(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the query string carries the authorisation code: keep it out of the terminal

    try:
        # threaded: browsers open idle speculative connections that would stall a one-at-a-time server
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        return server
    except OSError as exc:
        raise ConfigError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another --port "
                          f"(and register that redirect URI)") from None


# -- the token exchange ----------------------------------------------------------------
class Refused(Exception):
    """The vendor or the user said no; the message is safe to show."""


def exchange_code(app: OAuthApp, params: Mapping[str, str], redirect_uri: str, verifier: str | None) -> dict[str, Any]:
    """Swap the authorisation code for tokens at the vendor's token endpoint."""
    form = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    auth = None
    if app.client_auth == "basic":
        auth = (app.client_id, app.client_secret)
    else:
        form.update(client_id=app.client_id, client_secret=app.client_secret)
    url = app.token_url_for(params) if app.token_url_for else app.token_url
    try:
        response = requests.post(url, data=form, auth=auth, headers={"Accept": "application/json"},
                                 timeout=app.timeout, verify=app.verify)
    except requests.RequestException as exc:
        raise Refused(f"the token endpoint {url} could not be reached: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise Refused(f"the token endpoint answered HTTP {response.status_code} without a JSON object")
    # Zoho answers errors with HTTP 200 and an "error" member, hence the check on both
    error = body.get("error") or (body.get("status") if response.status_code >= 400 else None)
    if response.status_code != 200 or error:
        detail = body.get("error_description") or body.get("message") or ""
        what = f"{error or 'HTTP ' + str(response.status_code)}{': ' + str(detail) if detail else ''}"
        if str(error).lower() in ("invalid_client", "bad_client_id", "invalid_client_id"):
            raise ConfigError(f"{app.vendor} refused the app's credentials ({what}): check client_id and "
                              f"client_secret")
        raise Refused(f"{app.vendor} refused the authorisation code ({what})")
    if not body.get("refresh_token"):
        raise Refused(f"{app.vendor} answered without a refresh token: check that the app may keep access "
                      f"offline (scopes: {app.scope})")
    return body


# -- the command -----------------------------------------------------------------------
def _oauth_app(service: Service, conn: ConnectionSettings, role: Role, tokens: CredentialStore) -> OAuthApp:
    endpoint, mapping = (conn.source, conn.mapping.source) if role == "source" else (conn.ledger, conn.mapping.ledger)
    cls = factory(endpoint.vendor, role)
    if not isinstance(cls, OAuthConnector):
        raise ConfigError(f"{endpoint.vendor} does not use OAuth here: nothing to connect")
    describe: Callable[..., OAuthApp] = cls.oauth_app
    ctx = ConnectorContext(connection=conn.name, meter=service.meter, tokens=tokens,
                           window_scale=service.settings.time_factor, mapping=mapping)
    # Describing the app may read the vendor (QuickBooks' discovery document):
    # a 5xx or a dropped connection there is the vendor's hiccup, not a wrong config.
    retrying = Retrying(retry=retry_if_exception_type(RetryableError), stop=stop_after_attempt(DESCRIBE_ATTEMPTS),
                        wait=wait_exponential(multiplier=DESCRIBE_BACKOFF, max=8.0), reraise=True)
    try:
        return retrying(describe, endpoint.settings(), ctx)
    except ConfigError as exc:
        raise ConfigError(f"connections.{conn.name}.{role}: {exc}") from None


def connect_command(settings: Settings, vendor: str, *, connection: str | None = None, port: int = 8788,
                    open_browser: bool = True, timeout: float = DEFAULT_TIMEOUT,
                    on_url: Callable[[str], None] | None = None, out: TextIO | None = None) -> int:
    """Authorise pouracquit at ``vendor`` for one connection and keep the refresh token.

    ``port`` 0 picks a free port (tests); ``on_url`` receives the authorisation
    URL as it is printed (tests act as the browser). A configuration problem
    raises ConfigError before anything is opened.
    """
    out = out or sys.stdout
    conn, role = pick_connection(settings, vendor, connection)
    service = Service.open(settings)
    service.cipher()  # a missing store key fails now, not after the user approved
    tokens = CredentialStore(service.store, conn.name, service.cipher)
    try:
        app = _oauth_app(service, conn, role, tokens)
    except RetryableError as exc:
        print(f"pouracquit: {exc}; try again in a moment, nothing was opened or stored", file=sys.stderr)
        return 1

    inbox: queue.Queue[_Callback] = queue.Queue()
    server = _listener(port, inbox)
    redirect_uri = f"http://{app.redirect_host}:{server.server_address[1]}{CALLBACK_PATH}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="pouracquit-connect", daemon=True)
    thread.start()
    callback: _Callback | None = None
    try:
        state = secrets.token_urlsafe(32)
        verifier, challenge = _pkce_pair() if app.pkce else (None, None)
        url = authorize_url(app, redirect_uri, state, challenge)
        print(f"Connecting {vendor} for connection {conn.name!r}.", file=out)
        print(f"The {vendor} app must list this redirect URI: {redirect_uri}", file=out)
        print(f"Open this URL to approve pouracquit (waiting {timeout:.0f} s):\n\n  {url}\n", file=out, flush=True)
        if on_url is not None:
            on_url(url)
        if open_browser:
            webbrowser.open(url)
        try:
            callback = inbox.get(timeout=timeout)
        except queue.Empty:
            print(f"pouracquit: no answer from the browser within {timeout:.0f} s; nothing stored", file=sys.stderr)
            return 1
        try:
            status, message = _finish(app, callback.params, state, redirect_uri, verifier, tokens, out)
        except ConfigError as exc:
            callback.page = (400, _page(f"pouracquit could not connect to {vendor}", str(exc), ok=False))
            raise
        callback.page = (200, _page("pouracquit is connected", "You can close this tab.", ok=True)) if status == 0 \
            else (400, _page(f"pouracquit could not connect to {vendor}", message, ok=False))
        if status:
            print(f"pouracquit: {message}", file=sys.stderr)
        else:
            record_reconnected(service.store, conn.name, role, app.vendor, how="pouracquit connect")
        return status
    finally:
        if callback is not None:
            callback.done.set()
            if callback.page[0] == 500:  # an unexpected error: still answer the browser
                callback.page = (500, _page("pouracquit failed", "See the terminal.", ok=False))
            callback.sent.wait(10)  # let the browser get its page before the listener goes
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _finish(app: OAuthApp, params: Mapping[str, str], state: str, redirect_uri: str, verifier: str | None,
            tokens: CredentialStore, out: TextIO) -> tuple[int, str]:
    """Check the redirect, exchange the code, store the refresh token: (exit code, message)."""
    if not hmac.compare_digest(params.get("state", "").encode(), state.encode()):
        return 1, "the answer's state does not match this attempt (a stale or forged redirect); nothing stored"
    if params.get("error"):
        detail = params.get("error_description", "")
        return 1, f"{app.vendor} answered {params['error']}{': ' + detail if detail else ''}; nothing stored"
    if not params.get("code"):
        return 1, "the redirect carries no authorisation code; nothing stored"
    try:
        answer = exchange_code(app, params, redirect_uri, verifier)
    except Refused as exc:
        return 1, f"{exc}; nothing stored"
    tokens.put(app.token_name, str(answer["refresh_token"]))
    print(f"Stored the {app.vendor} refresh token as {app.token_name!r} (sealed in the state store); "
          f"the next sync uses it.", file=out)
    if app.notes is not None:
        try:
            for line in app.notes(params, answer):
                print(line, file=out)
        except Exception as exc:  # noqa: BLE001 - the token is stored; a failed hint must not undo that
            print(f"(could not read the {app.vendor} account details: {type(exc).__name__})", file=out)
    return 0, ""
