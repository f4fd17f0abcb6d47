"""The admin API's HTTP server: uvicorn (h11) serving an ASGI app from one
background thread of the ``run`` process, on one event loop.

An idle or slow client costs a socket, not a thread, and is cut off: a
connection must deliver each request head within ``HEAD_SECONDS`` (uvicorn
alone times out only the idle time after a response, so a client that
connects and says nothing, or trickles a header byte at a time, would keep
its connection for ever). Connections are capped at ``MAX_CONNECTIONS``
(uvicorn answers 503 beyond), headers at 16 KiB, and malformed requests
(a negative or non-numeric Content-Length...) get uvicorn's 400 and one
warning line, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import structlog
from uvicorn import Config, Server
from uvicorn.protocols.http.h11_impl import H11Protocol

from pouracquit.common.errors import ConfigError

log = structlog.get_logger("pouracquit.admin")

HEAD_SECONDS = 10.0  # from connecting (or from the last response) to a complete request head
KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection is closed after this
MAX_CONNECTIONS = 4096  # open connections; requests beyond get 503 (idle sockets count: keep it well above them)
MAX_HEADER_BYTES = 16 * 1024
BACKLOG = 1024
STOP_SECONDS = 5  # graceful stop: requests in progress get this long to finish


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head."""

    _deadline: asyncio.TimerHandle | None = None
    _armed_for: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._armed_for:  # a new request head was parsed: it made it in time
            self._disarm()

    def on_response_complete(self) -> None:
        done = self.cycle
        super().on_response_complete()
        if self.cycle is done and not self.transport.is_closing():  # not already on a pipelined request
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._armed_for = self.cycle
        self._deadline = self.loop.call_later(HEAD_SECONDS, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.debug("admin connection closed: no complete request in time", client=self.client)
            self.transport.close()


class StdlibLogs(logging.Handler):
    """A library's own warnings and errors (uvicorn, APScheduler) as structlog
    lines: JSON in the service like every other line."""

    def emit(self, record: logging.LogRecord) -> None:
        method = log.error if record.levelno >= logging.ERROR else log.warning
        method(record.getMessage(), source=record.name)


def route_stdlib_logs(name: str) -> None:
    """Send the standard-library logger ``name`` (and its children) through structlog."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, StdlibLogs) for h in logger.handlers):
        logger.addHandler(StdlibLogs(level=logging.WARNING))
    logger.propagate = False  # never also on stderr through logging's last-resort handler


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so a busy port is a one-line error at start-up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=BACKLOG)
    except OSError as exc:
        raise ConfigError(f"admin.bind {host}:{port} unusable: {exc.strerror or exc}") from None


class HttpServer:
    """An ASGI app on uvicorn in a daemon thread; ``stop`` finishes requests in progress."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        route_stdlib_logs("uvicorn")
        self._sock = sock
        config = Config(
            app, http=DeadlineProtocol, ws="none", lifespan="off", loop="asyncio", log_config=None,
            access_log=False, server_header=False, timeout_keep_alive=KEEP_ALIVE_SECONDS,
            limit_concurrency=MAX_CONNECTIONS, backlog=BACKLOG, h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            timeout_graceful_shutdown=STOP_SECONDS,
        )
        self._server = Server(config)
        self._thread = threading.Thread(target=self._serve, name="admin-http", daemon=True)

    def _serve(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except Exception:
            log.exception("admin API stopped on an error")

    def start(self, wait: float = 10.0) -> None:
        """Serve; connections made meanwhile wait in the listen backlog."""
        self._thread.start()
        deadline = time.monotonic() + wait
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STOP_SECONDS + 5)
        self._sock.close()
