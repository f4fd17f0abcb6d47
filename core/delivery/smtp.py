"""Sending one message over SMTP (smtplib), with every failure sorted into the
error class the pipeline acts on: a 4xx or a lost connection is tried again
later, a 5xx for the recipient stops the e-mail with the server's answer, a
refused login or certificate is the installation's to fix."""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

from pouracquit.common.errors import ConfigError, PermanentError, RetryableError

from .settings import EmailSettings


class SmtpUnavailable(RetryableError):
    """The server could not take the message now (4xx, connection refused, lost or timed out)."""


class SmtpRejected(PermanentError):
    """The server refused the message for good (5xx): ``answer`` is what it said."""

    def __init__(self, code: int, answer: str, recipient: str = "") -> None:
        who = f" for {recipient}" if recipient else ""
        super().__init__(f"SMTP server refused the message{who}: {code} {answer}")
        self.code, self.answer, self.recipient = code, answer, recipient


@dataclass(frozen=True)
class Sent:
    """The server's answer to DATA (its queue id, usually) and the Bcc copies it refused."""

    answer: str
    refused_bcc: tuple[str, ...] = ()


def _text(reply: bytes | str) -> str:
    return (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply).replace("\n", " ").strip()


def _quit(smtp: smtplib.SMTP) -> None:
    """QUIT, whatever it answers: once DATA was accepted the message is the server's, and a
    refused or lost QUIT must not turn a delivered message into one to send again."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _failure(code: int, reply: bytes | str, recipient: str = "") -> Exception:
    answer = _text(reply)
    if 400 <= code < 500 or code < 0:  # smtplib reports a closed connection as -1
        return SmtpUnavailable(f"SMTP server answered {code} {answer}, will try again")
    return SmtpRejected(code, answer, recipient)


class Mailer:
    """One connection per message: a message is the unit the pipeline retries."""

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    def send(self, message: EmailMessage, sender: str, to: str, bcc: tuple[str, ...] = ()) -> Sent:
        """Deliver ``message`` to ``to`` (and Bcc copies, which are not in its headers).
        The recipient is offered first: when the server refuses it, no Bcc copy goes out."""
        try:
            smtp = self._connect()
            try:
                return self._dialog(smtp, message, sender, to, bcc)
            finally:
                _quit(smtp)
        except (SmtpUnavailable, SmtpRejected, ConfigError):
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise ConfigError(f"email.username/password refused by {self._where()}: "
                              f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ConfigError(f"email: {self._where()} does not support {exc} (check email.security)") from None
        except ssl.SSLCertVerificationError as exc:
            raise ConfigError(f"email: the certificate of {self._where()} is not trusted ({exc.verify_message}): "
                              "set email.ca_file to its authority") from None
        except smtplib.SMTPResponseException as exc:
            raise _failure(exc.smtp_code, exc.smtp_error, to) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, TLS broken
            raise SmtpUnavailable(f"SMTP server {self._where()} unreachable: {type(exc).__name__}: {exc}") from None

    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.smtp_port}"

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
        if s.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.smtp_port, timeout=s.timeout_seconds, context=context)
        else:
            smtp = smtplib.SMTP(s.host, s.smtp_port, timeout=s.timeout_seconds, local_hostname=socket.getfqdn())
        try:
            if s.security == "starttls":
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise ConfigError(f"email: {self._where()} does not offer STARTTLS (check email.security and port)")
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.username and s.password is not None:
                smtp.login(s.username, s.password.value().get_secret_value())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _dialog(self, smtp: smtplib.SMTP, message: EmailMessage, sender: str, to: str,
                bcc: tuple[str, ...]) -> Sent:
        smtp.ehlo_or_helo_if_needed()
        wide = not all(a.isascii() for a in (sender, to, *bcc))
        if wide and not smtp.has_extn("smtputf8"):
            raise SmtpRejected(553, "the server does not accept non-ASCII addresses (no SMTPUTF8)", to)
        options = ["SMTPUTF8", "BODY=8BITMIME"] if wide else []
        code, reply = smtp.mail(sender, options)
        if code != 250:
            smtp.rset()
            if code >= 500:
                raise ConfigError(f"email.sender {sender} refused by {self._where()}: {code} {_text(reply)}")
            raise _failure(code, reply)
        code, reply = smtp.rcpt(to)
        if code not in (250, 251):
            smtp.rset()
            raise _failure(code, reply, to)
        refused = tuple(copy for copy in bcc if smtp.rcpt(copy)[0] not in (250, 251))
        payload = message.as_bytes(policy=policy.SMTPUTF8 if wide else policy.SMTP)
        code, reply = smtp.data(payload)
        if code != 250:
            raise _failure(code, reply, to)
        return Sent(answer=f"{code} {_text(reply)}", refused_bcc=refused)
