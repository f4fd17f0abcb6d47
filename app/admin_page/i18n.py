"""The admin page's words in French and English, and which one a request gets:
``?lang=`` (remembered in a cookie), else the browser's Accept-Language, else French."""

from __future__ import annotations

LANGUAGES = ("fr", "en")
LANG_COOKIE = "pouracquit_lang"

# key -> (français, English)
WORDS: dict[str, tuple[str, str]] = {
    "title": ("Administration pouracquit", "pouracquit administration"),
    "login": ("Connexion", "Log in"),
    "logout": ("Déconnexion", "Log out"),
    "token": ("Jeton d'administration", "Admin token"),
    "token_help": ("Le jeton configuré dans admin.token.", "The token configured in admin.token."),
    "wrong_token": ("Jeton refusé.", "Wrong token."),
    "no_token": ("La page d'administration demande un jeton : renseignez admin.token dans la configuration.",
                 "The admin page needs a token: set admin.token in the configuration."),
    "too_many": ("Trop de tentatives : réessayez dans {seconds} s.", "Too many attempts: try again in {seconds} s."),
    "form_expired": ("Formulaire expiré ou falsifié : rechargez la page.",
                     "Form expired or forged: reload the page."),
    "connections": ("Connexions", "Connections"),
    "receipts": ("Factures acquittées", "Receipts"),
    "reports": ("Rapports", "Reports"),
    "source": ("CRM", "CRM"),
    "ledger": ("Comptabilité", "Ledger"),
    "disabled": ("désactivée", "disabled"),
    "healthy": ("synchronisée", "in sync"),
    "stale": ("en retard", "stale"),
    "stale_after": ("aucune synchronisation réussie depuis plus de {limit}",
                    "no successful sync for more than {limit}"),
    "cursor_lag": ("Retard du curseur", "Cursor lag"),
    "never": ("jamais", "never"),
    "last_run": ("Dernier passage", "Last run"),
    "last_error": ("Dernière erreur", "Last error"),
    "none": ("aucune", "none"),
    "disconnected": ("Déconnectée", "Disconnected"),
    "since": ("depuis", "since"),
    "fix": ("Correction", "Fix"),
    "by_status": ("Par statut", "By status"),
    "problems": ("À traiter", "Needing attention"),
    "quarantined_records": ("Enregistrements CRM refusés", "CRM records refused"),
    "ledger_alerts": ("Écritures modifiées dans la comptabilité", "Bookings changed in the ledger"),
    "stale_leases": ("Verrous abandonnés", "Stale leases"),
    "search": ("Rechercher", "Search"),
    "search_help": ("Numéro, client, identifiant CRM ou de facture", "Number, customer, CRM or receipt id"),
    "any_status": ("tous statuts", "any status"),
    "any_connection": ("toutes connexions", "any connection"),
    "no_match": ("Aucune facture ne correspond.", "No receipt matches."),
    "number": ("Numéro", "Number"),
    "customer": ("Client", "Customer"),
    "amount": ("Montant TTC", "Amount"),
    "status": ("Statut", "Status"),
    "step": ("Étape", "Step"),
    "invoice_dates": ("Date de facture", "Invoice date"),
    "due": ("échéance", "due"),
    "payments": ("Paiements", "Payments"),
    "kind": ("Type", "Kind"),
    "created": ("Créée", "Created"),
    "completed": ("Terminée", "Completed"),
    "connection": ("Connexion", "Connection"),
    "crm_id": ("Identifiant CRM", "CRM id"),
    "crm_attachment": ("Pièce jointe CRM", "CRM attachment"),
    "ledger_id": ("Écriture comptable", "Ledger booking"),
    "ledger_attachment": ("Pièce jointe comptable", "Ledger attachment"),
    "attempts": ("Tentatives", "Attempts"),
    "reason": ("Motif", "Reason"),
    "pdf": ("PDF", "PDF"),
    "download_pdf": ("Télécharger le PDF", "Download the PDF"),
    "no_pdf": ("pas encore archivé", "not archived yet"),
    "verify_page": ("Page de vérification", "Verification page"),
    "archive_ok": ("Original archivé intact", "Archived original intact"),
    "archive_bad": ("Original archivé introuvable ou modifié : lancez pouracquit archive verify",
                    "Archived original missing or altered: run pouracquit archive verify"),
    "credits": ("Avoir sur", "Credits"),
    "audit_trail": ("Journal d'audit", "Audit trail"),
    "event": ("Évènement", "Event"),
    "when": ("Date (UTC)", "When (UTC)"),
    "details": ("Détails", "Details"),
    "retry": ("Relancer", "Retry"),
    "retried_config_error": ("Relance arrêtée : la configuration de la connexion est refusée "
                             "(pouracquit doctor dit pourquoi).",
                             "Retry stopped: the connection's configuration is refused (pouracquit doctor says why)."),
    "retried": ("Relance effectuée : {outcome}.", "Retried: {outcome}."),
    "not_found": ("Introuvable.", "Not found."),
    "receipt": ("Facture", "Receipt"),
    "language": ("English", "Français"),
    "tenant": ("Société", "Company"),
    "tenants": ("Sociétés", "Companies"),
    "choose_tenant": ("Choisissez une société.", "Choose a company."),
    "show": ("Afficher", "Show"),
    "unknown_tenant": ("Société inconnue ou dont le fichier est inutilisable.",
                       "Unknown company, or its file cannot be used."),
    "unusable": ("fichier inutilisable", "unusable file"),
    "retried_queued": ("Relance demandée : le planificateur la confie à un worker à son prochain passage.",
                       "Retry requested: the scheduler hands it to a worker at its next tick."),
    "report": ("Rapport", "Report"),
    "report_payments": ("Comportement de paiement", "Payment behaviour"),
    "report_reconcile": ("Rapprochement CRM ↔ comptabilité", "Reconciliation CRM ↔ ledger"),
    "date_from": ("Du", "From"),
    "date_to": ("Au", "To"),
    "run_report": ("Établir", "Run"),
    "reports_help": ("Le rapport interroge le CRM ou la comptabilité : il n'est établi qu'à la demande. "
                     "Le rapprochement ignore la date de fin. Contenu des rapports en anglais.",
                     "A report reads the CRM or the ledger back: it runs only when asked. "
                     "The reconciliation ignores the end date."),
    "more": ("Affichage limité aux {n} plus récentes : précisez la recherche.",
             "Showing the {n} most recent: narrow the search."),
}


def choose(query_lang: str | None, cookie_lang: str | None, accept_language: str | None) -> str:
    """The language of one response."""
    for explicit in (query_lang, cookie_lang):
        if explicit in LANGUAGES:
            return explicit  # type: ignore[return-value]
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, index, primary))
    return min(ranked)[2] if ranked else "fr"


def translator(lang: str) -> dict[str, str]:
    """Every word in ``lang``, for the templates."""
    column = LANGUAGES.index(lang)
    return {key: pair[column] for key, pair in WORDS.items()}
