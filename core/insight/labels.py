"""The words of the HTML reports, in French and English (the admin page's two languages).

Column ids, segment and drift-kind names stay as the CSV and JSON carry them; what a
person reads beside them (headings, explanations, rules, meanings) is translated here.
The drift lines themselves (what, fix) are the reconciliation's own, in English.
"""

from __future__ import annotations

from typing import Literal

from .payments import LATE_SHARE, SEGMENT_RULES
from .reconcile import KINDS

Language = Literal["fr", "en"]

_LATE = f"{LATE_SHARE:.0%}".replace("%", " %")
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "payments": "Payments", "to": "to", "segments": "Segments", "left_out": "Left out",
        "note": "Figures per currency, never converted. Days to pay: from the invoice date to the day of the "
                "last payment (Europe/Paris). An open amount is aged at {end} by days past its due date (30 days "
                "after the invoice when the CRM has none). DSO: open amount at {end} ÷ amount billed in the "
                "period × {days} days.",
        "reconcile": "Reconciliation CRM ↔ ledger", "not_reconciled": "Not reconciled",
        "in_step": "In step: {receipts} receipts, {bookings} ledger documents.",
        "drifting": "{count} drift(s) over {receipts} receipts and {bookings} ledger documents.",
        "kind": "kind", "invoice": "invoice", "ledger": "ledger", "what": "what", "fix": "fix",
    },
    "fr": {
        "payments": "Paiements", "to": "au", "segments": "Segments", "left_out": "Non lus",
        "note": "Montants par devise, jamais convertis. Délai de paiement : de la date de facture au jour du "
                "dernier paiement (Europe/Paris). Un montant ouvert est classé au {end} selon ses jours de retard "
                "sur l'échéance (30 jours après la facture quand le CRM n'en donne pas). DSO : montant ouvert au "
                "{end} ÷ montant facturé sur la période × {days} jours.",
        "reconcile": "Rapprochement CRM ↔ comptabilité", "not_reconciled": "Rapprochement impossible",
        "in_step": "En accord : {receipts} reçus, {bookings} pièces comptables.",
        "drifting": "{count} écart(s) sur {receipts} reçus et {bookings} pièces comptables.",
        "kind": "type", "invoice": "facture", "ledger": "comptabilité", "what": "constat", "fix": "correction",
    },
}
RULES: dict[str, dict[str, str]] = {
    "en": SEGMENT_RULES,
    "fr": {
        "at_risk": "risque d'impayé : un montant a plus de 60 jours de retard sur son échéance",
        "late": f"pas à risque, et plus de {_LATE} des factures payées l'ont été après l'échéance, ou un montant "
                "est en retard",
        "prompt": "ni l'un ni l'autre",
    },
}
MEANINGS: dict[str, dict[str, str]] = {
    "en": KINDS,
    "fr": {
        "paid_not_booked": "payée dans le CRM, aucune pièce en comptabilité",
        "booked_not_attached": "comptabilisée, sans reçu sur la fiche du CRM",
        "amount_differs": "montants différents d'au moins un centime",
        "paid_in_ledger_open_in_crm": "payée en comptabilité, ouverte dans le CRM",
        "deleted_in_ledger": "pièce supprimée en comptabilité",
        "voided_in_ledger": "pièce annulée en comptabilité",
    },
}
_COLUMNS_FR = {
    "customer": "client", "currency": "devise", "segment": "segment", "invoices": "factures",
    "billed": "facturé", "paid_invoices": "payées", "days_to_pay_mean": "délai moyen (j)",
    "days_to_pay_median": "délai médian (j)", "days_to_pay_p90": "délai p90 (j)",
    "share_paid_late": "part payée en retard", "days_late_mean": "retard moyen (j)", "open_amount": "ouvert",
    "ageing_not_due": "non échu", "ageing_1_30": "1–30 j", "ageing_31_60": "31–60 j", "ageing_61_90": "61–90 j",
    "ageing_over_90": "> 90 j", "dso": "DSO (j)", "survey_answers": "réponses enquête",
    "survey_mean": "note moyenne",
}


def column(name: str, language: Language) -> str:
    """A column's header: its CSV name in English, its French label in French."""
    return _COLUMNS_FR.get(name, name) if language == "fr" else name
