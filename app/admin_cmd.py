"""``pouracquit admin``: the admin API alone, for a deployment (the admin service
beside a fleet's scheduler and workers).

It serves every company of the config (each file of ``[tenants] dir``, taken up or
dropped as the files change; or the one company of a config without it): /healthz,
/readyz, /metrics, /status, the admin page, and the public verify and survey pages.
It schedules nothing: the fleet's scheduler and workers do the work, and a retry
from the page makes the receipt due for them. Vendors' webhooks are served by
``pouracquit run`` only (/status says so). SIGTERM or SIGINT stops it, requests in
progress finished.

``commands`` holds it; app/cli.py adds it at the top level with ``app.add_typer``.
"""

from __future__ import annotations

import signal
from types import FrameType

import structlog
import typer

from pouracquit.core.config import Settings

from . import logs
from .cli_options import ConfigFile, deployment_of

log = structlog.get_logger("pouracquit.admin")


def admin_command(settings: Settings) -> int:
    """Serve the admin API for ``settings``' companies until SIGTERM or SIGINT; returns the exit code."""
    from pouracquit.core.tenants import Tenants

    from .admin import AdminServer

    # a service's log is read by machines, as `pouracquit run`'s is
    logs.configure("json" if settings.log.format == "auto" else settings.log.format, settings.log.level)
    tenants = Tenants.open(settings)
    try:
        server = AdminServer(tenants)  # bound now: a busy port is a one-line error
        stop = server.served.stop

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("admin API stopping", signal=signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        server.start()
        log.info("admin API serving", tenants=tenants.names())
        while not stop.wait(1.0):
            pass
        server.stop()
    finally:
        tenants.close()
    log.info("admin API stopped")
    return 0


commands = typer.Typer()


@commands.command()
def admin(config: ConfigFile = None) -> int:
    """Serve the admin API, admin page, verify and survey pages for every company of the config; schedules nothing."""
    return admin_command(deployment_of(config))
