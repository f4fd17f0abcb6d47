"""Every vendor API call goes through here: retries, pacing and counting.

Connectors wrap each SDK or HTTP call in ``VendorClient.call``; they never
import tenacity themselves. A call that fails with a ``RetryableError`` is
retried with exponential backoff, or after the vendor's ``Retry-After`` when
it sent one; an ``AuthExpired`` first runs the connector's refresh hook.
A gate keeps us under the vendor's published limits so that the sandbox's
(and the vendor's) 429s are the exception, not the rhythm. Connectors get
their gates from a ``GateFactory`` (``ConnectorContext.gates``): ``local_gates``
paces one process (``CallGate``); the fleet's factory shares each budget with
every worker calling the same connection.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, retry_if_exception_type, stop_after_attempt

from .errors import (
    AuthExpired,
    BadRecord,
    ConfigError,
    PermanentError,
    PouracquitError,
    RateLimited,
    RetryableError,
)

T = TypeVar("T")
log = structlog.get_logger("pouracquit.calls")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


ErrorClass = type[PouracquitError]

DEFAULT_STATUS_TABLE: Mapping[int, ErrorClass] = {
    400: BadRecord,
    401: AuthExpired,
    403: ConfigError,
    404: PermanentError,
    409: PermanentError,
    422: BadRecord,
    429: RateLimited,
}


def error_for_status(
    vendor: str,
    status: int,
    message: str,
    retry_after: float | None = None,
    table: Mapping[int, ErrorClass] = DEFAULT_STATUS_TABLE,
) -> PouracquitError:
    """Translate an HTTP status into the error class the pipeline acts on."""
    text = f"{vendor} answered HTTP {status}: {message}"[:500]
    cls = table.get(status)
    if cls is None:
        cls = RetryableError if status >= 500 or status in (408, 425) else PermanentError
    if issubclass(cls, RetryableError):
        return cls(text, retry_after=retry_after)
    return cls(text)


@dataclass
class CallGate:
    """Client-side pacing: at most ``limit`` calls per ``window`` seconds and
    ``concurrency`` in flight, per vendor account."""

    limit: int | None = None
    window: float = 60.0
    concurrency: int | None = None
    _stamps: deque[float] = field(default_factory=deque, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _slots: threading.BoundedSemaphore | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.concurrency:
            self._slots = threading.BoundedSemaphore(self.concurrency)

    def _wait_for_slot(self) -> None:
        if not self.limit:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                while self._stamps and now - self._stamps[0] >= self.window:
                    self._stamps.popleft()
                if len(self._stamps) < self.limit:
                    self._stamps.append(now)
                    return
                delay = self.window - (now - self._stamps[0])
            time.sleep(max(delay, 0.001))

    def run(self, fn: Callable[[], T]) -> T:
        self._wait_for_slot()
        if self._slots is None:
            return fn()
        with self._slots:
            return fn()


class Gate(Protocol):
    """Paces the calls it runs: ``run`` returns when ``fn`` may go out and has."""

    def run(self, fn: Callable[[], T]) -> T: ...


class GateFactory(Protocol):
    """Builds one connection's gates. ``purpose`` names the budget within the connection
    ("api", "search", "refresh"): two gates of one connector are two budgets, and a factory
    that shares budgets across processes shares each purpose's with the same purpose only."""

    def __call__(self, purpose: str, *, limit: int | None = None, window: float = 60.0,
                 concurrency: int | None = None) -> Gate: ...


def local_gates(purpose: str, *, limit: int | None = None, window: float = 60.0,
                concurrency: int | None = None) -> CallGate:
    """The in-process factory: each gate is its own budget already, so ``purpose`` changes nothing."""
    return CallGate(limit=limit, window=window, concurrency=concurrency)


# The op name every connector gives its token refresh (``call("oauth.refresh", ...)``).
REFRESH_OP = "oauth.refresh"


class RefreshWatcher(Protocol):
    """Told how each token refresh of one connection went: ``refused`` is the
    ConfigError of a token endpoint that said no (the connection is lost until
    someone acts), None after a successful refresh."""

    def refreshed(self, vendor: str, refused: ConfigError | None) -> None: ...


class CallMeter:
    """Counts calls and errors per vendor; read by the summary and /metrics.

    ``watched_by`` gives one connection's connectors a meter that counts into
    this one and also reports their token refreshes to a ``RefreshWatcher``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self.watcher: RefreshWatcher | None = None

    def watched_by(self, watcher: RefreshWatcher) -> CallMeter:
        view = CallMeter()
        view._lock, view.calls, view.errors, view.watcher = self._lock, self.calls, self.errors, watcher
        return view

    def count_refresh(self, vendor: str, refused: ConfigError | None) -> None:
        if self.watcher is None:
            return
        try:
            self.watcher.refreshed(vendor, refused)
        except Exception:  # noting the outcome must never hide or replace it
            log.exception("could not record the outcome of a token refresh", vendor=vendor)

    def count_call(self, vendor: str) -> None:
        with self._lock:
            self.calls[vendor] += 1

    def count_error(self, vendor: str, error: PouracquitError) -> None:
        with self._lock:
            self.errors[(vendor, type(error).__name__)] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)

    def error_snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.errors)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0


@dataclass
class VendorClient:
    """Runs one vendor's calls under its gate, error table and retry policy.

    ``classify`` turns whatever the SDK or HTTP library raised into a
    ``PouracquitError``; ``refresh`` renews credentials after ``AuthExpired``.
    """

    vendor: str
    classify: Callable[[Exception], PouracquitError]
    meter: CallMeter
    gate: Gate = field(default_factory=CallGate)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    refresh: Callable[[], None] | None = None

    def _attempt(self, fn: Callable[[], T]) -> T:
        self.meter.count_call(self.vendor)
        try:
            return self.gate.run(fn)
        except PouracquitError as exc:
            error: PouracquitError = exc
        except Exception as exc:  # noqa: BLE001 - every SDK failure is classified here
            error = self.classify(exc)
            error.__cause__ = exc
        self.meter.count_error(self.vendor, error)
        raise error

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after", None)
        if hinted is not None:
            return min(float(hinted), self.retry.backoff_max)
        return min(self.retry.backoff_base * 2 ** (state.attempt_number - 1), self.retry.backoff_max)

    def _before_sleep(self, op: str) -> Callable[[RetryCallState], None]:
        def hook(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, AuthExpired) and self.refresh is not None:
                self.refresh()
            log.warning(
                "vendor call retried",
                vendor=self.vendor,
                op=op,
                attempt=state.attempt_number,
                error=type(exc).__name__,
                wait=round(state.upcoming_sleep, 3),
            )

        return hook

    def _resendable(self, exc: BaseException) -> bool:
        """Whether a write the vendor cannot deduplicate may be sent again:
        only when the vendor refused it before doing anything. A 429 is such
        an answer, and so is a 401 ("the request has not been applied",
        RFC 9110 §15.5.2) once the refresh hook can renew the token."""
        if isinstance(exc, RateLimited):
            return True
        return isinstance(exc, AuthExpired) and self.refresh is not None

    def call(self, op: str, fn: Callable[[], T], *, replay_safe: bool = True) -> T:
        """Run ``fn`` (one vendor request) with pacing, classification and retries.

        A write the vendor cannot deduplicate (no idempotency key) passes
        ``replay_safe=False``: only a 429 or an expired token, which the
        vendor answers before doing anything, is retried here (the latter
        after a refresh); any other failure may have committed, so it goes
        back to the pipeline, whose replay looks up before writing.
        """
        retrying = Retrying(
            retry=retry_if_exception_type(RetryableError) if replay_safe else retry_if_exception(self._resendable),
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            before_sleep=self._before_sleep(op),
            reraise=True,
        )
        if op != REFRESH_OP:
            return retrying(self._attempt, fn)
        # A token endpoint that refuses (invalid_grant: a revoked or retired
        # refresh token) leaves the connection dead until someone reconnects
        # it: the watcher makes that visible at once, not at the next failed pass.
        try:
            answer = retrying(self._attempt, fn)
        except ConfigError as exc:
            self.meter.count_refresh(self.vendor, exc)
            raise
        self.meter.count_refresh(self.vendor, None)
        return answer
