"""``pouracquit doctor`` for a Salesforce source: the token refresh and the scopes
its answer grants, and every field the mapping reads on the invoice, line and
payment objects (the buyer's through their relationships).

Fields are probed with SOQL through the source's own client: Salesforce refuses
a query naming a field the object lacks with INVALID_FIELD ("No such column ...
on entity ...", SOAP API Developer Guide, core exception codes), as the sync's
own first query would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simple_salesforce import format_soql

from pouracquit.common.errors import PouracquitError
from pouracquit.connectors.base import Check
from pouracquit.connectors.doctor_checks import field_checks, granted_scopes, probe, scope_check

from .session import OAUTH_SCOPES

if TYPE_CHECKING:
    from .source import SalesforceSource

RECONNECT = "run `pouracquit connect salesforce` to authorise the connected app again"
# The token answer names the granted "scope" (space-separated; Salesforce Help, "OAuth 2.0 Refresh Token Flow for
# Renewed Sessions"). "full" covers the API but never yields a refresh token, which needs its own scope
# (Salesforce Help, "OAuth Tokens and Scopes").
BROAD = {"full": ("api",)}
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - an endpoint path, not a secret
FIELDS_PLACE = "Setup > Object Manager > the object > Fields & Relationships"


def _fields(source: SalesforceSource, section: str, sobject: str, paths: list[str]) -> list[Check]:
    wanted = [(section, p) for p in paths if p != "Id"]

    def query(names: list[str]) -> object:
        # names were checked as API names when the source was built (SalesforceSource._check_names)
        soql = format_soql("SELECT Id, {:literal} FROM {:literal} LIMIT 1", ", ".join(names), sobject)
        return source._call("doctor.fields", lambda sf: sf.query(soql))

    def is_missing(exc: PouracquitError) -> bool:
        return "INVALID_FIELD" in str(exc)

    def describe(_key: str, path: str) -> Check:
        return Check(f"field {sobject}.{path}", False, f"{sobject} has no field {path} (mapping [{section}])",
                     f"create the field on its object ({FIELDS_PLACE}), or set the [{section}] key that names "
                     f"{path.split('.')[-1]} to the API name your org uses ([connections.mapping.source])")

    return field_checks(sobject, wanted, query, is_missing, describe)


def diagnose(source: SalesforceSource, public_url: str | None) -> list[Check]:
    """The checklist of one Salesforce source (``Diagnosable.diagnose``)."""
    with granted_scopes(source._session, TOKEN_PATH) as answers:
        _, refused = probe("token refresh", source._refresh_session, RECONNECT)
    if refused:
        return [refused]
    checks = [Check("token refresh", True, "Salesforce opened a new session"),
              scope_check("Salesforce", answers, OAUTH_SCOPES, RECONNECT, covers=BROAD)]
    mapper, objects = source._mapper, source._objects
    checks += _fields(source, "invoice", objects["invoice"], mapper.invoice_fields())
    for section in ("line", "payment"):
        if objects.get(section):
            checks += _fields(source, section, objects[section], mapper.child_fields(section))
    checks.append(Check("webhook", None, "pouracquit takes no Salesforce webhooks: polling finds the changes"))
    return checks
