"""Rendering on worker processes.

Pango (under WeasyPrint) lays out one document at a time per process, and a
page costs a few hundred milliseconds of CPU: past a few documents a second,
more documents need more processes. Each worker builds its own Renderer
(templates, fonts, CSS) once, when it starts.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from .context import PaidReceipt
from .renderer import Renderer
from .settings import DocumentSettings, Seller

_worker: Renderer | None = None


def _start(seller: Seller, settings: DocumentSettings) -> None:
    global _worker
    _worker = Renderer(seller, settings)


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
            initializer=_start, initargs=(seller, settings),
        )

    def render(self, receipt: PaidReceipt) -> bytes:
        return self._pool.submit(_render, receipt).result()

    def check(self, receipt: PaidReceipt) -> bytes:
        return self._names.check(receipt)  # no layout: cheap enough in this process

    def filename(self, receipt: PaidReceipt) -> str:
        return self._names.filename(receipt)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
