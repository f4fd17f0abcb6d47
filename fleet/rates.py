"""One connection's rate budget, shared by every worker that calls it, kept in Redis.

A vendor counts a company's calls, whichever of our processes sends them: with
in-process gates, three workers on one connection would each spend the whole
budget. ``RedisGates`` is the ``GateFactory`` a fleet worker hands its connectors
(``ConnectorContext.gates``); each of its gates keeps under
``pouracquit:rate:{scope}:{purpose}``:

* ``:calls`` - the rate: a sliding log of the calls admitted in the last window
  (a sorted set scored by admission time), exact like ``CallGate``'s, so that no
  window of the vendor's ever sees more than ``limit`` calls (a token bucket lets
  up to twice its size through one window: a full bucket, then its refill);
* ``:slots`` - the concurrency: the holders of a slot, scored by when their hold
  expires, and ``:wake``, one token per slot given back, on which waiters block.

The scripts read the Redis server's clock (``TIME``), never the callers', so the
machines of a fleet need not agree on the time. Every key expires on its own once
unused. A gate that cannot reach Redis raises ``RetryableError`` rather than let
the call out unpaced: the receipt is retried later, the vendor is not flooded.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import redis
import structlog

from pouracquit.common.errors import RetryableError

T = TypeVar("T")
log = structlog.get_logger("pouracquit.fleet.rates")

KEY = "pouracquit:rate:{scope}:{purpose}"
# A slot is held for SLOT_TTL and renewed every third of it while its call runs, so a
# call of any length keeps its slot and a SIGKILLed worker's slot comes back within
# SLOT_TTL. 60 s exceeds the connectors' default HTTP timeout (30 s, their ``timeout``
# settings) so that a call still holds its slot even when its process is too busy to
# renew on time (a 2-core machine running several workers); a shorter hold would
# return a killed worker's slots sooner at that risk.
SLOT_TTL = 60.0
# The longest a waiter blocks on ``:wake`` before it asks again: below any sensible
# socket_timeout of the client, so that the wait is not mistaken for a dead Redis.
WAKE_WAIT_MAX = 2.0

# KEYS[1] calls; ARGV limit, window (µs), member. 0 when admitted, else µs to wait.
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""

# KEYS[1] slots; ARGV limit, ttl (µs), member. 0 when taken, else µs until the first hold expires.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
  if redis.call('PTTL', KEYS[1]) < math.ceil(ttl / 1000) then
    redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000))
  end
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) - now)
"""

# KEYS[1] slots; ARGV ttl (µs), member. 1 when still held (now for ttl more), 0 when lost.
RENEW = """
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[2])
if redis.call('PTTL', KEYS[1]) < math.ceil(ttl / 1000) then
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000))
end
return 1
"""

# KEYS[1] slots, KEYS[2] wake; ARGV limit, ttl (µs), member. At most ``limit`` tokens wait
# on :wake, so that tokens nobody took cost a waiter a few extra looks, never a flood.
RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[3]) == 1 then
  redis.call('RPUSH', KEYS[2], 1)
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
  redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[2]) / 1000))
end
return 0
"""


def _unreachable(key: str, exc: redis.RedisError) -> RetryableError:
    reason = (str(exc).splitlines() or [""])[0]
    return RetryableError(f"rate gate {key}: redis unreachable, the call was not sent "
                          f"({type(exc).__name__}: {reason})"[:300])


@dataclass(frozen=True)
class RedisGate:
    """One budget: at most ``limit`` calls per ``window`` seconds and ``concurrency`` in
    flight, across every process whose gate names the same key."""

    gates: RedisGates
    key: str
    limit: int | None
    window: float
    concurrency: int | None

    def run(self, fn: Callable[[], T]) -> T:
        # The slot is taken before the rate admits the call, so that the call goes out
        # the moment it is counted: waiting for a slot after admission would let calls
        # counted in one window reach the vendor bunched in the next.
        holder = self._take_slot() if self.concurrency else None
        try:
            with self._renewing(holder):
                if self.limit:
                    self._admit()
                return fn()
        finally:
            if holder is not None:
                self._give_back(holder)

    def _admit(self) -> None:
        window_us = max(1, round(self.window * 1_000_000))
        member = uuid.uuid4().hex
        while True:
            try:
                wait_us = int(self.gates.admit(keys=[f"{self.key}:calls"], args=[self.limit, window_us, member]))
            except redis.RedisError as exc:
                raise _unreachable(self.key, exc) from exc
            if wait_us == 0:
                return
            time.sleep(wait_us / 1_000_000)

    def _take_slot(self) -> str:
        member = uuid.uuid4().hex
        slots, wake = f"{self.key}:slots", f"{self.key}:wake"
        try:
            while True:
                wait_us = int(self.gates.acquire(keys=[slots], args=[self.concurrency, self.gates.ttl_us, member]))
                if wait_us == 0:
                    return member
                # Woken by the next slot given back, else when the first hold expires.
                self.gates.client.blpop([wake], timeout=min(max(wait_us / 1_000_000, 0.01), WAKE_WAIT_MAX))
        except redis.RedisError as exc:
            raise _unreachable(self.key, exc) from exc

    def _give_back(self, member: str) -> None:
        try:
            self.gates.release(keys=[f"{self.key}:slots", f"{self.key}:wake"],
                               args=[self.concurrency, self.gates.ttl_us, member])
        except redis.RedisError as exc:  # the call is done; its slot comes back when its hold expires
            log.warning("could not give a rate slot back", key=self.key, error=type(exc).__name__)

    @contextmanager
    def _renewing(self, member: str | None) -> Iterator[None]:
        if member is None:
            yield
            return
        done = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(member, done), daemon=True,
                                   name=f"rate-slot {self.key}")
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()

    def _renew(self, member: str, done: threading.Event) -> None:
        while not done.wait(self.gates.slot_ttl / 3):
            try:
                kept = self.gates.renew(keys=[f"{self.key}:slots"], args=[self.gates.ttl_us, member])
            except redis.RedisError as exc:  # the call is out already; the next round may succeed
                log.warning("could not renew a rate slot", key=self.key, error=type(exc).__name__)
                continue
            if not kept:
                log.warning("a rate slot expired while its call ran: the vendor may see one call too many",
                            key=self.key)
                return


class RedisGates:
    """The ``GateFactory`` of one connector in a fleet: its gates share their budgets with
    every process that builds gates of the same ``scope`` ("tenant/connection/vendor")
    and purpose. ``slot_ttl`` bounds how long a killed worker's slot stays taken."""

    def __init__(self, client: redis.Redis, scope: str, *, slot_ttl: float = SLOT_TTL) -> None:
        self.client = client
        self.scope = scope
        self.slot_ttl = slot_ttl
        self.ttl_us = round(slot_ttl * 1_000_000)
        # register_script loads nothing yet: each call runs EVALSHA and loads on NOSCRIPT
        self.admit = client.register_script(ADMIT)
        self.acquire = client.register_script(ACQUIRE)
        self.renew = client.register_script(RENEW)
        self.release = client.register_script(RELEASE)

    def __call__(self, purpose: str, *, limit: int | None = None, window: float = 60.0,
                 concurrency: int | None = None) -> RedisGate:
        return RedisGate(self, KEY.format(scope=self.scope, purpose=purpose), limit, window, concurrency)
