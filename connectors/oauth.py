"""What ``pouracquit connect`` needs to know about a vendor's OAuth app.

Each OAuth connector exposes ``oauth_app(settings, ctx) -> OAuthApp``: the
authorisation-code flow itself is generic (``app/connect.py``); only these
facts differ per vendor. ``token_name`` is the very key the connector reads its
refresh token from, so the next sync uses what ``connect`` stored.
``oauth_app`` raises ConfigError for a wrong setting and RetryableError when
the vendor could not answer (a discovery document's 5xx): ``connect`` tries
the latter again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pouracquit.common.errors import ConfigError
from pouracquit.common.secrets import SecretRef

from .base import TokenStore

# (query parameters of the redirect, token endpoint answer) -> lines to show the user
# (an organisation id to put in the config, a data centre, ...); never a token.
Notes = Callable[[Mapping[str, str], Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class OAuthApp:
    """One vendor OAuth app, as configured for one connection.

    ``client_auth`` says how the token endpoint authenticates the app: HTTP
    Basic (``"basic"``) or ``client_id``/``client_secret`` form fields
    (``"form"``). ``redirect_host`` is the host of the redirect URI the user
    registers (HubSpot refuses IP addresses, so it asks for ``localhost``).
    ``token_url_for`` may choose the token endpoint from the redirect's
    parameters (Zoho names the user's data centre there); ``notes`` turns the
    redirect and token answer into lines for the user; ``verify`` is a CA bundle
    path for a server with a private CA, else True.
    """

    vendor: str
    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...]
    token_name: str
    client_auth: Literal["basic", "form"] = "form"
    scope_separator: str = " "
    extra_params: Mapping[str, str] = field(default_factory=dict)
    pkce: bool = False
    redirect_host: str = "127.0.0.1"
    verify: str | bool = True
    timeout: float = 30.0
    token_url_for: Callable[[Mapping[str, str]], str] | None = field(default=None, repr=False)
    notes: Notes | None = field(default=None, repr=False)

    @property
    def scope(self) -> str:
        return self.scope_separator.join(self.scopes)


def stored_refresh_token(tokens: TokenStore, name: str, initial: SecretRef | None, vendor: str) -> str:
    """The refresh token a connector starts a refresh with: the one kept in the
    store (put there by ``connect`` or by an earlier rotation), else the one the
    config names; neither is a ConfigError telling how to get one."""
    kept = tokens.get(name)
    if kept:
        return kept
    if initial is None:
        raise ConfigError(f"no {vendor} refresh token yet: run `pouracquit connect {vendor}` "
                          f"(or set refresh_token in the connection's settings)")
    return initial.value().get_secret_value()
