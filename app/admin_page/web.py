"""What any page the admin server renders for a browser shares: the security
headers every answer gets and how a posted form is read."""

from __future__ import annotations

import urllib.parse

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_FORM_BYTES = 8 * 1024
HEADERS = {
    # nothing but this server's stylesheet and images; no script at all, forms post here only
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # not no-referrer: Chromium then sends "Origin: null" with our own forms
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SecurityHeaders:
    """Every answer of the page gets HEADERS, and is not cached unless it says otherwise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def read_form(request: Request, max_fields: int = 10) -> dict[str, str] | None:
    """The fields of a posted ``application/x-www-form-urlencoded`` form (first value
    of each), or None when it comes from another site or its body is too large."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return None
    origin = request.headers.get("origin")
    if origin and urllib.parse.urlsplit(origin).netloc != request.headers.get("host"):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=max_fields)
    return {key: values[0] for key, values in fields.items()}
