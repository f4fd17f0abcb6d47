"""QBO's Fault document and timestamp, shared by the sandbox's books and server."""

from __future__ import annotations

from datetime import UTC, datetime

from pouracquit.sandbox.server import HttpError


def now_stamp() -> str:
    """QBO's timestamp format, in UTC (the real service answers in US Pacific time)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def fault(status: int, code: str, message: str, detail: str = "", kind: str = "ValidationFault",
          element: str = "") -> HttpError:
    """An ``HttpError`` carrying QBO's Fault document."""
    error = {"Message": message, "Detail": detail or message, "code": code}
    if element:
        error["element"] = element
    return HttpError(status, {"Fault": {"Error": [error], "type": kind}, "time": now_stamp()})
