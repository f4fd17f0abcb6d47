"""Rendering on worker processes.

Pango (under WeasyPrint) lays out one document at a time per process, and a
page costs a few hundred milliseconds of CPU: past a few documents a second,
more documents need more processes. Each worker builds its own Renderer
(templates, fonts, CSS) once, when it starts.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from .context import PaidReceipt
from .renderer import Renderer
from .settings import DocumentSettings, Seller

_worker: Renderer | None = None


# how often a worker looks for its parent
PARENT_CHECK_SECONDS = 1.0


def _start(seller: Seller, settings: DocumentSettings, parent: int) -> None:
    global _worker
    # the parent's pid as the parent gave it: one killed while this worker was still importing
    # WeasyPrint has left already, and os.getppid() here would name the process that adopted us
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()
    _worker = Renderer(seller, settings)


def _exit_with(parent: int) -> None:
    """End this worker when its parent is gone. A parent killed outright (SIGKILL, the OOM
    killer) never shuts its pool down, and the orphaned workers, a few hundred MB each, would
    wait for work forever; every restart of the service would leave more of them."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _render(receipt: PaidReceipt) -> bytes:
    assert _worker is not None
    return _worker.render(receipt)


class RenderPool:
    """A Renderer whose ``render`` runs on ``processes`` worker processes
    (spawned, not forked: the service has threads). Errors come back as raised."""

    def __init__(self, seller: Seller, settings: DocumentSettings, processes: int) -> None:
        self._names = Renderer(seller, settings)
        self._pool = ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start, initargs=(seller, settings, os.getpid()),
        )

    def render(self, receipt: PaidReceipt) -> bytes:
        return self._pool.submit(_render, receipt).result()

    def check(self, receipt: PaidReceipt) -> bytes:
        return self._names.check(receipt)  # no layout: cheap enough in this process

    def filename(self, receipt: PaidReceipt) -> str:
        return self._names.filename(receipt)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
