"""Customer data is the service user's alone, whatever the umask: the data
directory and archive folders 0700, the SQLite store and its -wal/-shm 0600,
staged PDFs 0600, archived PDFs 0400; what an older version left readable
is narrowed at start."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from security_support import offline_settings

from pouracquit.common.errors import ConfigError
from pouracquit.core.archive import Archive
from pouracquit.core.service import Service


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: nothing may rely on it."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_data_directory_and_store_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  open_umask: None) -> None:
    service = Service.open(offline_settings(tmp_path, monkeypatch))
    with service.store.unit() as u:
        u.log("c", "test")  # a write: the -wal and -shm files exist now
    data = tmp_path / "data"
    files = {p.name: mode(p) for p in data.iterdir()}
    service.store.engine.dispose()
    assert mode(data) == 0o700
    assert files == {"pouracquit.sqlite": 0o600, "pouracquit.sqlite-wal": 0o600, "pouracquit.sqlite-shm": 0o600}


def test_archive_folders_and_documents_are_private(tmp_path: Path, open_umask: None) -> None:
    archive = Archive(tmp_path / "archive")
    staged = archive.stage("r1", b"%PDF-1.7 staged")
    sha, archived = archive.store(b"%PDF-1.7 archived")
    assert mode(staged) == 0o600
    assert mode(archived) == 0o400  # read-only against accidents, and no one else's
    folders = [archive.root, staged.parent, archived.parent, archived.parent.parent]
    assert [mode(f) for f in folders] == [0o700] * 4
    assert archive.read(sha) == b"%PDF-1.7 archived"


def test_what_an_older_version_left_open_is_narrowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     open_umask: None) -> None:
    data = tmp_path / "data"
    (data / "archive" / "ab").mkdir(parents=True, mode=0o755)
    for folder in (data, data / "archive"):
        folder.chmod(0o755)
    Service.open(offline_settings(tmp_path, monkeypatch)).store.engine.dispose()
    (data / "pouracquit.sqlite").chmod(0o644)
    Service.open(offline_settings(tmp_path, monkeypatch)).store.engine.dispose()
    assert (mode(data), mode(data / "archive"), mode(data / "pouracquit.sqlite")) == (0o700, 0o700, 0o600)


def test_a_data_directory_that_cannot_be_made_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "blocker").write_text("x")
    settings = offline_settings(tmp_path, monkeypatch, data_dir=str(tmp_path / "blocker" / "data"))
    with pytest.raises(ConfigError, match="cannot be created"):
        Service.open(settings)
