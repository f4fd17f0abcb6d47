"""One error hierarchy, grouped by what the pipeline does with an error.

Connectors translate vendor failures into these classes (one table per
vendor); the pipeline decides by class alone:

* ``RetryableError`` - try again later (``RateLimited`` honours ``retry_after``,
  ``AuthExpired`` refreshes credentials first);
* ``BadRecord`` - this record cannot be processed as it is: quarantine it with
  the reason and go on with the others;
* ``ConfigError`` - the installation is wrong: stop and tell the user;
* ``PermanentError`` - the vendor refused for good: the receipt stops at its
  step with the reason.
"""

from __future__ import annotations

import re


class PouracquitError(Exception):
    """Base of every error the product raises on purpose."""


class RetryableError(PouracquitError):
    """A transient failure: the same call may succeed later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(RetryableError):
    """The vendor asked us to slow down (HTTP 429 or an equivalent)."""


class AuthExpired(RetryableError):
    """The access token expired or was revoked; refresh, then retry."""


class PermanentError(PouracquitError):
    """The vendor rejected the call for good; retrying will not help."""


class BadRecord(PouracquitError):
    """A CRM record is unusable as it stands; quarantine it, name what to fix."""


class DocumentInvalid(BadRecord):
    """A document breaks Factur-X / EN16931 rules: it must reach no ledger and no customer.

    What the record holds made it so (a VAT rate French law does not know, say): the
    receipt is quarantined with the rule ids, like any record to fix in the CRM."""

    def __init__(self, rules: tuple[str, ...], message: str) -> None:
        super().__init__(f"document fails EN16931 rules {', '.join(rules)}: {message}")
        self.rules = rules
        self.detail = message

    def __reduce__(self) -> tuple[type[DocumentInvalid], tuple[tuple[str, ...], str]]:
        # rebuilt from its own arguments when it comes back from a render worker process
        return DocumentInvalid, (self.rules, self.detail)


class ConfigError(PouracquitError):
    """The configuration or the installation is wrong; stop and say which key."""


class LeaseLost(PouracquitError):
    """Another worker holds the receipt now: this one must not write for it."""


class WebhookRejected(PouracquitError):
    """A webhook whose signature is missing, wrong, stale or replayed: answer 401, do nothing."""


_PYDANTIC_TAIL = re.compile(r"\s*\[type=[^\]]*\]|\s*For further information visit \S+")
_PYDANTIC_HEAD = re.compile(r"\b\d+ validation errors? for \w+\s*")


def one_line(reason: str) -> str:
    """A reason as one line a person can act on: pydantic's multi-line dumps
    (count header, input echo, documentation link) reduced to field: message."""
    text = _PYDANTIC_TAIL.sub("", _PYDANTIC_HEAD.sub("", reason))
    parts = [p.strip() for p in text.splitlines() if p.strip()]
    return " ".join(p if p.endswith((":", ";")) or i == len(parts) - 1 else p + ("" if p.endswith(".") else ":")
                    for i, p in enumerate(parts)).replace("Value error, ", "")
