"""pouracquit: paid CRM invoices become French factures acquittées, exactly once."""

__version__ = "0.1.0"
