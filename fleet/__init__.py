"""Many companies on many machines: Celery workers, one scheduler, shared rate budgets."""
