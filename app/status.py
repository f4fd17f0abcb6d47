"""What the service knows about itself, for /status, /readyz, /metrics and
the ``status`` command: one place computes it, every front-end shows it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pouracquit.core.disconnections import disconnected
from pouracquit.core.dunning.send import dunning_counts
from pouracquit.core.service import Service
from pouracquit.core.survey import survey_counts


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def connection_status(service: Service) -> dict[str, Any]:
    """Per connection: last run and success, cursor, receipts by status, and
    the pending, failed and quarantined ones with their reasons."""
    states = service.store.connection_states()
    counts = service.store.receipt_counts()
    stale = service.store.stale_leases(datetime.now(UTC))
    out: dict[str, Any] = {}
    reminders, answers = dunning_counts(service.store), survey_counts(service.store)
    for conn in service.settings.connections:
        state = states.get(conn.name)
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
            "last_success_at": _iso(state.last_success_at if state else None),
            "last_error": state.last_error if state else None,
            "last_duration_s": state.last_duration_s if state else None,
            "cursor": state.cursor if state else None,
            # a side whose vendor refused the token refresh, with what fixes it
            "disconnected": disconnected(service.store, conn.name),
            "receipts": by_status,
            # dunning reminders by status (sent, retry, failed, skipped, unknown...) and survey answers
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


def readiness(service: Service, now: datetime | None = None) -> Readiness:
    """Ready when the store answers and every enabled connection synced
    successfully within three of its intervals."""
    now = now or datetime.now(UTC)
    try:
        service.store.ping()
    except Exception as exc:  # noqa: BLE001 - any store failure means not ready
        return Readiness(False, {"store": f"state store unreachable: {type(exc).__name__}"})
    states = service.store.connection_states()
    reasons: dict[str, str] = {}
    for conn in service.connections():
        state = states.get(conn.name)
        window = timedelta(seconds=3 * conn.interval_seconds)
        if state is None or state.last_success_at is None:
            reasons[conn.name] = "no successful sync yet" + (f" (last error: {state.last_error})" if state and
                                                                state.last_error else "")
        elif now - state.last_success_at > window:
            reasons[conn.name] = (f"last successful sync {state.last_success_at.isoformat()} is older than "
                                  f"3 intervals ({int(window.total_seconds())} s)"
                                  + (f"; last error: {state.last_error}" if state.last_error else ""))
    return Readiness(not reasons, reasons)


def metrics_text(service: Service, now: datetime | None = None) -> str:
    """Prometheus exposition text."""
    now = now or datetime.now(UTC)
    lines: list[str] = []

    def family(name: str, kind: str, doc: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {doc}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")

    counts = service.store.receipt_counts()
    family("pouracquit_receipts", "gauge", "Receipts by connection and status.",
           [({"connection": c, "status": s}, n) for (c, s), n in sorted(counts.items())])
    family("pouracquit_api_calls_total", "counter", "Vendor API calls made by this process.",
           [({"vendor": v}, n) for v, n in sorted(service.meter.snapshot().items())])
    errors = service.meter.error_snapshot()
    family("pouracquit_api_errors_total", "counter", "Vendor API errors by vendor and error class.",
           [({"vendor": v, "error": e}, n) for (v, e), n in sorted(errors.items())])
    states = service.store.connection_states()
    family("pouracquit_sync_duration_seconds", "gauge", "Duration of the last sync pass.",
           [({"connection": n}, s.last_duration_s or 0.0) for n, s in sorted(states.items())])
    family("pouracquit_cursor_lag_seconds", "gauge", "Seconds since the cursor last advanced successfully.",
           [({"connection": n}, round((now - s.last_success_at).total_seconds(), 3))
            for n, s in sorted(states.items()) if s.last_success_at])
    family("pouracquit_quarantined_records", "gauge", "CRM records refused by the mapping.",
           [({"connection": c.name}, len(service.store.quarantined(c.name))) for c in service.settings.connections])
    family("pouracquit_connection_disconnected", "gauge",
           "1 while the vendor of this side refuses the token refresh (run pouracquit connect), else 0.",
           [({"connection": c.name, "side": side}, int(side in lost))
            for c in service.settings.connections
            for lost in (disconnected(service.store, c.name),)
            for side in ("source", "ledger")])
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
