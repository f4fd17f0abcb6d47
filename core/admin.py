"""The admin HTTP API: /healthz, /readyz, /metrics, /status, and the public
verification page /receipts/{id}/verify that receipts' QR codes open, and
the vendors' webhooks on POST /webhooks/<vendor> (authenticated by their
signatures, not by the admin token).

Bound to loopback by default. When ``admin.token`` is configured every route
but /healthz and the verification page needs ``Authorization: Bearer <token>``, compared in constant
time; a non-loopback bind without a token is refused at start-up.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

from pouracquit.connectors.base import WebhookRequest

from .errors import ConfigError
from .service import Service
from .status import connection_status, metrics_text, readiness
from .verify_page import verify_page
from .webhooks import WebhookIntake

log = structlog.get_logger("pouracquit.admin")
PUBLIC = frozenset({"/healthz"})
MAX_WEBHOOK_BYTES = 1 << 20

Reply = tuple[int, str, bytes]


def _json(status: int, body: Any) -> Reply:
    return status, "application/json", json.dumps(body, indent=2, default=str).encode()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AdminServer:
    """Serves the admin routes from a background thread."""

    def __init__(self, service: Service, webhooks: WebhookIntake | None = None) -> None:
        self.service = service
        self.webhooks = webhooks
        admin = service.settings.admin
        host, port = admin.address
        self._token = admin.token.value().get_secret_value() if admin.token else None
        if self._token is None and not _is_loopback(host):
            raise ConfigError(f"admin.bind {admin.bind} is not loopback: set admin.token to protect the API")
        self._routes: dict[str, Callable[[], Reply]] = {
            "/healthz": lambda: _json(200, {"status": "alive"}),
            "/readyz": self._readyz,
            "/metrics": lambda: (200, "text/plain; version=0.0.4", metrics_text(self.service).encode()),
            "/status": lambda: _json(200, connection_status(self.service)),
        }
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _readyz(self) -> Reply:
        ready = readiness(self.service)
        return _json(200 if ready.ready else 503, {"ready": ready.ready, "reasons": ready.reasons})

    def authorised(self, header: str | None) -> bool:
        if self._token is None:
            return True
        scheme, _, given = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), self._token.encode())

    def public_url(self, raw_path: str) -> str:
        """The URL a vendor called, as it signed it."""
        base = self.service.settings.admin.public_url or self.url
        return base.rstrip("/") + raw_path

    def webhook(self, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        vendor = raw_path.split("?", 1)[0].removeprefix("/webhooks/")
        if self.webhooks is None or not vendor.isidentifier():
            return _json(404, {"error": "webhooks are served by `pouracquit run`"})
        request = WebhookRequest(method="POST", url=self.public_url(raw_path), headers=headers, body=body)
        status, answer = self.webhooks.receive(vendor, request)
        return _json(status, answer)

    def handle(self, method: str, path: str, auth: str | None) -> Reply:
        path = path.split("?", 1)[0]
        route = self._routes.get(path)
        if route is None and method == "GET":
            page = verify_page(self.service, path)
            if page is not None:
                return page[0], "text/html; charset=utf-8", page[1].encode()
        if route is None:
            return _json(404, {"error": "not found"})
        if method != "GET":
            return _json(405, {"error": "method not allowed"})
        if path not in PUBLIC and not self.authorised(auth):
            return _json(401, {"error": "missing or wrong bearer token"})
        try:
            return route()
        except Exception as exc:
            log.exception("admin route failed", path=path)
            return _json(503, {"error": f"{type(exc).__name__}: {exc}"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                """Silent: requests are not worth a log line each."""

            def _reply(self) -> None:
                if self.command == "POST" and self.path.startswith("/webhooks/"):
                    length = min(int(self.headers.get("Content-Length") or 0), MAX_WEBHOOK_BYTES)
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    status, ctype, body = server.webhook(self.path, headers, self.rfile.read(length))
                else:
                    status, ctype, body = server.handle(self.command, self.path, self.headers.get("Authorization"))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if status == 401:
                    self.send_header("WWW-Authenticate", "Bearer")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _reply

        return Handler

    def start(self) -> AdminServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="admin-http", daemon=True)
        self._thread.start()
        log.info("admin API listening", url=self.url)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
