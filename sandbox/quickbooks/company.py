"""The demo company the QuickBooks sandbox starts with: a French SARL on
QuickBooks Online France, with its VAT codes, bank account, payment methods,
one service item and a few customers. Raw QBO JSON entities, keyed by type.

The TaxCode/TaxRate names are this sandbox's rendering of QBO France's list
(``TVA 20 %`` ...); the connector reads names from its mapping file, so a
company whose names differ is fixed by configuration, not code.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

REALM_ID = "9341452222876543"
HOME_CURRENCY = "EUR"

# The company's exchange rates (euros for one unit), what QBO uses for a foreign-currency
# transaction sent without ExchangeRate; QBO itself downloads its rates daily ("How
# Multicurrency works", https://quickbooks.intuit.com/learn-support/en-us/multi-currency/how-multicurrency-works/00/186157).
# Demo values only.
EXCHANGE_RATES: dict[str, Decimal] = {
    "USD": Decimal("0.92"), "GBP": Decimal("1.17"), "CHF": Decimal("1.05"), "CAD": Decimal("0.68"),
    "JPY": Decimal("0.0062"),
}

# (TaxCode name, TaxRate name, rate %): the sales side of each code.
VAT_CODES: tuple[tuple[str, str, Decimal], ...] = (
    ("TVA 20 %", "TVA collectée 20 %", Decimal("20")),
    ("TVA 10 %", "TVA collectée 10 %", Decimal("10")),
    ("TVA 5,5 %", "TVA collectée 5,5 %", Decimal("5.5")),
    ("TVA 2,1 %", "TVA collectée 2,1 %", Decimal("2.1")),
    ("TVA 0 %", "TVA 0 %", Decimal("0")),
    ("Exonéré", "Exonéré", Decimal("0")),
)

PAYMENT_METHODS: tuple[tuple[str, str], ...] = (
    ("Virement", "NON_CREDIT_CARD"),
    ("Carte bancaire", "CREDIT_CARD"),
    ("Chèque", "NON_CREDIT_CARD"),
    ("Espèces", "NON_CREDIT_CARD"),
    ("Prélèvement", "NON_CREDIT_CARD"),
)


def _meta(stamp: str) -> dict[str, str]:
    return {"CreateTime": stamp, "LastUpdatedTime": stamp}


def initial_entities(stamp: str) -> dict[str, list[dict[str, Any]]]:
    """Every entity of the demo company, Ids assigned, by QBO entity name."""
    rates = [
        {
            "Id": str(i), "Name": rate_name, "Description": f"{rate_name} (ventes)", "Active": True,
            "RateValue": rate, "AgencyRef": {"value": "1"}, "SpecialTaxType": "NONE",
            "DisplayType": "ReadOnly",
            "EffectiveTaxRate": [{"RateValue": rate, "EffectiveDate": "2014-01-01T00:00:00+00:00"}],
        }
        for i, (_code, rate_name, rate) in enumerate(VAT_CODES, start=1)
    ]
    codes = [
        {
            "Id": str(i), "Name": code, "Description": code, "Active": True, "Hidden": False,
            "Taxable": rate > 0, "TaxGroup": False,
            "SalesTaxRateList": {"TaxRateDetail": [
                {"TaxRateRef": {"value": str(i), "name": rate_name},
                 "TaxTypeApplicable": "TaxOnAmount", "TaxOrder": 0},
            ]},
            "PurchaseTaxRateList": {"TaxRateDetail": []},
        }
        for i, (code, rate_name, rate) in enumerate(VAT_CODES, start=1)
    ]
    accounts = [
        {"Id": "1", "Name": "Banque", "AcctNum": "512000", "AccountType": "Bank",
         "AccountSubType": "Checking", "Classification": "Asset"},
        {"Id": "2", "Name": "Prestations de services", "AcctNum": "706000", "AccountType": "Income",
         "AccountSubType": "ServiceFeeIncome", "Classification": "Revenue"},
        {"Id": "3", "Name": "Ventes de marchandises", "AcctNum": "707000", "AccountType": "Income",
         "AccountSubType": "SalesOfProductIncome", "Classification": "Revenue"},
        {"Id": "4", "Name": "Fonds non déposés", "AcctNum": "511000", "AccountType": "Other Current Asset",
         "AccountSubType": "UndepositedFunds", "Classification": "Asset"},
    ]
    for account in accounts:
        account.update({"Active": True, "SubAccount": False, "FullyQualifiedName": account["Name"],
                        "CurrencyRef": {"value": HOME_CURRENCY, "name": "Euro"}, "CurrentBalance": Decimal("0")})
    methods = [
        {"Id": str(i), "Name": name, "Type": kind, "Active": True}
        for i, (name, kind) in enumerate(PAYMENT_METHODS, start=1)
    ]
    items = [{
        "Id": "1", "Name": "Prestation", "FullyQualifiedName": "Prestation", "Type": "Service",
        "Description": "Prestation de services", "Active": True, "Taxable": True,
        "IncomeAccountRef": {"value": "2", "name": "Prestations de services"},
        "SalesTaxCodeRef": {"value": "1", "name": "TVA 20 %"}, "UnitPrice": Decimal("0"),
    }]
    customers = [
        _customer("1", "Boulangerie Martin", "compta@boulangerie-martin.fr", "12 rue de la Paix", "75002", "Paris"),
        _customer("2", "Dupont & Fils SA", "factures@dupont-fils.fr", "3 quai Saint-Vincent", "69001", "Lyon"),
        _customer("3", "Marie Curie", "marie.curie@example.fr", "8 rue Pierre et Marie Curie", "75005", "Paris"),
    ]
    entities: dict[str, list[dict[str, Any]]] = {
        "TaxRate": rates, "TaxCode": codes, "Account": accounts, "PaymentMethod": methods,
        "Item": items, "Customer": customers,
        "CompanyInfo": [{
            "Id": "1", "CompanyName": "Atelier Démo SARL", "LegalName": "Atelier Démo SARL",
            "Country": "FR", "CompanyAddr": {"Line1": "1 place de la Bourse", "City": "Bordeaux",
                                             "PostalCode": "33000", "Country": "FR"},
            "SupportedLanguages": "fr", "DefaultTimeZone": "Europe/Paris",
        }],
        "Preferences": [{
            "Id": "1",
            "SalesFormsPrefs": {"CustomTxnNumbers": True},
            # Preferences.CurrencyPrefs {MultiCurrencyEnabled, HomeCurrency} (ipp-v3-java-data Finance.xsd,
            # CurrencyPrefs); the demo company has multicurrency on, Books(multicurrency=False) turns it off.
            "CurrencyPrefs": {"HomeCurrency": {"value": HOME_CURRENCY}, "MultiCurrencyEnabled": True},
            "TaxPrefs": {"UsingSalesTax": True, "PartnerTaxEnabled": True},
        }],
    }
    for rows in entities.values():
        for row in rows:
            row.setdefault("SyncToken", "0")
            row.setdefault("domain", "QBO")
            row.setdefault("sparse", False)
            row.setdefault("MetaData", _meta(stamp))
    return entities


def _customer(cid: str, name: str, email: str, street: str, postal: str, city: str) -> dict[str, Any]:
    return {
        "Id": cid, "DisplayName": name, "FullyQualifiedName": name, "PrintOnCheckName": name,
        "CompanyName": name, "Active": True, "Taxable": True, "Job": False, "BillWithParent": False,
        "Balance": Decimal("0"), "BalanceWithJobs": Decimal("0"), "PreferredDeliveryMethod": "Email",
        "PrimaryEmailAddr": {"Address": email},
        "BillAddr": {"Line1": street, "PostalCode": postal, "City": city, "Country": "FR"},
        "CurrencyRef": {"value": HOME_CURRENCY, "name": "Euro"},
    }
