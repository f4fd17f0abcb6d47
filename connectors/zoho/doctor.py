"""``pouracquit doctor`` for a Zoho CRM source: the token refresh and the scopes
its answer grants, and every field the mapping reads on the invoice module and
on Accounts and Contacts, custom fields first among them.

Fields are probed with the source's own COQL call: Zoho refuses a query naming
a field the module lacks with INVALID_QUERY "invalid column given"
(https://www.zoho.com/crm/developer/docs/api/v8/COQL-Overview.html, error table).
The line items' fields live in a subform, which COQL does not select: they are
not probed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pouracquit.common.errors import PouracquitError
from pouracquit.connectors.base import Check
from pouracquit.connectors.doctor_checks import field_checks, granted_scopes, probe, scope_check

if TYPE_CHECKING:
    from .source import ZohoSource

RECONNECT = "run `pouracquit connect zoho` to authorise the client with its scopes again"
# Zoho's refresh answer names the grant's "scope" beside api_domain
# (https://zoho.com/developer/docs/vertical-solutions/api/v6/refresh.html, sample response).
TOKEN_PATH = "/oauth/v2/token"  # noqa: S105 - an endpoint path, not a secret
# Keys the mapping file marks optional: a missing field there only loses what it would add.
OPTIONAL = frozenset({"invoice.payments", "invoice.supply_date"})
FIELDS_PLACE = "Setup > Customization > Modules and Fields"


def _fields(source: ZohoSource, section: str, module: str) -> list[Check]:
    m = source._mapper.m
    skip = {m["invoice"]["lines"]}  # the line items subform: not a COQL column
    wanted = [(f"{section}.{k}", v) for k, v in m[section].items() if isinstance(v, str) and v and v not in skip]

    def query(names: list[str]) -> object:
        # names come from the mapping (API names), as in ZohoSource.changes
        return source.coql(f"select id, {', '.join(names)} from {module} where (id is not null) limit 1")  # noqa: S608

    def is_missing(exc: PouracquitError) -> bool:
        return "INVALID_QUERY" in str(exc)

    def describe(key: str, name: str) -> Check:
        return Check(f"field {module}.{name}", None if key in OPTIONAL else False,
                     f"{module} has no field {name} (mapping key {key})",
                     f"create the field {name} on {module} ({FIELDS_PLACE}), or set mapping key {key} to the "
                     f"API name your org uses ([connections.mapping.source])")

    return field_checks(module, wanted, query, is_missing, describe)


def diagnose(source: ZohoSource, public_url: str | None) -> list[Check]:
    """The checklist of one Zoho source (``Diagnosable.diagnose``)."""
    from .source import OAUTH_SCOPES  # here: zoho.py imports this module while it loads

    with granted_scopes(source._http, TOKEN_PATH) as answers:
        _, refused = probe("token refresh", source._refresh_token, RECONNECT)
    if refused:
        return [refused]
    checks = [Check("token refresh", True, f"Zoho issued a new access token for {source._domain}"),
              scope_check("Zoho", answers, OAUTH_SCOPES, RECONNECT)]
    modules = source._mapper.m["module"]
    for section, module in (("invoice", source.settings.module), ("account", modules["account"]),
                            ("contact", modules["contact"])):
        checks += _fields(source, section, module)
    lines = source._mapper.m["invoice"]["lines"]
    checks.append(Check(f"fields of {lines}", None, "not probed: the line items are a subform, which COQL does "
                                                     "not select"))
    checks.append(Check("webhook", None, "pouracquit takes no Zoho webhooks: polling finds the changes"))
    return checks
