"""``pouracquit doctor`` for a HubSpot source: the token (refreshed for an OAuth
app, whose token answer lists the granted scopes; used for a private app), one
invoice read through the source's own SDK client, and the webhook target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pouracquit.connectors.base import Check
from pouracquit.connectors.doctor_checks import granted_scopes, probe, scope_check, webhook_unread

from .auth import OAUTH_SCOPES, TOKEN_PATH

if TYPE_CHECKING:
    from .source import HubSpotSource

RECONNECT = "run `pouracquit connect hubspot` to install the app with its scopes again"
# The token endpoint answers with hub_id and "scopes", the list the grant holds
# (https://developers.hubspot.com/docs/api-reference/latest/authentication/manage-oauth-tokens).
# The webhook target URL is readable only with the app's id and a developer credential
# (GET /webhooks/2026-03/{appId}/settings, https://developers.hubspot.com/docs/api-reference/2026-03/webhooks/
# subscriptions/get-webhooks-appId), which a connection's settings do not hold.
WEBHOOK_PLACE = ("HubSpot keeps the target URL in the app's webhook settings, readable only with the app's id and "
                 "a developer credential (GET /webhooks/2026-03/{appId}/settings), which this connection does not hold")


def diagnose(source: HubSpotSource, public_url: str | None) -> list[Check]:
    """The checklist of one HubSpot source (``Diagnosable.diagnose``)."""
    settings, checks = source.settings, []
    if settings.access_token is None:
        with granted_scopes(source._http, TOKEN_PATH) as answers:
            _, refused = probe("token refresh", source._refresh_token, RECONNECT)
        if refused:
            return [refused]
        checks += [Check("token refresh", True, "HubSpot issued a new access token"),
                   scope_check("HubSpot", answers, OAUTH_SCOPES, RECONNECT)]
    else:
        checks.append(Check("scopes", None, "a private app token: its scopes are set on the app's page, not "
                                            f"named by any token answer; it needs {' '.join(OAUTH_SCOPES[1:])}"))
    invoices = source._objects["invoice"]
    _, refused = probe("invoice read", lambda: source._call(
        "doctor.invoices", lambda c: c.crm.objects.basic_api.get_page(invoices, limit=1)),
        f"grant the token the scope crm.objects.invoices.read ({RECONNECT})")
    checks.append(refused or Check("invoice read", True, f"the {invoices} object answers"))
    secret = settings.webhook_secret or settings.client_secret
    checks.append(webhook_unread("hubspot", public_url, secret is not None, WEBHOOK_PLACE))
    return checks
