"""The admin HTTP API: /healthz, /readyz, /metrics, /status, and the public
verification page /receipts/{id}/verify that receipts' QR codes open, and
the vendors' webhooks on POST /webhooks/<vendor> (authenticated by their
signatures, not by the admin token). HEAD works wherever GET does.

It serves the one company of ``pouracquit run`` (a ``Service``) or every company
of a deployment (``Tenants``, under ``pouracquit admin``; app/served.py): then
/status without ``?tenant=`` summarises the companies, ``/status?tenant=NAME``
is one company's, /metrics labels every series with its tenant, the admin page
asks which company, and webhooks are left to ``pouracquit run``.

/healthz: the process and its scheduler thread are alive (a restart fixes a
503). /readyz: able to serve, i.e. the state store answers (a vendor being down
or a stale connection does not make it 503: that would take the webhooks out of
service too; /status and the metrics say it). See docs/operations.md.

Bound to loopback by default. When ``admin.token`` is configured every route
but /healthz and the verification page needs ``Authorization: Bearer <token>``, compared in constant
time; a non-loopback bind without a token is refused at start-up, and so is an empty token.

A Starlette app on uvicorn (app/admin_http.py has the server's timeouts and
limits). /healthz answers on the event loop; every other route runs on a
pool of ``POOL_THREADS`` threads (they read the store), with at most
``MAX_PENDING`` requests in progress or queued for it: beyond, 503 at once.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import structlog
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from pouracquit.common.errors import ConfigError
from pouracquit.connectors.base import WebhookRequest
from pouracquit.core.config import AdminSettings
from pouracquit.core.service import Service
from pouracquit.core.webhooks import WebhookIntake

from .admin_http import HttpServer, bind
from .admin_page import admin_page
from .metrics import CONTENT_TYPE, Metrics
from .served import Served
from .status import connection_status, deployment_status, readiness
from .survey_page import survey_routes
from .verify_page import verify_page

if TYPE_CHECKING:
    from pouracquit.core.tenants import Tenants

log = structlog.get_logger("pouracquit.admin")
PUBLIC = frozenset({"/healthz"})
MAX_WEBHOOK_BYTES = 1 << 20
BODY_SECONDS = 10.0  # a webhook body must arrive whole in this time
POOL_THREADS = 8
MAX_PENDING = 64
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

Reply = tuple[int, str, bytes]
Query = dict[str, str]


def _json(status: int, body: Any) -> Reply:
    return status, "application/json", json.dumps(body, indent=2, default=str).encode()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def admin_token(admin: AdminSettings) -> str | None:
    """The bearer token the API wants, None on loopback without one. A
    non-loopback bind needs one, and an empty or blank one is refused
    (ConfigError): it would let anyone in."""
    if admin.token is None:
        if not _is_loopback(admin.address[0]):
            raise ConfigError(f"admin.bind {admin.bind} is not loopback: set admin.token to protect the API")
        return None
    try:
        return admin.token.value().get_secret_value()
    except ConfigError as exc:
        raise ConfigError(f"admin.token: {exc}") from None


def bearer_matches(header: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time; nothing after Bearer is no token."""
    scheme, _, given = (header or "").partition(" ")
    return bool(token) and bool(given) and scheme.lower() == "bearer" and hmac.compare_digest(
        given.encode(), token.encode())


class TooLarge(Exception):
    """A webhook body past MAX_WEBHOOK_BYTES."""


class AdminServer:
    """Serves the admin routes from a background thread.

    ``source``: the one company of ``pouracquit run``, or a deployment's tenants.
    ``liveness`` says why the process is not alive (None: alive); the daemon
    gives one that watches its scheduler thread. ``metrics``: the registry the
    jobs feed (a fresh one by default)."""

    def __init__(self, source: Service | Tenants, webhooks: WebhookIntake | None = None, *,
                 metrics: Metrics | None = None, liveness: Callable[[], str | None] = lambda: None) -> None:
        self.served = Served(source)
        # the one company served, when there is one (None for a deployment of several)
        self.service = None if self.served.many else self.served.service(self.served.home)
        self.webhooks = webhooks
        self.metrics = metrics or Metrics(self.served)
        self._liveness = liveness
        admin = self.served.settings.admin
        self._token = admin_token(admin)
        # GET routes: path -> reply to the query (add one here; every one but PUBLIC needs the token)
        self._routes: dict[str, Callable[[Query], Reply]] = {
            "/healthz": lambda _: self._healthz(),
            "/readyz": lambda _: self._readyz(),
            "/metrics": lambda _: (200, CONTENT_TYPE, self.metrics.exposition()),
            "/status": self._status,
        }
        self._pool = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="admin")
        self._pending = 0  # touched on the event loop only
        self._sock = bind(*admin.address)
        app = Starlette(routes=[*admin_page(self.served, self._token),  # the HTML page at PREFIX, its own auth
                                *survey_routes(self.served),  # public, like the verify page
                                Route("/{path:path}", self._endpoint, methods=METHODS)])
        self._http = HttpServer(app, self._sock)

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def _healthz(self) -> Reply:
        dead = self._liveness()
        return _json(200, {"status": "alive"}) if dead is None else _json(503, {"status": "dead", "reason": dead})

    def _readyz(self) -> Reply:
        ready = readiness(self.served)
        return _json(200 if ready.ready else 503, {"ready": ready.ready, "reasons": ready.reasons})

    def _status(self, query: Query) -> Reply:
        """One company's status (``?tenant=NAME``, or the only one); a deployment's summary without it."""
        name = query.get("tenant")
        if name is None:
            if self.served.many:
                return _json(200, deployment_status(self.served))
            name = self.served.home
        service = self.served.service(name)
        if service is None:
            problem = self.served.problems().get(name)
            return _json(404, {"error": f"tenant {name!r} unusable: {problem}" if problem
                               else f"no tenant {name[:100]!r}"})
        return _json(200, connection_status(service))

    def authorised(self, header: str | None) -> bool:
        return self._token is None or bearer_matches(header, self._token)

    def public_url(self, raw_path: str) -> str:
        """The URL a vendor called, as it signed it."""
        base = self.served.settings.admin.public_url or self.url
        return base.rstrip("/") + raw_path

    def webhook(self, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        vendor = raw_path.split("?", 1)[0].removeprefix("/webhooks/")
        if self.webhooks is None or not vendor.isidentifier():
            return _json(404, {"error": "webhooks are served by `pouracquit run`"})
        request = WebhookRequest(method="POST", url=self.public_url(raw_path), headers=headers, body=body)
        status, answer = self.webhooks.receive(vendor, request)
        return _json(status, answer)

    def handle(self, method: str, path: str, auth: str | None) -> Reply:
        path, _, query = path.partition("?")
        route = self._routes.get(path)
        if method == "HEAD":
            method = "GET"  # the server sends the headers only
        if route is None and method == "GET":
            page = verify_page(self.served, path)
            if page is not None:
                return page[0], "text/html; charset=utf-8", page[1].encode()
        if route is None:
            return _json(404, {"error": "not found"})
        if method != "GET":
            return _json(405, {"error": "method not allowed"})
        if path not in PUBLIC and not self.authorised(auth):
            return _json(401, {"error": "missing or wrong bearer token"})
        try:
            params = {k: v[0] for k, v in urllib.parse.parse_qs(query, max_num_fields=20).items()}
        except ValueError:
            return _json(400, {"error": "too many query parameters"})
        try:
            return route(params)
        except Exception as exc:
            log.exception("admin route failed", path=path)
            return _json(503, {"error": f"{type(exc).__name__}: {exc}"})

    async def _endpoint(self, request: Request) -> Response:
        scope = request.scope
        raw_path = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            raw_path += "?" + scope["query_string"].decode("latin-1")
        path = raw_path.split("?", 1)[0]
        if path == "/healthz" and request.method in ("GET", "HEAD"):
            return _response(self._healthz())  # on the loop: alive even when the pool is busy
        if self._pending >= MAX_PENDING:
            return _response(_json(503, {"error": "busy: too many requests in progress"}), close=True,
                             extra={"Retry-After": "1"})
        self._pending += 1
        try:
            if request.method == "POST" and path.startswith("/webhooks/"):
                try:
                    body = await asyncio.wait_for(_read_body(request), BODY_SECONDS)
                except TooLarge:
                    return _response(_json(413, {"error": f"body over {MAX_WEBHOOK_BYTES} bytes"}), close=True)
                except TimeoutError:
                    return _response(_json(408, {"error": "body too slow"}), close=True)
                except ClientDisconnect:
                    return Response(status_code=400)
                headers = {k.lower(): v for k, v in request.headers.items()}
                reply = await self._in_pool(self.webhook, raw_path, headers, body)
            else:
                reply = await self._in_pool(self.handle, request.method, raw_path, request.headers.get("authorization"))
            return _response(reply)
        finally:
            self._pending -= 1

    async def _in_pool(self, fn: Callable[..., Reply], *args: Any) -> Reply:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def start(self) -> AdminServer:
        self._http.start()
        log.info("admin API listening", url=self.url)
        return self

    def stop(self) -> None:
        self._http.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > MAX_WEBHOOK_BYTES:  # h11 has checked it is a number
        raise TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_WEBHOOK_BYTES:
            raise TooLarge
    return bytes(body)


def _response(reply: Reply, close: bool = False, extra: dict[str, str] | None = None) -> Response:
    status, ctype, body = reply
    headers = dict(extra or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if close:  # the body was not read: the connection cannot carry another request
        headers["Connection"] = "close"
    return Response(body, status_code=status, media_type=ctype, headers=headers)
