"""The admin page's routes: login and logout, connections, receipts (search,
one receipt with its PDF, audit trail and retry). Jinja2 templates with
autoescape on: every CRM value is escaped. No script, no inline style: the
Content-Security-Policy forbids both.

In a deployment of several companies every page but the login works on the
company ``?tenant=NAME`` names (kept in every link and form of the page): a
receipt is looked for in that company's rows only, so another company's
receipt id is "not found". Without it the connections page lists the
companies and the others ask for one."""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from pouracquit.core.insight.render import STYLESHEET as REPORT_STYLES
from pouracquit.core.service import Service
from pouracquit.state.tables import TENANT_PATTERN

from ..served import Served
from ..verify_page import verify_path
from . import data
from .i18n import LANG_COOKIE, LANGUAGES, choose, translator
from .session import LOGIN_SECONDS, SESSION_SECONDS, LoginLimiter, Sessions, token_matches
from .web import SecurityHeaders, read_form

log = structlog.get_logger("pouracquit.admin")
PREFIX = "/admin"
HERE = Path(__file__).parent
SESSION_COOKIE = "pouracquit_admin"
LOGIN_COOKIE = "pouracquit_login"
LOCALES = {"fr": "fr_FR", "en": "en_GB"}


Handler = Callable[["AdminPage", Request, str], Awaitable[Response]]


def signed_in(handler: Handler) -> Callable[[AdminPage, Request], Awaitable[Response]]:
    """A page for a session only: without one, to the login form."""

    @functools.wraps(handler)
    async def page(self: AdminPage, request: Request) -> Response:
        sid = self._session(request)
        if sid is None:
            return RedirectResponse(f"{PREFIX}/login", 303)
        return await handler(self, request, sid)

    return page


class Forbidden(Exception):
    """A POST without its CSRF token, or from another site."""


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    days, rest = divmod(max(int(seconds), 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes)
    return " ".join(parts[:2]) or f"{secs} s"


class AdminPage:
    def __init__(self, served: Served, token: str | None) -> None:
        self.served, self.token = served, token
        self.sessions, self.limiter = Sessions(), LoginLimiter()
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
        self.env.filters.update(when=_when, duration=_duration)
        # one stylesheet: the page's own, then the one the reports' fragments expect
        self.css = (HERE / "static" / "style.css").read_bytes() + b"\n" + REPORT_STYLES.encode()

    # -- plumbing ----------------------------------------------------------------
    def _lang(self, request: Request) -> str:
        return choose(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                      request.headers.get("accept-language"))

    def _session(self, request: Request) -> str | None:
        return self.sessions.valid(request.cookies.get(SESSION_COOKIE))

    def _company(self, request: Request) -> tuple[str | None, Service | None]:
        """The company a request works on and its wiring: ``?tenant=``, or the only one.
        (None, None): none chosen among several; (name, None): no such company."""
        name = request.query_params.get("tenant") or None
        if not self.served.many:
            name = name or self.served.home
        if name is None:
            return None, None
        return name, self.served.service(name)

    def _choices(self) -> list[str]:
        """The companies a page offers to choose from: every usable one, disabled ones too."""
        if not self.served.many:
            return []
        unusable = self.served.problems()
        return [name for name in self.served.known() if name not in unusable]

    def render(self, request: Request, template: str, code: int = 200, sid: str | None = None,
               tenant: str | None = None, **context: Any) -> HTMLResponse:
        """``tenant``: the company the page shows (a known one), kept in its links and forms."""
        lang = self._lang(request)
        locale = LOCALES[lang]
        other = LANGUAGES[1 - LANGUAGES.index(lang)]

        def money(amount: Decimal, currency: str) -> str:
            return format_currency(amount, currency, locale=locale)

        # the tenant goes into links only where there are several to tell apart (a name, never other text)
        kept = tenant if self.served.many and tenant and re.fullmatch(TENANT_PATTERN, tenant) else None
        query = {**request.query_params, "lang": other}
        html = self.env.get_template(template).render(
            t=translator(lang), lang=lang, other_lang=other, base=PREFIX, lang_href="?" + urllib.parse.urlencode(query),
            csrf=self.sessions.csrf(sid) if sid else None, money=money, statuses=data.STATUSES,
            many=self.served.many, tenant=kept, tenants=self._choices() if sid else [],
            tq=f"?tenant={kept}" if kept else "", ta=f"&tenant={kept}" if kept else "", **context)
        response = HTMLResponse(html, status_code=code)
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path=PREFIX, httponly=True,
                                samesite="strict", secure=request.url.scheme == "https")
        return response

    async def _form(self, request: Request, sid: str | None) -> dict[str, str]:
        """The posted form, after the same-site and CSRF checks (a logged-in POST)."""
        form = await read_form(request)
        if form is None:
            raise Forbidden
        if sid is not None and not self.sessions.csrf_matches(self.sessions.csrf(sid), form.get("csrf")):
            raise Forbidden
        return form

    def _login_page(self, request: Request, code: int = 200, error: str | None = None,
                    headers: dict[str, str] | None = None) -> HTMLResponse:
        nonce = self.sessions.login_nonce()
        response = self.render(request, "login.html", code, error=error, login_csrf=self.sessions.login_csrf(nonce),
                               configured=self.token is not None)
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_SECONDS, path=f"{PREFIX}/login", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        response.headers.update(headers or {})
        return response

    def _forbidden(self, request: Request, sid: str | None) -> HTMLResponse:
        return self.render(request, "message.html", 403, sid, message_key="form_expired")

    # -- login -------------------------------------------------------------------
    async def login_form(self, request: Request) -> Response:
        if self._session(request):
            return RedirectResponse(f"{PREFIX}/connections", 303)
        return self._login_page(request)

    async def login(self, request: Request) -> Response:
        words, client = translator(self._lang(request)), request.client.host if request.client else "?"
        wait = self.limiter.hit(client)
        if wait is not None:
            log.warning("admin page login refused: too many attempts", client=client)
            return self._login_page(request, 429, words["too_many"].format(seconds=wait), {"Retry-After": str(wait)})
        try:
            form = await self._form(request, None)
        except Forbidden:
            return self._login_page(request, 403, words["form_expired"])
        nonce = request.cookies.get(LOGIN_COOKIE) or ""
        if not nonce or not self.sessions.csrf_matches(self.sessions.login_csrf(nonce), form.get("csrf")):
            return self._login_page(request, 403, words["form_expired"])
        if not token_matches(form.get("token", ""), self.token):
            log.warning("admin page login refused: wrong token", client=client)
            return self._login_page(request, 401, words["wrong_token"])
        log.info("admin page login", client=client)
        response = RedirectResponse(f"{PREFIX}/connections", 303)
        response.set_cookie(SESSION_COOKIE, self.sessions.open(), max_age=SESSION_SECONDS, path=PREFIX,
                            httponly=True, samesite="strict", secure=request.url.scheme == "https")
        response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login", httponly=True, samesite="strict")
        return response

    async def logout(self, request: Request) -> Response:
        sid = self._session(request)
        if sid is None:
            return RedirectResponse(f"{PREFIX}/login", 303)
        try:
            await self._form(request, sid)
        except Forbidden:
            return self._forbidden(request, sid)
        self.sessions.close(sid)
        response = RedirectResponse(f"{PREFIX}/login", 303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    # -- pages -------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/connections" if self._session(request) else f"{PREFIX}/login", 303)

    async def style(self, request: Request) -> Response:
        return Response(self.css, media_type="text/css", headers={"Cache-Control": "private, max-age=3600"})

    def _unknown(self, request: Request, sid: str) -> HTMLResponse:
        return self.render(request, "message.html", 404, sid, message_key="unknown_tenant")

    @signed_in
    async def connections(self, request: Request, sid: str) -> Response:
        name, service = await run_in_threadpool(self._company, request)
        if name is None:  # several companies, none chosen: each one's summary
            rows = await run_in_threadpool(data.companies, self.served)
            return self.render(request, "companies.html", sid=sid, companies=rows)
        if service is None:
            return self._unknown(request, sid)
        rows = await run_in_threadpool(data.connections, service)
        return self.render(request, "connections.html", sid=sid, tenant=name, connections=rows)

    @signed_in
    async def receipts(self, request: Request, sid: str) -> Response:
        q = request.query_params.get("q", "")[:200]
        status = request.query_params.get("status") or None
        connection = request.query_params.get("connection") or None
        name, service = await run_in_threadpool(self._company, request)
        if name is not None and service is None:
            return self._unknown(request, sid)
        known = [c.name for c in service.settings.connections] if service else []
        status = status if status in data.STATUSES else None
        connection = connection if connection in known else None
        found = await run_in_threadpool(data.search, service, q, connection, status) if service else []
        return self.render(request, "receipts.html", sid=sid, tenant=name, receipts=found, q=q, status=status,
                           connection=connection, connection_names=known, limit=data.LIST_LIMIT)

    @signed_in
    async def receipt(self, request: Request, sid: str) -> Response:
        name, service = await run_in_threadpool(self._company, request)
        view = await run_in_threadpool(data.receipt_view, service, request.path_params["rid"]) if service else None
        if view is None:
            return self.render(request, "message.html", 404, sid, tenant=name, message_key="not_found")
        outcome = request.query_params.get("retried")
        return self.render(request, "receipt.html", sid=sid, tenant=name, view=view, r=view.receipt,
                           verify_href=verify_path(view.receipt.id, name if self.served.many else None),
                           retried=outcome if outcome and outcome.isidentifier() else None)

    @signed_in
    async def reports(self, request: Request, sid: str) -> Response:
        """A report on demand (it reads the CRM or the ledger back): nothing runs until the form is sent."""
        params = {name: request.query_params.get(name, "")[:40] or None
                  for name in ("kind", "from", "to", "connection")}
        kind = params["kind"] if params["kind"] in data.REPORTS else None
        name, service = await run_in_threadpool(self._company, request)
        if name is not None and service is None:
            return self._unknown(request, sid)
        fragment, error = ("", "")
        if kind is not None and service is not None:
            fragment, error = await run_in_threadpool(data.report, service, kind, params["from"], params["to"],
                                                      params["connection"], self._lang(request))
        # the fragment comes from core.insight's own templates, autoescaped there
        return self.render(request, "reports.html", 400 if error else 200, sid, tenant=name, params=params,
                           kind=kind, fragment=Markup(fragment), error=error, reports=data.REPORTS,  # noqa: S704
                           connection_names=[c.name for c in service.settings.connections] if service else [])

    @signed_in
    async def pdf(self, request: Request, sid: str) -> Response:
        name, service = await run_in_threadpool(self._company, request)
        found = await run_in_threadpool(data.pdf, service, request.path_params["rid"]) if service else None
        if found is None:
            return self.render(request, "message.html", 404, sid, tenant=name, message_key="not_found")
        name, content = found
        ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
        disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(name)}"
        return Response(content, media_type="application/pdf", headers={"Content-Disposition": disposition})

    async def retry(self, request: Request) -> Response:
        rid = request.path_params["rid"]
        if not (sid := self._session(request)):
            return self._forbidden(request, None)
        try:
            await self._form(request, sid)
        except Forbidden:
            return self._forbidden(request, sid)
        name, service = await run_in_threadpool(self._company, request)
        outcome = await run_in_threadpool(data.retry, service, rid, self.served.works_receipts) if service else None
        if outcome is None:  # no such company, or no such receipt in it
            return self.render(request, "message.html", 404, sid, tenant=name, message_key="not_found")
        kept = f"&tenant={name}" if self.served.many else ""
        return RedirectResponse(f"{PREFIX}/receipts/{urllib.parse.quote(rid)}?retried={outcome}{kept}", 303)


def admin_page(source: Service | Served, token: str | None) -> list[BaseRoute]:
    """The page's routes for the admin server: its app mounted at PREFIX, and PREFIX
    itself sent there. Without an admin token nobody can log in."""
    page = AdminPage(source if isinstance(source, Served) else Served(source), token)
    rid = "{rid:str}"
    app = SecurityHeaders(Starlette(routes=[
        Route("/", page.home),
        Route("/login", page.login_form, methods=["GET"]),
        Route("/login", page.login, methods=["POST"]),
        Route("/logout", page.logout, methods=["POST"]),
        Route("/static/style.css", page.style),
        Route("/connections", page.connections),
        Route("/receipts", page.receipts),
        Route("/reports", page.reports),
        Route(f"/receipts/{rid}", page.receipt),
        Route(f"/receipts/{rid}/pdf", page.pdf),
        Route(f"/receipts/{rid}/retry", page.retry, methods=["POST"]),
    ]))
    return [Route(PREFIX, lambda request: RedirectResponse(f"{PREFIX}/", 308)), Mount(PREFIX, app=app)]
