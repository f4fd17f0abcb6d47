"""The [email] section: who sends, through which SMTP server, to whom in tests."""

from __future__ import annotations

import ipaddress
import re
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pouracquit.common.secrets import SecretRef

# a header value with a line break would start a second header (or recipient): refused outright
_BREAK = re.compile(r"[\r\n\x00]")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def mailbox(value: str, field: str) -> str:
    """A plain address ``local@domain``, or ValueError naming ``field``: no display
    name, no second address, no line break (header injection)."""
    text = value.strip()
    if _BREAK.search(value):
        raise ValueError(f"{field} contains a line break, which would add a mail header: remove it")
    name, addr = parseaddr(text)
    if not addr or name or addr != text or text.count("@") != 1:
        raise ValueError(f"{field} {text!r} is not one plain e-mail address (like name@example.fr)")
    try:
        Address(addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{field} {text!r} is not a valid e-mail address: {exc}") from None
    local, _, domain = addr.rpartition("@")
    if not local or "." not in domain.strip("."):
        raise ValueError(f"{field} {text!r} has no domain such as example.fr")
    return addr


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class EmailSettings(BaseModel):
    """``[email]``: off unless ``enabled``; ``sender`` defaults to the seller's e-mail."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    enabled: bool = False
    sender: str = ""
    sender_name: str = ""
    reply_to: str = ""
    bcc: list[str] = Field(default_factory=list)
    # test sends: every message goes to this address instead, its subject naming the real recipient
    redirect_to: str = ""
    host: str = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: SecretRef | None = None
    # the certificate authority of a relay whose certificate the system does not trust (a company's own)
    ca_file: Path | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    language: Literal["fr", "en"] = "fr"
    # a note of every sent e-mail on the CRM record, where the source can write one
    log_on_crm: bool = True

    @field_validator("sender", "reply_to", "redirect_to")
    @classmethod
    def _address(cls, v: str, info: object) -> str:
        return mailbox(v, getattr(info, "field_name", "address")) if v else v

    @field_validator("bcc")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        return [mailbox(a, "bcc") for a in v]

    @field_validator("sender_name", "host", "username")
    @classmethod
    def _one_line(cls, v: str, info: object) -> str:
        if _BREAK.search(v):
            raise ValueError(f"{getattr(info, 'field_name', 'value')} contains a line break: remove it")
        return v

    @field_validator("ca_file")
    @classmethod
    def _readable(cls, v: Path | None) -> Path | None:
        if v is not None and not v.expanduser().is_file():
            raise ValueError(f"ca_file {v} is not a file")
        return v.expanduser() if v is not None else None

    @model_validator(mode="after")
    def _credentials(self) -> EmailSettings:
        if self.password is not None and not self.username:
            raise ValueError("password is set without username: set username too")
        if self.username and self.password is None:
            raise ValueError("username is set without password: give password = { env = \"VAR\" } or { file = ... }")
        if self.password is not None and self.security == "none" and not is_loopback(self.host):
            raise ValueError(f"security = \"none\" would send the SMTP password in clear to {self.host}: "
                             "use starttls or tls")
        return self

    @property
    def smtp_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]
