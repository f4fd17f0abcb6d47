"""Delivery of receipts to the customer: the [email] settings, the SMTP mailer,
the messages and the pipeline's email step."""
