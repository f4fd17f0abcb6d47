"""Entry points on top of the engine: the CLI, the service daemon, the admin API, the demo."""
