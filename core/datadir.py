"""The data directory holds customer data (invoices, payments, the archived
PDFs, sealed tokens): it is the service user's alone, whatever the umask.

The directory is made 0700 and the SQLite store is created 0600 before
SQLAlchemy opens it; SQLite gives its -wal and -shm files the database
file's mode. The archive sets its own folders and documents (core/archive.py).
What an older version left readable by others is narrowed at start; owner
bits are never added (a read-only directory stays read-only).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pouracquit.common.errors import ConfigError

from .archive import PRIVATE_DIR, PRIVATE_FILE
from .config import Settings


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL; None for other stores and in-memory SQLite."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _narrow(path: Path, allowed: int) -> None:
    """Drop every permission bit outside ``allowed`` (group and others)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & ~allowed:
            path.chmod(mode & allowed)
    except FileNotFoundError:
        return  # SQLite's side files come and go
    except OSError as exc:
        raise ConfigError(f"{path} cannot be made private to the service user: {exc.strerror} "
                          f"(it must belong to the user pouracquit runs as)") from None


def _private_dir(path: Path) -> None:
    if path.is_dir():
        _narrow(path, PRIVATE_DIR)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        path.chmod(PRIVATE_DIR)  # mkdir's mode passes through the umask, which could only narrow it
    except OSError as exc:
        raise ConfigError(f"data directory {path} cannot be created: {exc.strerror}") from None


def _private_database(path: Path) -> None:
    if path.exists():
        for name in (path.name, f"{path.name}-wal", f"{path.name}-shm", f"{path.name}-journal"):
            _narrow(path.with_name(name), PRIVATE_FILE)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)  # an empty file is an empty database
        try:
            os.fchmod(fd, PRIVATE_FILE)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigError(f"state store {path} unusable: cannot be created: {exc.strerror}") from None


def secure_data_dir(settings: Settings) -> None:
    """The data directory (when the store or the archive lives in it), the
    archive root and the SQLite store, owner-only; a ConfigError names the
    path that cannot be made so."""
    database = sqlite_path(settings.store_url)
    data_dir = settings.data_dir.resolve()
    in_data_dir = settings.archive.resolve().is_relative_to(data_dir)
    if database is not None:
        in_data_dir = in_data_dir or database.resolve().is_relative_to(data_dir)
    if in_data_dir:
        _private_dir(settings.data_dir)
    if settings.archive.is_dir():
        _narrow(settings.archive, PRIVATE_DIR)
    if database is not None:
        _private_database(database)
