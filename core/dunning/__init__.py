"""Dunning: reminders for open invoices past their due date, on the configured ladder
(settings, ladder and calendar, letters, plan, send; run.py runs them)."""
