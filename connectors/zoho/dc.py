"""Zoho's data centres: each has its own accounts server (OAuth) and API domain.

Sources: Zoho CRM's multi-DC page (https://www.zoho.com/crm/developer/docs/api/v8/multi-dc.html:
US, AU, EU, IN, CN, JP and CA, whose accounts server is accounts.zohocloud.ca) and
Zoho's official Python SDK, zoho/zohocrm-python-sdk-8.0
``versions/6.0.0/zohocrmsdk/src/com/zoho/crm/api/dc/*_data_center.py``, which also
has SA. Neither host can be derived from the other (Canada: zohocloud.ca for
accounts, zohoapis.ca for the API), hence one table. The API domain a token
answer names (``api_domain``) wins over this table; the table is the fallback
and the list of accounts servers a client secret may be sent to.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataCentre:
    code: str  # Zoho's `location` value on the authorisation redirect
    name: str
    accounts_url: str
    api_domain: str


DATA_CENTRES = (
    DataCentre("us", "United States", "https://accounts.zoho.com", "https://www.zohoapis.com"),
    DataCentre("eu", "Europe", "https://accounts.zoho.eu", "https://www.zohoapis.eu"),
    DataCentre("in", "India", "https://accounts.zoho.in", "https://www.zohoapis.in"),
    DataCentre("au", "Australia", "https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
    DataCentre("jp", "Japan", "https://accounts.zoho.jp", "https://www.zohoapis.jp"),
    DataCentre("cn", "China", "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
    DataCentre("ca", "Canada", "https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
    DataCentre("sa", "Saudi Arabia", "https://accounts.zoho.sa", "https://www.zohoapis.sa"),
)
_BY_ACCOUNTS = {dc.accounts_url: dc for dc in DATA_CENTRES}


def by_accounts_url(url: str) -> DataCentre | None:
    """The data centre whose accounts server is ``url`` (trailing slash ignored), if any."""
    return _BY_ACCOUNTS.get(url.rstrip("/"))
