"""The HTTP listener under every emulator: a threaded server on a background
thread that turns each request into a ``Request``, hands it to its owner's
``dispatch`` and writes the ``Response`` back (or closes on ``Dropped``)."""

from __future__ import annotations

import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from .messages import Dropped, Request, Response


class Owner(Protocol):
    """What a listener serves: a Sandbox, or anything that dispatches and shapes errors like one."""

    def dispatch(self, request: Request) -> Response: ...

    def error_body(self, status: int, message: str) -> Any: ...


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (killed, timed out) is routine here, not a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def listen(owner: Owner, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
           name: str = "sandbox") -> ThreadingHTTPServer:
    """Serve ``owner.dispatch`` (a Sandbox, or anything with its ``dispatch`` and
    ``error_body``) on a background thread; a sandbox may open a second
    listener this way, e.g. plain-HTTP control endpoints beside a TLS API."""

    class _Handler(_RequestHandler):
        pass

    _Handler.owner = owner
    server = _QuietServer((host, port), _Handler)
    server.daemon_threads = True
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    # a short poll interval keeps stop() fast: tests start and stop many sandboxes
    threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True).start()
    return server


class _RequestHandler(BaseHTTPRequestHandler):
    owner: Owner
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the call counter is the sandbox's log."""

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            response = self.owner.dispatch(request)
        except Dropped:
            self.close_connection = True
            return
        except Exception as exc:  # noqa: BLE001 - an emulator bug must still answer like a server
            response = Response(status=500, body=self.owner.error_body(500, f"sandbox error: {exc!r}"))
        payload = response.encoded()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        if self.close_connection and "Connection" not in response.headers:
            # the client asked to close: say so, or its pool keeps a dead socket
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle
