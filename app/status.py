"""What the service knows about itself, for /status, /readyz, /metrics and
the ``status`` command: one place computes it, every front-end shows it.

Freshness: a connection is *stale* when its last successful sync is older
than ``STALE_INTERVALS`` of its intervals, give or take the passes' own
durations (or it never had one). Staleness is
reported (/status, metrics) for alerting; it never makes the service unready,
since a vendor being down must not take the webhooks out of service."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pouracquit.core.config import ConnectionSettings
from pouracquit.core.disconnections import disconnected
from pouracquit.core.dunning.send import dunning_counts
from pouracquit.core.service import Service
from pouracquit.core.survey import survey_counts
from pouracquit.state.tables import ConnectionState

from .served import Served

STALE_INTERVALS = 3
# what /status says of webhooks where this process does not take them
WEBHOOKS_ELSEWHERE = ("not served by `pouracquit admin`: vendors' webhooks reach `pouracquit run` only; "
                      "the fleet's scheduler syncs each connection on its interval")


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


@dataclass(frozen=True)
class Freshness:
    """How recent a connection's last successful sync is."""

    last_success_at: datetime | None
    age_seconds: float | None
    stale_after_seconds: float
    stale: bool


def freshness(conn: ConnectionSettings, state: ConnectionState | None, now: datetime) -> Freshness:
    """Stale: enabled, and the last successful pass started longer ago than
    STALE_INTERVALS intervals plus twice the last pass's duration (a pass may
    outlast its interval: the one that read the data and the one reading the
    next both count)."""
    last = state.last_success_at if state else None
    age = round((now - last).total_seconds(), 3) if last else None
    window = STALE_INTERVALS * conn.interval_seconds + 2 * ((state.last_duration_s or 0.0) if state else 0.0)
    return Freshness(last, age, window, conn.enabled and (age is None or age > window))


def connection_status(service: Service, now: datetime | None = None) -> dict[str, Any]:
    """Per connection: last run and success, freshness, cursor, receipts by
    status, and the pending, failed and quarantined ones with their reasons."""
    now = now or datetime.now(UTC)
    states = service.store.connection_states()
    counts = service.store.receipt_counts()
    stale = service.store.stale_leases(now)
    out: dict[str, Any] = {}
    reminders, answers = dunning_counts(service.store), survey_counts(service.store)
    for conn in service.settings.connections:
        state = states.get(conn.name)
        fresh = freshness(conn, state, now)
        by_status = {s: n for (c, s), n in counts.items() if c == conn.name}
        problems = [
            {"id": r.id, "source_id": r.source_id, "status": r.status, "step": r.step, "attempts": r.attempts,
             "next_attempt_at": _iso(r.next_attempt_at), "reason": r.last_error}
            for status in ("pending", "failed", "quarantined")
            for r in service.store.receipts(conn.name, status, limit=50)
            if status != "pending" or r.last_error
        ]
        out[conn.name] = {
            "enabled": conn.enabled,
            "source": conn.source.vendor,
            "ledger": conn.ledger.vendor,
            "interval_seconds": conn.interval_seconds,
            "last_run_at": _iso(state.last_run_at if state else None),
            "last_success_at": _iso(fresh.last_success_at),
            "last_success_age_seconds": fresh.age_seconds,
            "stale": fresh.stale,
            "stale_after_seconds": fresh.stale_after_seconds,
            "last_error": state.last_error if state else None,
            "last_duration_s": state.last_duration_s if state else None,
            "cursor": state.cursor if state else None,
            # a side whose vendor refused the token refresh, with what fixes it
            "disconnected": disconnected(service.store, conn.name),
            "receipts": by_status,
            # dunning reminders by status (sent, retry, failed, unknown...) and survey answers
            "dunning": reminders.get(conn.name, {}),
            "survey": answers.get(conn.name, {"answers": 0}),
            "problems": problems,
            # held by a worker that stopped renewing its lease (killed?): free again once the lease ran out
            "stale_leases": [
                {"id": r.id, "step": r.step, "owner": r.lease_owner, "lease_until": _iso(r.lease_until)}
                for r in stale if r.connection == conn.name
            ],
            "start_date": state.start_date.isoformat() if state and state.start_date else None,
            "ledger_alerts": [
                {"receipt_id": e.receipt_id, "at": _iso(e.at), **json.loads(e.data)}
                for e in service.store.events(kind="ledger_changed", connection=conn.name)
                if json.loads(e.data).get("destructive")
            ][-20:],
            # the buyers' e-mails by status (core/delivery), and those refused or skipped with the reason
            "emails": {s: n for (c, s), n in service.store.email_counts().items() if c == conn.name},
            "email_problems": [{"id": r.id, "source_id": r.source_id, "status": r.email_status, "to": r.email_to,
                                "reason": r.email_error} for r in service.store.email_problems(conn.name)],
            "quarantined_records": [
                {"source_id": q.source_id, "reason": q.reason, "last_seen": _iso(q.last_seen)}
                for q in service.store.quarantined(conn.name)
            ],
        }
    return out


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: dict[str, str]


def deployment_status(served: Served, now: datetime | None = None) -> dict[str, Any]:
    """/status of a deployment of many companies: per tenant, whether it is worked, its
    connections' freshness, its receipts by status; and the tenant files that cannot be
    used, with why. ``/status?tenant=NAME`` gives one company's whole ``connection_status``."""
    now = now or datetime.now(UTC)
    worked, problems, known = set(served.names()), served.problems(), served.known()

    def summary(name: str, service: Service) -> dict[str, Any]:
        enabled = name in worked
        states, counts = service.store.connection_states(), service.store.receipt_counts()
        connections = {}
        for conn in service.settings.connections:
            state, fresh = states.get(conn.name), freshness(conn, states.get(conn.name), now)
            connections[conn.name] = {
                "enabled": conn.enabled,
                "last_success_at": _iso(fresh.last_success_at),
                "last_success_age_seconds": fresh.age_seconds,
                "stale": enabled and fresh.stale,  # a company not worked is not late
                "stale_after_seconds": fresh.stale_after_seconds,
                "last_error": state.last_error if state else None,
                "receipts": {s: n for (c, s), n in counts.items() if c == conn.name},
            }
        receipts: dict[str, int] = {}
        for (_, status), n in counts.items():
            receipts[status] = receipts.get(status, 0) + n
        return {"state": "enabled" if enabled else "disabled", "enabled": enabled, "connections": connections,
                "receipts": receipts, "stale": sorted(n for n, c in connections.items() if c["stale"])}

    read = dict(served.each([n for n in known if n not in problems], summary))
    tenants = {name: read.get(name) or {"state": "unusable", "enabled": False,
                                        "problem": problems.get(name, f"tenant {name!r} cannot be read")}
               for name in known}
    out: dict[str, Any] = {"tenants": tenants, "problems": problems}
    if not served.works_receipts:
        out["webhooks"] = WEBHOOKS_ELSEWHERE
    return out


def readiness(service: Service | Served) -> Readiness:
    """Ready to serve: the state store answers and the service is not stopping.
    Vendors and sync freshness are left out on purpose (see the module's note)."""
    if service.stop.is_set():
        return Readiness(False, {"service": "stopping"})
    try:
        service.store.ping()
    except Exception as exc:  # noqa: BLE001 - any store failure means not ready
        return Readiness(False, {"store": f"state store unreachable: {type(exc).__name__}"})
    return Readiness(True, {})
