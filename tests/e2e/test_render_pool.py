"""Rendering on worker processes (document.render_processes): the same
receipts, and a missing mention comes back from a worker naming its field."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from pouracquit.core.sync import sync_connection


def test_worker_processes_render_the_same_receipts(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=10)
    rig.config["document"] = {"render_processes": 2}
    rig.config["seller"] = {**rig.config["seller"], "iban": "", "bic": ""}  # transfers then miss a mention
    service = rig.service()
    try:
        result = sync_connection(service, "demo")
    finally:
        service.close()
    receipts = service.store.receipts("demo", limit=100)
    assert receipts and result.error is None
    assert {r.status for r in receipts} <= {"done", "quarantined"}
    done = [r for r in receipts if r.status == "done"]
    stopped = [r for r in receipts if r.status == "quarantined"]
    assert done and stopped, "the demo data pays both by transfer and by other means"
    assert all(r.step == "render" and "missing mandatory mention seller.iban" in (r.last_error or "")
               for r in stopped)
    assert all(r.document_sha256 and r.crm_attachment_id for r in done)


def test_workers_end_with_a_parent_killed_outright(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL gives the pool no shutdown: its workers must still not outlive it."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys\n"
        "from pouracquit.core.document import DocumentSettings, Seller\n"
        "from pouracquit.core.document.pool import RenderPool\n"
        "from pouracquit.sandbox.launch import DEMO_SELLER\n"
        "if __name__ == '__main__':  # spawned workers import this file again\n"
        "    pool = RenderPool(Seller.model_validate(DEMO_SELLER), DocumentSettings(), 2)\n"
        "    print(pool._pool.submit(os.getpid).result(), flush=True)\n"
        "    sys.stdin.read()\n", encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())  # type: ignore[union-attr]
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(worker):
            time.sleep(0.2)
        assert not _alive(worker), "a render worker outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (reaped by nobody yet) is gone for our purpose
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"
