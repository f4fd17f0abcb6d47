"""Which receipts of each tenant are in flight: sent to a worker and not yet finished.

A Redis sorted set per tenant holds receipt ids scored by when their claim runs
out (a Unix time). The scheduler adds a batch's ids when it sends the batch, a
worker shortens their expiry when it starts on them and keeps renewing it while
it works, and removes them when it ends. The ids of a worker killed mid-batch
are not removed by anyone: they run out within two receipt leases (by then
the receipts' leases in the store have run out too) and the scheduler sends
them again (the receipt's lease in the store, not this set,
decides who may work a receipt; this set only keeps the scheduler from sending
the same receipts over and over, and counts each tenant's share).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import structlog
from redis import Redis
from redis.exceptions import RedisError

from pouracquit.common.errors import ConfigError, one_line

log = structlog.get_logger("pouracquit.fleet.inflight")

# a batch waits in the broker's queue behind the other tenants' batches: its ids stay claimed that long
QUEUED_SECONDS = 600.0
# a batch whose task crashed (the tenant's configuration, the store) is sent again only after this long
CRASHED_SECONDS = 30.0


def redis_client(url: str) -> Redis:
    """A client of the fleet's Redis, checked now: a bad URL or an unreachable server is a ConfigError."""
    try:
        client = Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    except ValueError as exc:
        raise ConfigError(f"fleet.redis: not a Redis URL ({one_line(str(exc))}); "
                          "expected redis://HOST:6379/0") from None
    try:
        client.ping()
    except RedisError as exc:
        client.close()
        where = url.split("@")[-1]  # without a password
        raise ConfigError(f"fleet.redis {where} unreachable: {one_line(str(exc))}") from None
    return client


class InFlight:
    """The in-flight sets of one fleet (its queue name prefixes every key)."""

    def __init__(self, redis: Redis, namespace: str, clock: Callable[[], float] = time.time) -> None:
        self.redis, self.namespace, self.clock = redis, namespace, clock

    def key(self, tenant: str) -> str:
        return f"{self.namespace}:inflight:{tenant}"

    def live(self, tenant: str) -> set[str]:
        """The ids still claimed; those whose claim ran out are dropped."""
        key = self.key(tenant)
        pipe = self.redis.pipeline()
        pipe.zremrangebyscore(key, "-inf", self.clock())
        pipe.zrange(key, 0, -1)
        _, ids = pipe.execute()
        return {i.decode() if isinstance(i, bytes) else str(i) for i in ids}

    def add(self, tenant: str, ids: Sequence[str], seconds: float = QUEUED_SECONDS) -> None:
        self._score(tenant, ids, seconds, xx=False)

    def renew(self, tenant: str, ids: Sequence[str], seconds: float) -> None:
        """Move the expiry of those ``ids`` still in the set (XX: a finished id is not added back)."""
        if ids:
            self._score(tenant, ids, seconds, xx=True)

    def _score(self, tenant: str, ids: Sequence[str], seconds: float, *, xx: bool) -> None:
        key = self.key(tenant)
        pipe = self.redis.pipeline()
        pipe.zadd(key, {i: self.clock() + seconds for i in ids}, xx=xx)
        # the set of a tenant removed goes by itself; one in use is kept as long as its batches are
        pipe.expire(key, int(max(seconds, QUEUED_SECONDS)) + 60)
        pipe.execute()

    def remove(self, tenant: str, ids: Sequence[str]) -> None:
        if ids:
            self.redis.zrem(self.key(tenant), *ids)


class Running:
    """The batches this worker process is working, their claims renewed by one thread."""

    def __init__(self, inflight: InFlight, seconds: float) -> None:
        """``seconds``: a running batch's claim, renewed every third of it."""
        self.inflight, self.seconds = inflight, seconds
        self._held: dict[int, tuple[str, Sequence[str]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(self, tenant: str, ids: Sequence[str]) -> Iterator[None]:
        """Claims ``ids`` while the body runs; then lets them go (after a pause when it raised)."""
        token = object()
        self._renew(tenant, ids, self.seconds)
        with self._lock:
            self._held[id(token)] = (tenant, ids)
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="inflight-renewal", daemon=True)
                self._thread.start()
        crashed = False
        try:
            yield
        except BaseException:
            crashed = True
            raise
        finally:
            with self._lock:
                self._held.pop(id(token), None)
            try:
                if crashed:  # not sent again at the next tick: a persistent fault would loop once a second
                    self.inflight.renew(tenant, ids, CRASHED_SECONDS)
                else:
                    self.inflight.remove(tenant, ids)
            except RedisError as exc:  # they run out by themselves
                log.warning("in-flight ids not released", tenant=tenant, error=str(exc))

    def _renew(self, tenant: str, ids: Sequence[str], seconds: float) -> None:
        try:
            self.inflight.renew(tenant, ids, seconds)
        except RedisError as exc:  # the next renewal may pass; at worst the ids are sent once more
            log.warning("in-flight ids not renewed", tenant=tenant, error=str(exc))

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            with self._lock:
                held = list(self._held.values())
            for tenant, ids in held:
                self._renew(tenant, ids, self.seconds)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
