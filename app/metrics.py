"""The service's Prometheus metrics, through prometheus-client.

One ``Metrics`` (one CollectorRegistry) per admin server. Two kinds of series:

- what this process saw happen, kept in prometheus-client's counters and
  histograms and fed by the scheduled jobs (``observe_sync``, ``count_outcomes``,
  ``count_crash``): sync durations, runs, receipt outcomes, crashed jobs;
- what the state store says now, read at each scrape by a custom collector (the
  store is shared by every process, so these are the truth across them):
  receipts by status, quarantined records, disconnections, each connection's
  freshness, plus whatever gauges ``add_gauge`` registered.

Conventions: the ``pouracquit_`` prefix, counters end in ``_total``, durations
are histograms in seconds, instants are ``_timestamp_seconds`` (Unix time),
``pouracquit_build_info{version}``; process and Python metrics come from the
library's own collectors. docs/operations.md lists every series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pouracquit.core.disconnections import disconnected
from pouracquit.core.insight.reconcile import drift_samples
from pouracquit.core.service import Service

from .status import freshness

log = structlog.get_logger("pouracquit.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST
# a pass takes from a second (nothing new) to many minutes (a first sync rendering thousands of PDFs)
SYNC_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
SIDES = ("source", "ledger")

Samples = Iterable[tuple[dict[str, str], float]]


@dataclass(frozen=True)
class StoreGauge:
    """A gauge computed at each scrape: ``read`` gives (labels, value) pairs."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    read: Callable[[Service], Samples]


def _version() -> str:
    try:
        return metadata.version("pouracquit")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


class Metrics:
    """The registry of one admin server, and the hooks the jobs feed it through."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Info("pouracquit_build", "The running pouracquit's version.", registry=self.registry).info(
            {"version": _version()})
        self.sync_duration = Histogram(
            "pouracquit_sync_duration_seconds", "Duration of the sync passes this process ran.",
            ["connection"], buckets=SYNC_BUCKETS, registry=self.registry)
        self.sync_runs = Counter(
            "pouracquit_sync_runs", "Sync passes this process ran, by result (ok, error, crashed).",
            ["connection", "result"], registry=self.registry)
        self.receipt_outcomes = Counter(
            "pouracquit_receipt_outcomes", "Receipts this process worked on, by outcome of the attempt.",
            ["connection", "outcome"], registry=self.registry)
        self.job_crashes = Counter(
            "pouracquit_job_crashes", "Scheduled jobs that ended on an unexpected exception (see the log).",
            ["connection", "job"], registry=self.registry)
        for conn in service.connections():  # every series exists from the start, at zero
            self.sync_duration.labels(connection=conn.name)
            for result in ("ok", "error", "crashed"):
                self.sync_runs.labels(connection=conn.name, result=result)
            for job in ("sync", "drain"):
                self.job_crashes.labels(connection=conn.name, job=job)
        self.gauges: list[StoreGauge] = []
        self.add_gauge("pouracquit_reconciliation_drift", "Drifts between the CRM, the receipts and the ledger "
                       "found by the last reconciliation (NaN when it could not read a side).", ("connection",),
                       drift_samples)
        self.registry.register(_StoreCollector(self))

    def add_gauge(self, name: str, documentation: str, labels: tuple[str, ...],
                  read: Callable[[Service], Samples]) -> None:
        """A gauge read from the store at each scrape, e.g. per-connection drift:
        ``metrics.add_gauge("pouracquit_reconciliation_drift", "...", ("connection",),
        lambda service: [({"connection": "main"}, 2.0)])``."""
        self.gauges.append(StoreGauge(name, documentation, labels, read))

    def observe_sync(self, connection: str, seconds: float, result: str) -> None:
        """One pass ended: ``result`` is ok, error (it said why) or crashed."""
        self.sync_duration.labels(connection=connection).observe(seconds)
        self.sync_runs.labels(connection=connection, result=result).inc()

    def count_outcomes(self, connection: str, outcomes: Iterable[tuple[str, int]]) -> None:
        for outcome, n in outcomes:
            if n:
                self.receipt_outcomes.labels(connection=connection, outcome=outcome).inc(n)

    def count_crash(self, connection: str, job: str) -> None:
        self.job_crashes.labels(connection=connection, job=job).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


class _StoreCollector(Collector):
    """The series read at each scrape: the call meter's counts, then the state store's."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        meter = self.metrics.service.meter
        calls = CounterMetricFamily("pouracquit_api_calls", "Vendor API calls made by this process.",
                                    labels=("vendor",))
        for vendor, n in sorted(meter.snapshot().items()):
            calls.add_metric([vendor], n)
        yield calls
        errors = CounterMetricFamily("pouracquit_api_errors", "Vendor API errors by vendor and error class.",
                                     labels=("vendor", "error"))
        for (vendor, error), n in sorted(meter.error_snapshot().items()):
            errors.add_metric([vendor, error], n)
        yield errors
        up = GaugeMetricFamily("pouracquit_state_store_up", "1 when the state store answered this scrape, else 0.")
        try:
            families = list(self._from_store())
        except Exception as exc:  # noqa: BLE001 - the process metrics still go out; up says the rest is missing
            log.warning("metrics: state store not read", error=f"{type(exc).__name__}: {exc}")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_store(self) -> Iterator[Metric]:
        service = self.metrics.service
        store, connections = service.store, service.settings.connections
        now = datetime.now(UTC)
        yield _gauge("pouracquit_receipts", "Receipts by connection and status.", ("connection", "status"),
                     [({"connection": c, "status": s}, n) for (c, s), n in sorted(store.receipt_counts().items())])
        yield _gauge("pouracquit_quarantined_records", "CRM records refused by the mapping.", ("connection",),
                     [({"connection": c.name}, len(store.quarantined(c.name))) for c in connections])
        yield _gauge("pouracquit_connection_disconnected",
                     "1 while the vendor of this side refuses the token refresh (run pouracquit connect), else 0.",
                     ("connection", "side"),
                     [({"connection": c.name, "side": side}, int(side in lost))
                      for c in connections for lost in (disconnected(store, c.name),) for side in SIDES])
        states = store.connection_states()
        fresh = {c.name: freshness(c, states.get(c.name), now) for c in connections}
        yield _gauge("pouracquit_sync_last_success_timestamp_seconds",
                     "When the last successful sync pass started (any process).", ("connection",),
                     [({"connection": n}, f.last_success_at.timestamp()) for n, f in fresh.items()
                      if f.last_success_at])
        yield _gauge("pouracquit_sync_last_run_timestamp_seconds", "When the last sync pass started (any process).",
                     ("connection",), [({"connection": n}, s.last_run_at.timestamp())
                                       for n, s in sorted(states.items()) if s.last_run_at])
        yield _gauge("pouracquit_sync_last_success_age_seconds", "Seconds since the last successful sync started.",
                     ("connection",), [({"connection": n}, f.age_seconds) for n, f in fresh.items()
                                       if f.age_seconds is not None])
        yield _gauge("pouracquit_sync_stale",
                     "1 when an enabled connection had no successful sync for too long (/status: stale_after_seconds).",
                     ("connection",), [({"connection": n}, int(f.stale)) for n, f in fresh.items()])
        yield _gauge("pouracquit_sync_last_duration_seconds", "Duration of the last sync pass (any process).",
                     ("connection",),
                     [({"connection": n}, s.last_duration_s or 0.0) for n, s in sorted(states.items())])
        for extra in self.metrics.gauges:
            yield _gauge(extra.name, extra.documentation, extra.labels, extra.read(service))


def _gauge(name: str, documentation: str, labels: tuple[str, ...], samples: Samples) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric([values[label] for label in labels], value)
    return family
