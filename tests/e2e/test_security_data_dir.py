"""After a real sync under the most permissive umask, nothing in the data
directory is readable by anyone but the service user."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def test_a_sync_leaves_nothing_readable_by_others(make_rig) -> None:  # type: ignore[no-untyped-def]
    previous = os.umask(0)
    try:
        rig = make_rig(count=8)
        service = rig.service()
        rig.sync_until_settled(service)
        assert service.store.receipts("demo", "done")
        service.close()
        service.store.engine.dispose()
    finally:
        os.umask(previous)
    data = Path(rig.config["data_dir"])
    found = {p.relative_to(data).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [data, *data.rglob("*")]}
    pdfs = [name for name in found if name.endswith(".pdf")]
    assert pdfs and all(found[name] == 0o400 for name in pdfs if "staging" not in name)
    assert {name: m for name, m in found.items() if m & 0o077} == {}, "readable by others"
    dirs = [p for p in [data, *data.rglob("*")] if p.is_dir()]
    assert all(stat.S_IMODE(d.stat().st_mode) == 0o700 for d in dirs)
