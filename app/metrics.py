"""The service's Prometheus metrics, through prometheus-client.

One ``Metrics`` (one CollectorRegistry) per admin server. Two kinds of series:

- what this process saw happen, kept in prometheus-client's counters and
  histograms and fed by the scheduled jobs (``observe_sync``, ``count_outcomes``,
  ``count_crash``): sync durations, runs, receipt outcomes, crashed jobs;
- what the state store says now, read at each scrape by a custom collector (the
  store is shared by every process, so these are the truth across them):
  receipts by status, quarantined records, disconnections, each connection's
  freshness, plus whatever gauges ``add_gauge`` registered.

Every series about a connection is labelled ``tenant`` (its company: "default"
for a one-company config) then ``connection``. Under ``pouracquit admin`` the
store's series cover every company worked, read through each one's scoped
store: series are tenants x connections (docs/operations.md).

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
from typing import TYPE_CHECKING

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

from .served import Served
from .status import freshness

if TYPE_CHECKING:
    from pouracquit.core.tenants import Tenants

log = structlog.get_logger("pouracquit.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST
# a pass takes from a second (nothing new) to many minutes (a first sync rendering thousands of PDFs)
SYNC_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
SIDES = ("source", "ledger")

Samples = Iterable[tuple[dict[str, str], float]]
Gauged = tuple[str, str, tuple[str, ...], Samples]  # one gauge of one company: name, help, labels, samples


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

    def __init__(self, source: Service | Tenants | Served) -> None:
        self.served = source if isinstance(source, Served) else Served(source)
        self.tenant = self.served.home  # the company of the jobs this process runs
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Info("pouracquit_build", "The running pouracquit's version.", registry=self.registry).info(
            {"version": _version()})
        self.sync_duration = Histogram(
            "pouracquit_sync_duration_seconds", "Duration of the sync passes this process ran.",
            ["tenant", "connection"], buckets=SYNC_BUCKETS, registry=self.registry)
        self.sync_runs = Counter(
            "pouracquit_sync_runs", "Sync passes this process ran, by result (ok, error, crashed).",
            ["tenant", "connection", "result"], registry=self.registry)
        self.receipt_outcomes = Counter(
            "pouracquit_receipt_outcomes", "Receipts this process worked on, by outcome of the attempt.",
            ["tenant", "connection", "outcome"], registry=self.registry)
        self.job_crashes = Counter(
            "pouracquit_job_crashes", "Scheduled jobs that ended on an unexpected exception (see the log).",
            ["tenant", "connection", "job"], registry=self.registry)
        if self.served.one is not None:  # every series of the jobs this process runs exists from the start
            for conn in self.served.one.connections():
                self.sync_duration.labels(tenant=self.tenant, connection=conn.name)
                for result in ("ok", "error", "crashed"):
                    self.sync_runs.labels(tenant=self.tenant, connection=conn.name, result=result)
                for job in ("sync", "drain"):
                    self.job_crashes.labels(tenant=self.tenant, connection=conn.name, job=job)
        self.gauges: list[StoreGauge] = []
        self.add_gauge("pouracquit_reconciliation_drift", "Drifts between the CRM, the receipts and the ledger "
                       "found by the last reconciliation (NaN when it could not read a side).", ("connection",),
                       drift_samples)
        self.registry.register(_StoreCollector(self))

    def add_gauge(self, name: str, documentation: str, labels: tuple[str, ...],
                  read: Callable[[Service], Samples]) -> None:
        """A gauge read from the store at each scrape, e.g. per-connection drift:
        ``metrics.add_gauge("pouracquit_reconciliation_drift", "...", ("connection",),
        lambda service: [({"connection": "main"}, 2.0)])``. ``read`` is called with each
        company's service; the ``tenant`` label is added to its samples."""
        self.gauges.append(StoreGauge(name, documentation, labels, read))

    def observe_sync(self, connection: str, seconds: float, result: str, tenant: str | None = None) -> None:
        """One pass ended: ``result`` is ok, error (it said why) or crashed."""
        tenant = tenant or self.tenant
        self.sync_duration.labels(tenant=tenant, connection=connection).observe(seconds)
        self.sync_runs.labels(tenant=tenant, connection=connection, result=result).inc()

    def count_outcomes(self, connection: str, outcomes: Iterable[tuple[str, int]], tenant: str | None = None) -> None:
        for outcome, n in outcomes:
            if n:
                self.receipt_outcomes.labels(tenant=tenant or self.tenant, connection=connection,
                                             outcome=outcome).inc(n)

    def count_crash(self, connection: str, job: str, tenant: str | None = None) -> None:
        self.job_crashes.labels(tenant=tenant or self.tenant, connection=connection, job=job).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


class _StoreCollector(Collector):
    """The series read at each scrape: the call meters' counts, then the state store's."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        served = self.metrics.served
        calls = CounterMetricFamily("pouracquit_api_calls", "Vendor API calls made by this process.",
                                    labels=("tenant", "vendor"))
        errors = CounterMetricFamily("pouracquit_api_errors", "Vendor API errors by vendor and error class.",
                                     labels=("tenant", "vendor", "error"))
        up = GaugeMetricFamily("pouracquit_state_store_up", "1 when the state store answered this scrape, else 0.")
        try:
            names = served.names()
            for name in names:
                if (service := served.service(name)) is None:
                    continue
                for vendor, n in sorted(service.meter.snapshot().items()):
                    calls.add_metric([name, vendor], n)
                for (vendor, error), n in sorted(service.meter.error_snapshot().items()):
                    errors.add_metric([name, vendor, error], n)
            families = self._tenants(served) + _families(served.each(names, self._read))
        except Exception as exc:  # noqa: BLE001 - the process metrics still go out; up says the rest is missing
            log.warning("metrics: state store not read", error=f"{type(exc).__name__}: {exc}")
            up.add_metric([], 0)
            yield from (calls, errors, up)
            return
        up.add_metric([], 1)
        yield from (calls, errors, up)
        yield from families

    def _tenants(self, served: Served) -> list[Metric]:
        """How many companies a deployment has by state, and which files are unusable."""
        if not served.many:
            return []
        problems, worked, known = served.problems(), set(served.names()), served.known()
        states = {"enabled": len(worked), "unusable": len(problems),
                  "disabled": len([n for n in known if n not in worked and n not in problems])}
        return [_gauge("pouracquit_tenants", "Companies of the deployment by state (enabled, disabled, unusable).",
                       ("state",), [({"state": s}, n) for s, n in states.items()]),
                _gauge("pouracquit_tenant_unusable", "1 for each company whose file cannot be used (/status says "
                       "why).", ("tenant",), [({"tenant": n}, 1) for n in sorted(problems)])]

    def _read(self, tenant: str, service: Service) -> list[Gauged]:
        """One company's gauges, read through its own store."""
        store, connections = service.store, service.settings.connections
        now = datetime.now(UTC)
        states = store.connection_states()
        fresh = {c.name: freshness(c, states.get(c.name), now) for c in connections}
        gauged = [
            ("pouracquit_receipts", "Receipts by connection and status.", ("connection", "status"),
             [({"connection": c, "status": s}, n) for (c, s), n in sorted(store.receipt_counts().items())]),
            ("pouracquit_quarantined_records", "CRM records refused by the mapping.", ("connection",),
             [({"connection": c.name}, len(store.quarantined(c.name))) for c in connections]),
            ("pouracquit_connection_disconnected",
             "1 while the vendor of this side refuses the token refresh (run pouracquit connect), else 0.",
             ("connection", "side"), [({"connection": c.name, "side": side}, int(side in lost))
                                      for c in connections for lost in (disconnected(store, c.name),)
                                      for side in SIDES]),
            ("pouracquit_sync_last_success_timestamp_seconds",
             "When the last successful sync pass started (any process).", ("connection",),
             [({"connection": n}, f.last_success_at.timestamp()) for n, f in fresh.items() if f.last_success_at]),
            ("pouracquit_sync_last_run_timestamp_seconds", "When the last sync pass started (any process).",
             ("connection",),
             [({"connection": n}, s.last_run_at.timestamp()) for n, s in sorted(states.items()) if s.last_run_at]),
            ("pouracquit_sync_last_success_age_seconds", "Seconds since the last successful sync started.",
             ("connection",),
             [({"connection": n}, f.age_seconds) for n, f in fresh.items() if f.age_seconds is not None]),
            ("pouracquit_sync_stale",
             "1 when an enabled connection had no successful sync for too long (/status: stale_after_seconds).",
             ("connection",), [({"connection": n}, int(f.stale)) for n, f in fresh.items()]),
            ("pouracquit_sync_last_duration_seconds", "Duration of the last sync pass (any process).",
             ("connection",), [({"connection": n}, s.last_duration_s or 0.0) for n, s in sorted(states.items())]),
        ]
        return gauged + [(g.name, g.documentation, g.labels, list(g.read(service))) for g in self.metrics.gauges]


def _families(read: list[tuple[str, list[Gauged]]]) -> list[Metric]:
    """Each gauge once, with every company's samples under its ``tenant`` label."""
    families: dict[str, GaugeMetricFamily] = {}
    for tenant, gauged in read:
        for name, documentation, labels, samples in gauged:
            family = families.get(name)
            if family is None:
                family = families[name] = GaugeMetricFamily(name, documentation, labels=("tenant", *labels))
            for values, value in samples:
                family.add_metric([tenant, *(values[label] for label in labels)], value)
    return list(families.values())


def _gauge(name: str, documentation: str, labels: tuple[str, ...], samples: Samples) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric([values[label] for label in labels], value)
    return family
