"""HTTP requests and answers as the vendor emulators see them: what a handler
reads (``Request``), what it returns (``Response``) or raises (``HttpError``, a
vendor-shaped error; ``Dropped``, a connection closed without an answer)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpError(400, {"message": f"malformed JSON body: {exc}"}) from None


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, default=str).encode()


def multipart_fields(request: Request) -> dict[str, tuple[bytes, str]] | None:
    """Form fields of a multipart/form-data body, name -> (bytes, filename);
    None when the body is not multipart (each vendor answers that its own way)."""
    content_type = request.header("content-type", "") or ""
    if "multipart/form-data" not in content_type:
        return None
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body)
    fields: dict[str, tuple[bytes, str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_payload(decode=True) or b"", part.get_filename() or "")
    return fields


class HttpError(Exception):
    """Raised by a handler to answer with a vendor-shaped error."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = Response(status=status, body=body, headers=headers or {})


class Dropped(Exception):
    """Close the connection without an answer (a response lost in transit)."""


Handler = Callable[[Request], Response]
