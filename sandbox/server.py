"""The emulator every vendor module subclasses.

A ``Sandbox`` is a threaded HTTP server on 127.0.0.1 (a free port by default,
``listener.py``) with a route table, a call counter per route, the vendor's rate
limits, fault knobs and the ``/_sandbox/*`` control endpoints. Vendor modules
subclass it, register routes (handlers take a ``Request`` and return a
``Response``, ``messages.py``) and say how their errors and 429s look.

Fault knobs (``POST /_sandbox/faults``, all optional)::

    {"error_rate": 0.05,          # answer 5xx before doing anything
     "rate_limit_rate": 0.05,     # answer the vendor's 429 before doing anything
     "drop_rate": 0.05,           # do the write, then close without answering
     "timeout_rate": 0.02,        # hold the request for "timeout_seconds", then close
     "timeout_seconds": 5.0,
     "latency": 0.0,              # seconds added to every call
     "seed": 1,
     "scripted": [{"kind": "drop", "method": "POST", "path": "salesreceipt", "count": 1}]}

``time_factor`` scales every vendor time window (rate limits, token expiry,
Retry-After): 0.01 makes a one-minute window last 0.6 s, for fast tests.
"""

from __future__ import annotations

import random
import re
import ssl
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from .listener import listen
from .messages import Dropped, Handler, HttpError, Request, Response, multipart_fields

# What an emulator builds on (the vendor modules import it from here).
__all__ = ["Faults", "Handler", "HttpError", "RateRule", "Request", "Response", "Sandbox", "listen",
           "multipart_fields"]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class RateRule:
    """At most ``limit`` calls per ``window`` seconds (before time scaling)
    per rate key; ``concurrent`` caps the calls in flight per key."""

    name: str
    limit: int | None = None
    window: float = 60.0
    concurrent: int | None = None


@dataclass
class Faults:
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    drop_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 5.0
    latency: float = 0.0
    seed: int | None = None
    scripted: list[dict[str, Any]] = field(default_factory=list)
    # a regex of paths the random faults leave alone (scripted ones still apply)
    spare: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Faults:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise HttpError(400, {"message": f"unknown fault knobs: {sorted(unknown)}"})
        return cls(**data)

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Sandbox:
    """Base emulator. Subclasses set ``vendor``, call ``route`` in
    ``__init__`` and override the hooks below."""

    vendor = "sandbox"
    rate_rules: tuple[RateRule, ...] = ()

    def __init__(
        self,
        *,
        time_factor: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.time_factor = time_factor
        self.lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.faults = Faults()
        self._rng = random.Random()
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._stamps: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self._host, self._port, self._ssl = host, port, ssl_context
        self._server: ThreadingHTTPServer | None = None
        self.route("GET", r"/_sandbox/state", "sandbox_state", lambda r: Response(body=self.dump_state()))
        self.route("POST", r"/_sandbox/seed", "sandbox_seed", self._seed_route)
        self.route("POST", r"/_sandbox/faults", "sandbox_faults", self._faults_route)
        self.route("GET", r"/_sandbox/faults", "sandbox_faults_get", lambda r: Response(body=self.faults.as_json()))
        self.route("GET", r"/_sandbox/calls", "sandbox_calls", lambda r: Response(body=self.call_counts()))
        self.route("POST", r"/_sandbox/calls/reset", "sandbox_calls_reset", self._reset_calls_route)

    # -- hooks for vendor modules -------------------------------------------------
    def dump_state(self) -> Any:
        """Every stored object, as JSON."""
        return {}

    def seed(self, spec: dict[str, Any]) -> Any:
        """Load data described by ``spec``; returns a short report."""
        raise HttpError(400, {"message": "this sandbox cannot be seeded"})

    def error_body(self, status: int, message: str) -> Any:
        """The vendor's JSON error document for ``status``."""
        return {"status": status, "message": message}

    def rate_key(self, request: Request) -> str | None:
        """The account the vendor rate-limits this request under (None: no limit)."""
        return None

    def rate_limited(self, rule: RateRule, retry_after: float) -> Response:
        """The vendor's 429 answer when ``rule`` is exceeded."""
        return Response(
            status=429,
            body=self.error_body(429, f"rate limit {rule.name} exceeded"),
            headers={"Retry-After": self.format_seconds(retry_after)},
        )

    # -- public API -------------------------------------------------------------
    def route(self, method: str, pattern: str, name: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), name, handler))

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_factor

    def format_seconds(self, seconds: float) -> str:
        """Retry-After value: whole seconds at real speed, decimals when scaled."""
        if self.time_factor >= 1:
            return str(max(1, int(seconds + 0.999)))
        return f"{max(seconds, 0.001):.3f}"

    def call_counts(self) -> dict[str, Any]:
        with self.lock:
            vendor_calls = {k: v for k, v in self.calls.items() if not k.startswith("sandbox_")}
            return {"total": sum(vendor_calls.values()), "by_endpoint": vendor_calls}

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("sandbox not started")
        scheme = "https" if self._ssl else "http"
        host, port = self._server.server_address[:2]
        return f"{scheme}://{host}:{port}"

    def start(self) -> Sandbox:
        self._server = listen(self, self._host, self._port, self._ssl, name=f"{self.vendor}-sandbox")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- dispatch ---------------------------------------------------------------
    def _seed_route(self, request: Request) -> Response:
        with self.lock:
            return Response(body=self.seed(request.json()))

    def _faults_route(self, request: Request) -> Response:
        faults = Faults.from_json(request.json())
        with self.lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)
        return Response(body=faults.as_json())

    def _reset_calls_route(self, request: Request) -> Response:
        with self.lock:
            self.calls.clear()
        return Response(body={"total": 0})

    def _match(self, method: str, path: str) -> tuple[str, Handler, dict[str, str]] | None:
        for m, pattern, name, handler in self._routes:
            found = pattern.match(path)
            if found and m == method:
                return name, handler, found.groupdict()
        return None

    def _scripted_fault(self, request: Request) -> str | None:
        for rule in self.faults.scripted:
            if rule.get("count", 1) <= 0:
                continue
            if rule.get("method", request.method) != request.method:
                continue
            if not re.search(rule.get("path", ""), request.path):
                continue
            rule["count"] = rule.get("count", 1) - 1
            return str(rule["kind"])
        return None

    def _random_fault(self, request: Request) -> str | None:
        f = self.faults
        if f.spare and re.search(f.spare, request.path):
            return None
        roll = self._rng.random()
        for kind, rate in (("error", f.error_rate), ("rate_limit", f.rate_limit_rate), ("timeout", f.timeout_rate)):
            if roll < rate:
                return kind
            roll -= rate
        if request.method in WRITE_METHODS and self._rng.random() < f.drop_rate:
            return "drop"
        return None

    def _check_rate(self, request: Request) -> tuple[str, Response | None]:
        key = self.rate_key(request)
        if key is None:
            return "", None
        now = time.monotonic()
        for rule in self.rate_rules:
            slot = (rule.name, key)
            if rule.limit:
                stamps, window = self._stamps[slot], self.scaled(rule.window)
                while stamps and now - stamps[0] >= window:
                    stamps.popleft()
                if len(stamps) >= rule.limit:
                    return "", self.rate_limited(rule, window - (now - stamps[0]))
            if rule.concurrent and self._in_flight[slot] >= rule.concurrent:
                return "", self.rate_limited(rule, self.scaled(1.0))
        for rule in self.rate_rules:
            if rule.limit:
                self._stamps[(rule.name, key)].append(now)
            if rule.concurrent:
                self._in_flight[(rule.name, key)] += 1
        return key, None

    def _release(self, key: str) -> None:
        if not key:
            return
        with self.lock:
            for rule in self.rate_rules:
                if rule.concurrent:
                    self._in_flight[(rule.name, key)] -= 1

    def dispatch(self, request: Request) -> Response:
        """Route one request through faults, limits and its handler.

        Raises ``Dropped`` when the connection must close without an answer.
        """
        found = self._match(request.method, request.path)
        if found is None:
            return Response(status=404, body=self.error_body(404, f"no route for {request.method} {request.path}"))
        name, handler, params = found
        request.params = params
        if name.startswith("sandbox_"):
            return handler(request)
        with self.lock:
            self.calls[name] += 1
            fault = self._scripted_fault(request) or self._random_fault(request)
            latency = self.faults.latency
            timeout_seconds = self.faults.timeout_seconds
            key, limited = ("", None) if fault else self._check_rate(request)
        if latency:
            time.sleep(latency)
        if fault == "error":
            return Response(status=503, body=self.error_body(503, "service unavailable (injected fault)"))
        if fault == "rate_limit":
            return self.rate_limited(RateRule(name="injected"), self.scaled(1.0))
        if fault == "timeout":
            time.sleep(timeout_seconds)
            raise Dropped
        if limited is not None:
            return limited
        try:
            try:
                response = handler(request)
            except HttpError as exc:
                response = exc.response
        finally:
            self._release(key)
        if fault == "drop":
            raise Dropped
        return response
