"""Many companies on the sandboxes: one source and one ledger emulator per tenant.

A tenant of a deployment is a client company, and at the vendor each company is
an account of its own: its own invoices, its own rate budget (HubSpot counts a
portal's calls, QuickBooks a realm's, Xero an organisation's). So every tenant
gets its own emulator pair, seeded with its own demo data (a seed of its own)
and enforcing the vendors' limits on its own, time-scaled like any sandbox.
Pairs rotate over the six CRM → ledger pairs unless named.

One process holds them all: a hundred emulators start in under a second, take
about 130 MB and 4 % of a core idle (each server's thread polls twice a second)
and answer a call in about a millisecond of CPU. In the fleet's 2,000-receipt
chaos run the process holding them (and polling the store) used about 60 s of
CPU in 15 minutes, a fifteenth of a core, beside the workers' ~0.5 s per
receipt: they do not bound the fleet, and several processes would only add the
plumbing to read their state.

``launch_tenants`` returns the running emulators and the deployment's config
files as data (``TenantSandboxes.files``); ``TenantSandboxes.write(dumps)``
writes them with the TOML writer it is given (app/toml_out.py: the floors keep
the sandboxes below the app). The readers at the end (``paid_invoices``,
``crm_attachments``, ``ledger_bookings``) count what each vendor's emulator
holds, from its ``/_sandbox/state`` document, for the fleet's chaos run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stdnum import luhn

from .demo_data import demo_invoices, vat_number
from .launch import DEMO_SELLER, Launched, emulator, state_key
from .server import Sandbox

SOURCES = ("hubspot", "salesforce", "zoho")
LEDGERS = ("quickbooks", "xero")
PAIRS: tuple[tuple[str, str], ...] = tuple((s, led) for s in SOURCES for led in LEDGERS)
# what a tenant's connection is called in every company file
CONNECTION = "sales"
CONFIG_NAME = "pouracquit.toml"


def invoices_for_paid(paid: int, seed: int = 7) -> int:
    """The smallest demo set (``demo_invoices(count, seed)``) with exactly ``paid`` paid invoices.

    The share of each status is fixed by the count alone (demo_data._statuses), so a
    tenant's paid total is chosen through its invoice count."""
    if paid < 1:
        raise ValueError(f"a tenant needs at least one paid invoice, not {paid}")
    count = max(1, int(paid / 0.6) - 3)
    while True:
        found = sum(1 for inv in demo_invoices(count, seed) if inv["status"] == "paid")
        if found == paid:
            return count
        if found > paid:  # the count is monotone in paid invoices; every total is reachable from 1 on
            raise ValueError(f"no demo set has exactly {paid} paid invoices")
        count += 1


def tenant_seller(index: int, seed: int) -> dict[str, Any]:
    """A company of its own: the demo seller's letterhead with a SIREN, SIRET and VAT number of its own."""
    body = f"8{seed % 100:02d}{index + 1:05d}"  # distinct for every tenant of a launch
    siren = body + luhn.calc_check_digit(body)
    establishment = siren + "0001"
    return {**DEMO_SELLER, "name": f"Client {index + 1:03d} SAS", "siren": siren,
            "siret": establishment + luhn.calc_check_digit(establishment), "vat_number": vat_number(siren),
            "email": f"facturation@client-{index + 1:03d}.example"}


@dataclass(frozen=True)
class TokenUse:
    """A refresh token presented to a ledger emulator's token endpoint."""

    at: float  # time.time()
    token: str  # its first characters
    granted: bool


def watch_refreshes(box: Sandbox) -> list[TokenUse]:
    """Record every refresh-token exchange ``box`` answers: QuickBooks and Xero rotate the token at
    each refresh (the old one is refused after it), so two processes refreshing from one stored
    token, or one killed before storing the new one, show here as a token granted then refused."""
    seen: list[TokenUse] = []
    issuer = getattr(box, "issuer", None)
    if issuer is None:
        return seen
    refresh = issuer.refresh

    def recorded(refresh_token: str, client_id: str) -> dict[str, Any] | None:
        pair = refresh(refresh_token, client_id)
        seen.append(TokenUse(time.time(), refresh_token[:6], pair is not None))
        return pair

    issuer.refresh = recorded
    return seen


@dataclass
class TenantBoxes:
    """One company's emulators and what was seeded in them."""

    name: str
    launched: Launched
    seed: int
    invoices: int
    paid: int
    refreshes: list[TokenUse] = field(default_factory=list)  # at its ledger's token endpoint

    @property
    def source(self) -> str:
        return self.launched.source.vendor

    @property
    def ledger(self) -> str:
        return self.launched.ledger.vendor

    def states(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Both emulators' state documents (the same as ``GET /_sandbox/state``)."""
        return self.launched.source.dump_state(), self.launched.ledger.dump_state()


@dataclass
class TenantSandboxes:
    """Running emulators of a deployment's tenants, and its config files as data."""

    config: Path  # the deployment's file; the tenants' are in ``tenants/`` beside it
    tenants: list[TenantBoxes]
    files: dict[Path, dict[str, Any]] = field(default_factory=dict)

    @property
    def paid(self) -> int:
        return sum(t.paid for t in self.tenants)

    def write(self, dumps: Callable[[Mapping[str, Any]], str]) -> Path:
        """Write the deployment file and the tenant files (mode 600: they name secrets); returns the first."""
        for path, data in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(dumps(data), encoding="utf-8")
        return self.config

    def stop(self) -> None:
        for tenant in self.tenants:
            tenant.launched.stop()


def _paid_shares(count: int, paid_total: int) -> list[int]:
    if paid_total < count:
        raise ValueError(f"{paid_total} paid invoices cannot give each of {count} tenants one")
    base, extra = divmod(paid_total, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


def launch_tenants(count: int, config_dir: Path, *, invoices_per_tenant: int = 60, paid_total: int | None = None,
                   pairs: Sequence[tuple[str, str]] | None = None, time_factor: float = 0.05, seed: int = 7,
                   store_url: str, broker: str | None = None, redis: str | None = None, queue: str | None = None,
                   prefix: str = "client", interval_seconds: float = 60.0, pipeline: Mapping[str, Any] | None = None,
                   fleet_settings: Mapping[str, Any] | None = None, config_name: str = CONFIG_NAME) -> TenantSandboxes:
    """Start and seed one emulator pair per tenant and describe the deployment that uses them.

    ``paid_total`` (when given) spreads that many paid invoices over the tenants, as even as
    it divides, instead of ``invoices_per_tenant`` invoices each (60 % of them paid). Secrets go
    under ``config_dir/secrets/<tenant>``; ``files`` holds ``config_dir/<config_name>`` and
    ``config_dir/tenants/<tenant>.toml``. ``broker``, ``redis`` and ``queue`` left None keep
    the [fleet] defaults; ``pipeline`` and ``fleet_settings`` add keys to [pipeline] and [fleet].
    """
    if count < 1:
        raise ValueError(f"at least one tenant, not {count}")
    config_dir = config_dir.resolve()
    chosen = list(pairs or PAIRS)
    shares = _paid_shares(count, paid_total) if paid_total is not None else None
    width = max(3, len(str(count)))
    fleet = TenantSandboxes(config=config_dir / config_name, tenants=[])
    try:
        for index in range(count):
            name = f"{prefix}-{index + 1:0{width}d}"
            source, ledger = chosen[index % len(chosen)]
            tenant_seed = seed * 1000 + index
            invoices = invoices_for_paid(shares[index], tenant_seed) if shares else invoices_per_tenant
            launched = _launch_pair(source, ledger, config_dir / "secrets" / name, invoices, tenant_seed,
                                    time_factor, interval_seconds)
            paid = sum(1 for inv in demo_invoices(invoices, tenant_seed) if inv["status"] == "paid")
            fleet.tenants.append(TenantBoxes(name, launched, tenant_seed, invoices, paid,
                                             watch_refreshes(launched.ledger)))
            fleet.files[config_dir / "tenants" / f"{name}.toml"] = {
                "seller": tenant_seller(index, seed), "connections": [launched.connection]}
    except BaseException:
        fleet.stop()
        raise
    fleet_keys = {k: v for k, v in (("broker", broker), ("redis", redis), ("queue", queue)) if v is not None}
    fleet_keys.update(fleet_settings or {})
    fleet.files[fleet.config] = {
        "data_dir": str(config_dir / "data"),
        "time_factor": time_factor,
        "store": {"url": store_url, "encryption_key": state_key(config_dir / "secrets")},
        "log": {"format": "json"},
        "tenants": {"dir": str(config_dir / "tenants")},
        "fleet": fleet_keys,
        # a short lease: a killed worker's receipts are taken up again within seconds; vendor
        # retries short because the windows are scaled; attempts enough for a run of kills
        "pipeline": {"vendor_retry_attempts": 6, "vendor_backoff_seconds": 0.05, "backoff_seconds": 0.5,
                     "backoff_max_seconds": 5.0, "max_attempts": 40, "lease_seconds": 6.0, **(pipeline or {})},
        # rendered in each worker's own process: a pool per company per worker would be
        # 2 processes x tenants x workers of WeasyPrint (core/service.py builds one per Service)
        "document": {"render_processes": 0},
    }
    return fleet


def _launch_pair(source: str, ledger: str, secrets: Path, invoices: int, seed: int, time_factor: float,
                 interval_seconds: float) -> Launched:
    boxes = []
    try:
        for vendor, role in ((source, "source"), (ledger, "ledger")):
            emu = emulator(vendor, role)
            box = emu.make(time_factor=time_factor).start()
            boxes.append(box)
            spec = emu.demo_seed(invoices, seed)
            if spec:
                box.seed(spec)
    except BaseException:
        for box in boxes:
            box.stop()
        raise
    connection = {
        "name": CONNECTION,
        "interval_seconds": interval_seconds,
        "jitter_seconds": min(5.0, interval_seconds / 4),
        # the demo history is paid from January 2026 on (sandbox/launch.py)
        "start_date": "2026-01-01",
        "source": emulator(source, "source").settings(boxes[0], secrets),
        "ledger": emulator(ledger, "ledger").settings(boxes[1], secrets),
    }
    return Launched(source=boxes[0], ledger=boxes[1], connection=connection)


# -- what each vendor's emulator holds (its /_sandbox/state document) -------------------


def paid_invoices(vendor: str, state: Mapping[str, Any]) -> set[str]:
    """The CRM's ids of its paid invoices."""
    if vendor == "hubspot":
        return {i["id"] for i in state["invoices"] if i["properties"]["hs_invoice_status"] == "paid"}
    if vendor == "salesforce":
        return {i["Id"] for i in state["Invoice__c"] if i["Status__c"] == "Paid"}
    if vendor == "zoho":
        return {i["id"] for i in state["Invoices"] if i["Status"] == "Paid"}
    raise ValueError(f"no CRM emulator {vendor!r}")


def crm_attachments(vendor: str, state: Mapping[str, Any]) -> tuple[Counter[str], int]:
    """Files attached per CRM invoice id, and files uploaded but attached to nothing."""
    if vendor == "hubspot":
        live = {f["id"] for f in state["files"] if not f.get("archived")}
        per: Counter[str] = Counter()
        linked: set[str] = set()
        for note in state["notes"]:
            files = [f for f in (note["properties"].get("hs_attachment_ids") or "").split(";") if f]
            linked.update(files)
            for ref in note.get("associations", {}).get("invoices", []):
                per[ref] += len(files)
        return per, len(live - linked)
    if vendor == "salesforce":
        per = Counter(link["LinkedEntityId"] for link in state["ContentDocumentLink"])
        documents = {d["Id"] for d in state["ContentDocument"]}
        return per, len(documents - {link["ContentDocumentId"] for link in state["ContentDocumentLink"]})
    if vendor == "zoho":
        return Counter({ref: len(items) for ref, items in state["attachments"].items()}), 0
    raise ValueError(f"no CRM emulator {vendor!r}")


def ledger_bookings(vendor: str, state: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Each document booked in the ledger: its number and how many files are attached to it."""
    if vendor == "quickbooks":
        attached: Counter[tuple[str, str]] = Counter(
            (link["EntityRef"]["type"], link["EntityRef"]["value"])
            for att in state["Attachables"] for link in att.get("AttachableRef", []) if "EntityRef" in link)
        return [(r.get("DocNumber", ""), attached[(kind, r["Id"])])
                for kind in ("SalesReceipt", "Invoice") for r in state[f"{kind}s"]]
    if vendor == "xero":
        return [(i["InvoiceNumber"], len(i["Attachments"])) for i in state["Invoices"]
                if i.get("Type", "ACCREC") == "ACCREC"]
    raise ValueError(f"no ledger emulator {vendor!r}")
