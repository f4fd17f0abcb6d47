"""A local mail catcher: a real SMTP server (aiosmtpd) that keeps what it receives,
listed as JSON at ``GET /_sandbox/mail`` on its HTTP side (the Sandbox machinery).

Replies can be scripted to play a difficult server (``POST /_sandbox/mail/faults``
or ``MailCatcher.script``): ``{"stage": "mail"|"rcpt"|"data"|"quit", "code": 451,
"text": "4.7.1 Try again later", "count": 1}``. ``tls`` serves implicit TLS
(port-465 style), ``starttls`` offers STARTTLS; ``login`` requires that user and
password (over TLS, as real servers do). ``data_delay`` plays a slow relay: DATA is
answered that many seconds later, and the message is kept even if its client left meanwhile.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .server import HttpError, Request, Response, Sandbox


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Reply:
    stage: str
    code: int
    text: str
    count: int = 1

    @property
    def line(self) -> str:
        return f"{self.code} {self.text}"


def received(envelope: Envelope) -> dict[str, Any]:
    """A message as the catcher lists it: envelope, main headers, attachment names."""
    raw = envelope.original_content or envelope.content or b""
    data = raw if isinstance(raw, bytes) else raw.encode()
    msg = BytesParser(policy=policy.default).parsebytes(data)
    return {
        "mail_from": envelope.mail_from,
        "rcpt_tos": list(envelope.rcpt_tos),
        "message_id": msg.get("Message-ID", ""),
        "from": str(msg.get("From", "")),
        "to": str(msg.get("To", "")),
        "reply_to": str(msg.get("Reply-To", "")),
        "subject": str(msg.get("Subject", "")),
        "attachments": [{"name": part.get_filename(), "type": part.get_content_type(),
                         "size": len(part.get_payload(decode=True) or b"")}
                        for part in msg.iter_attachments()],
        "size": len(data),
    }


class _Handler:
    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if (reply := self.catcher.take("mail")) is not None:
            return reply
        envelope.mail_from, envelope.mail_options = address, options
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if (reply := self.catcher.take("rcpt")) is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if (reply := self.catcher.take("data")) is not None:
            return reply
        if self.catcher.data_delay:
            # a relay scanning the message before it answers; like Postfix, which writes its queue
            # file before the 250, it delivers the message even if the client is gone by then
            await asyncio.sleep(self.catcher.data_delay)
        with self.catcher.lock:
            self.catcher.messages.append(received(envelope))
            self.catcher.raw.append(bytes(envelope.original_content or b""))
            number = len(self.catcher.messages)
        return f"250 2.0.0 Ok: queued as catcher-{number}"


    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.catcher.take("quit") or "221 Bye"


class MailCatcher(Sandbox):
    """The SMTP server and its HTTP listing; ``smtp_port`` is where mail goes."""

    vendor = "mail"

    def __init__(self, *, time_factor: float = 1.0, host: str = "127.0.0.1", port: int = 0,
                 smtp_port: int = 0, tls: ssl.SSLContext | None = None, starttls: ssl.SSLContext | None = None,
                 login: tuple[str, str] | None = None) -> None:
        super().__init__(time_factor=time_factor, host=host, port=port)
        self.smtp_host, self.smtp_port = host, smtp_port or free_port(host)
        self.messages: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.script: list[Reply] = []
        self.data_delay = 0.0  # seconds before DATA is answered
        self._tls, self._starttls, self._login = tls, starttls, login
        self._controller: Controller | None = None
        self.route("GET", r"/_sandbox/mail", "sandbox_mail", lambda r: Response(body=self.listing()))
        self.route("DELETE", r"/_sandbox/mail", "sandbox_mail_clear", self._clear_route)
        self.route("POST", r"/_sandbox/mail/faults", "sandbox_mail_faults", self._faults)

    def listing(self) -> dict[str, Any]:
        with self.lock:
            return {"count": len(self.messages), "messages": list(self.messages),
                    "smtp": f"{self.smtp_host}:{self.smtp_port}"}

    dump_state = listing

    def take(self, stage: str) -> str | None:
        """The scripted answer for this stage, if one is left."""
        with self.lock:
            for reply in self.script:
                if reply.stage == stage and reply.count > 0:
                    reply.count -= 1
                    return reply.line
        return None

    def _faults(self, request: Request) -> Response:
        body = request.json()
        try:
            replies = [Reply(**item) for item in (body if isinstance(body, list) else [body])]
        except TypeError as exc:
            raise HttpError(400, {"message": f"bad reply script: {exc}"}) from None
        with self.lock:
            self.script = replies
        return Response(body={"scripted": len(replies)})

    def _clear_route(self, request: Request) -> Response:
        with self.lock:
            self.messages.clear()
            self.raw.clear()
        return Response(body={"count": 0})

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and self._login is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self._login)
        return AuthResult(success=ok, handled=False)

    def start(self) -> MailCatcher:
        options: dict[str, Any] = {"ssl_context": self._tls, "tls_context": self._starttls,
                                   "enable_SMTPUTF8": True}
        if self._login is not None:
            # behind implicit TLS the session is encrypted from the start: AUTH is offered at once
            options.update(authenticator=self._authenticate, auth_required=True,
                           auth_require_tls=self._tls is None)
        self._controller = Controller(_Handler(self), hostname=self.smtp_host, port=self.smtp_port,
                                      server_hostname="localhost", **options)
        self._controller.start()
        super().start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        super().stop()

    def email_settings(self) -> dict[str, Any]:
        """The ``[email]`` section that sends here (plain SMTP on loopback)."""
        return {"enabled": True, "host": self.smtp_host, "port": self.smtp_port, "security": "none"}
