"""A deterministic, vendor-neutral set of French demo invoices.

Every CRM sandbox (HubSpot, Salesforce, Zoho) turns the same plain dicts
into its own objects, so a demo or a test sees the same business story
whatever the vendor: mostly paid invoices, some partially paid, open,
voided or draft, companies with valid SIREN and intra-community VAT numbers
(check digits from python-stdnum), private persons, accented names, all VAT
rates France uses and one exemption, and a few invoices in US dollars, some
with the CRM's own exchange rate and some without.

Totals follow ``core.model.Invoice``: each line net is rounded to the cent,
VAT is computed once per rate on the summed bases (half up), so the paid
amount of a paid invoice equals the invoice's VAT-inclusive total exactly.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stdnum import luhn
from stdnum.fr import siren as stdnum_siren

from pouracquit.common.rates import ecb_rate

CENT = Decimal("0.01")

# (name, legal kind, email domain, line1, postal code, city)
_COMPANIES: tuple[tuple[str, str, str, str, str], ...] = (
    ("Société Générale d'Équipements Lefèvre & Fils", "lefevre-fils.fr", "12 rue de la Forge", "69007", "Lyon"),
    ("Boulangerie Pâtissière Dubœuf SARL", "duboeuf-patisserie.fr", "3 place du Marché", "21000", "Dijon"),
    ("Atelier Menuiserie Gauthier SAS", "menuiserie-gauthier.fr", "27 avenue Jean Jaurès", "44000", "Nantes"),
    ("Cabinet Conseil Béranger", "beranger-conseil.fr", "8 boulevard Haussmann", "75009", "Paris"),
    ("Transports Rouvière Frères", "rouviere-transports.fr", "ZI des Glaises, lot 4", "13015", "Marseille"),
    ("Clinique Vétérinaire des Côteaux", "vet-coteaux.fr", "41 chemin des Vignes", "33000", "Bordeaux"),
    ("Imprimerie Castellane SA", "imprimerie-castellane.fr", "5 rue Lamartine", "31000", "Toulouse"),
    ("Domaine Viticole Ménétrier", "domaine-menetrier.fr", "Lieu-dit Les Crêts", "51100", "Reims"),
    ("Librairie L'Écume des Pages", "ecume-des-pages.fr", "19 rue Sainte-Catherine", "59000", "Lille"),
    ("Hôtel-Restaurant Le Relais d'Aubrac", "relais-aubrac.fr", "Route de Laguiole", "12210", "Laguiole"),
    ("Garage Pécresse Automobiles", "garage-pecresse.fr", "112 route de Strasbourg", "67000", "Strasbourg"),
    ("Bureau d'Études Thermiques Aïtken", "bet-aitken.fr", "2 allée des Érables", "35000", "Rennes"),
)

# (first name, last name, line1, postal code, city)
_PERSONS: tuple[tuple[str, str, str, str, str], ...] = (
    ("Zoë", "Bréhaut", "6 impasse des Mésanges", "29200", "Brest"),
    ("Hélène", "Nguyễn", "31 rue Victor Hugo", "38000", "Grenoble"),
    ("François", "Lemaître", "14 quai de la Loire", "37000", "Tours"),
    ("Maëlys", "Ó Briain", "9 rue du Château", "06000", "Nice"),
    ("Jérôme", "Caron", "52 avenue de la République", "63000", "Clermont-Ferrand"),
    ("Ines", "Saïdi", "18 rue des Tanneurs", "34000", "Montpellier"),
)

# (name, sku, kind, unit price, VAT rate, exemption wording for 0 %)
_CATALOGUE: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("Audit énergétique du bâtiment", "SRV-AUD-01", "services", "1450.00", "20", ""),
    ("Journée de conseil", "SRV-CNS-J", "services", "850.00", "20", ""),
    ("Heure de maintenance", "SRV-MNT-H", "services", "68.50", "20", ""),
    ("Licence logiciel annuelle", "SW-LIC-12", "services", "1199.00", "20", ""),
    ("Poste de travail reconditionné", "HW-PC-RC", "goods", "489.90", "20", ""),
    ("Écran 27 pouces", "HW-SCR-27", "goods", "229.99", "20", ""),
    ("Travaux de rénovation énergétique", "SRV-RNV-01", "services", "3200.00", "5.5", ""),
    ("Pose de fenêtres isolantes", "SRV-FEN-01", "services", "640.00", "5.5", ""),
    ("Travaux d'entretien logement", "SRV-ENT-01", "services", "375.00", "10", ""),
    ("Repas d'affaires (menu)", "FD-MENU-01", "goods", "42.00", "10", ""),
    ("Transport de voyageurs", "SRV-TRP-01", "services", "95.00", "10", ""),
    ("Livres professionnels", "BK-PRO-01", "goods", "38.50", "5.5", ""),
    ("Panier de produits alimentaires", "FD-PAN-01", "goods", "27.80", "5.5", ""),
    ("Abonnement presse quotidienne", "PR-ABO-12", "goods", "189.00", "2.1", ""),
    ("Médicament vétérinaire remboursable", "MD-VET-01", "goods", "24.35", "2.1", ""),
    (
        "Formation professionnelle continue",
        "SRV-FOR-01",
        "services",
        "980.00",
        "0",
        "Exonération de TVA, article 261-4-4° a du CGI",
    ),
)

_METHODS = ("transfer", "transfer", "transfer", "card", "card", "check", "direct_debit", "cash")
_REF_PREFIX = {"transfer": "VIR", "card": "CB", "check": "CHQ", "direct_debit": "PRLV", "cash": "ESP"}
_DEALS = ("Renouvellement contrat annuel", "Équipement nouveaux bureaux", "Projet rénovation 2026",
          "Accompagnement stratégique", "Formation équipe commerciale")

# Share of each status in a generated set; "paid" is the majority as in a real CRM.
_STATUS_WEIGHTS = (("paid", 60), ("partially_paid", 12), ("open", 12), ("voided", 8), ("draft", 8))


def luhn_ok(digits: str) -> bool:
    """True when ``digits`` passes the Luhn check (SIREN and SIRET use it)."""
    return luhn.is_valid(digits)


def make_siren(rng: random.Random) -> str:
    """A random 9-digit SIREN whose last digit is its Luhn key."""
    body = f"{rng.randint(1, 99_999_999):08d}"
    return body + luhn.calc_check_digit(body)


def vat_number(siren: str) -> str:
    """The French intra-community VAT number of a SIREN: FR + key + SIREN."""
    return "FR" + stdnum_siren.to_tva(siren)


def _usd_per_eur(day: date) -> str:
    """The rate a CRM admin would enter for the month: the ECB's of its first day, 4 decimals."""
    rate = ecb_rate("USD", day.replace(day=1))
    return f"{Decimal(1) / rate.eur_per_unit:.4f}"


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def invoice_total(lines: list[dict[str, Any]]) -> Decimal:
    """VAT-inclusive total computed exactly as ``core.model.Invoice`` does."""
    bases: dict[Decimal, Decimal] = {}
    for line in lines:
        net = _cents(Decimal(line["quantity"]) * Decimal(line["unit_price"]))
        rate = Decimal(line["vat_rate"])
        bases[rate] = bases.get(rate, Decimal("0")) + net
    net_total = sum(bases.values(), Decimal("0"))
    vat_total = sum((_cents(base * rate / 100) for rate, base in bases.items()), Decimal("0"))
    return net_total + vat_total


def _customers(rng: random.Random) -> list[dict[str, Any]]:
    customers: list[dict[str, Any]] = []
    for name, domain, line1, postal, city in _COMPANIES:
        siren = make_siren(rng)
        customers.append({
            "kind": "company", "name": name, "email": f"comptabilite@{domain}",
            "siren": siren, "vat_number": vat_number(siren),
            "address": {"line1": line1, "postal_code": postal, "city": city, "country": "FR"},
        })
    for first, last, line1, postal, city in _PERSONS:
        local = f"{first}.{last}".lower().encode("ascii", "ignore").decode().replace(" ", "")
        customers.append({
            "kind": "person", "name": f"{first} {last}", "email": f"{local}@exemple.fr",
            "siren": "", "vat_number": "",
            "address": {"line1": line1, "postal_code": postal, "city": city, "country": "FR"},
        })
    return customers


def _lines(rng: random.Random) -> list[dict[str, Any]]:
    picks = rng.sample(_CATALOGUE, rng.randint(1, 6))
    lines = []
    for name, sku, kind, price, rate, exemption in picks:
        if sku.endswith("-H"):
            quantity = str(Decimal(rng.randint(2, 30)) / 2)  # hours, in halves
        else:
            quantity = str(rng.choice((1, 1, 1, 2, 3, 5, 10)))
        line = {"name": name, "sku": sku, "quantity": quantity, "unit_price": price,
                "vat_rate": rate, "kind": kind}
        if exemption:
            line["vat_exemption"] = exemption
        lines.append(line)
    return lines


def _payment(rng: random.Random, amount: Decimal, day: date, method: str) -> dict[str, str]:
    reference = f"{_REF_PREFIX[method]}-{day:%Y%m%d}-{rng.randint(1000, 9999)}"
    return {"amount": f"{amount:.2f}", "date": day.isoformat(), "method": method, "reference": reference}


def _statuses(rng: random.Random, count: int) -> list[str]:
    weight_sum = sum(w for _, w in _STATUS_WEIGHTS)
    statuses: list[str] = []
    for status, weight in _STATUS_WEIGHTS:
        statuses += [status] * max(1, round(count * weight / weight_sum))
    statuses = statuses[:count] if len(statuses) >= count else statuses + ["paid"] * (count - len(statuses))
    rng.shuffle(statuses)
    return statuses


def demo_invoices(count: int = 60, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` French demo invoices as plain dicts, identical for one seed.

    Invoices are numbered ``F-2026-NNNN`` in issue-date order, except drafts
    and about one in twelve of the others, which the pipeline must number.
    """
    rng = random.Random(seed)
    customers = _customers(rng)
    drafts: list[dict[str, Any]] = []
    statuses = _statuses(rng, count)
    start = date(2026, 1, 5)
    invoices = []
    for index, status in enumerate(statuses):
        issue = start + timedelta(days=rng.randint(0, 175))
        lines = _lines(rng)
        total = invoice_total(lines)
        payments: list[dict[str, str]] = []
        method = rng.choice(_METHODS)
        first_day = issue + timedelta(days=rng.randint(0, 25))
        if status == "paid" and rng.random() < 0.25 and total >= Decimal("10"):
            first = _cents(total * Decimal(rng.choice(("0.3", "0.4", "0.5"))))
            payments = [_payment(rng, first, first_day, method),
                        _payment(rng, total - first, first_day + timedelta(days=rng.randint(5, 30)), method)]
        elif status == "paid":
            payments = [_payment(rng, total, first_day, method)]
        elif status == "partially_paid":
            payments = [_payment(rng, _cents(total * Decimal(rng.choice(("0.3", "0.5")))), first_day, method)]
        invoice = {
            "id": f"demo-{seed}-{index + 1:04d}",
            "number": "",
            "currency": "EUR",
            "exchange_rate": "",  # units of currency for one euro, as the CRM's admin entered it
            "issue_date": issue.isoformat(),
            "supply_date": (issue - timedelta(days=rng.randint(0, 10))).isoformat(),
            "due_date": (issue + timedelta(days=30)).isoformat(),
            "status": status,
            "customer": rng.choice(customers),
            "lines": lines,
            "payments": payments,
            "deal": rng.choice(_DEALS) if rng.random() < 0.6 else "",
        }
        (drafts if status == "draft" else invoices).append(invoice)
    # Chronological numbering, as French law requires; a few left for the pipeline.
    invoices.sort(key=lambda inv: (inv["issue_date"], inv["id"]))
    number = 0
    for inv in invoices:
        if rng.random() < 1 / 12:
            continue
        number += 1
        inv["number"] = f"F-2026-{number:04d}"
    merged = invoices + drafts
    merged.sort(key=lambda inv: inv["id"])
    # One invoice in twelve is billed in US dollars (same figures, VAT still French), every
    # other one of them with the CRM's monthly rate, the others left to the ECB rate of the day.
    for index, inv in enumerate(merged):
        if index % 12 == 5:
            inv["currency"] = "USD"
            inv["exchange_rate"] = _usd_per_eur(date.fromisoformat(inv["issue_date"])) if index % 24 == 5 else ""
    # Guarantee the named customers appear whatever the seed: the demo shows them.
    merged[0]["customer"] = customers[0]
    if len(merged) > 1:
        merged[1]["customer"] = customers[len(_COMPANIES)]
    return merged
