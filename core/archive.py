"""Content-addressed document archive: each PDF stored once under its
SHA-256, written atomically, never overwritten, never deleted by pouracquit
(French law keeps invoices 10 years; see docs/archiving.md).

Customer documents are the owner's alone, whatever the umask: folders 0700,
staged PDFs 0600, archived PDFs 0400 (read-only against accidents)."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import time
import uuid
from pathlib import Path

from pouracquit.common.errors import ConfigError, PermanentError, RetryableError

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
ARCHIVED_FILE = 0o400


def _write_atomically(path: Path, content: bytes) -> None:
    # host, pid and a random part: workers in containers sharing one volume may all run as pid 1
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        os.fchmod(fd, PRIVATE_FILE)  # the umask could only narrow the mode; a leftover file could be wider
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RetryableError(f"no space left for the archive in {path.parent}: free some and the "
                                 f"receipt goes on") from None
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ConfigError(f"archive directory {path.parent} is not writable: {exc.strerror}") from None
        raise


class Archive:
    """The archive directory: ``staging/`` for rendered documents not yet
    archived, ``ab/cd/<sha256>.pdf`` for archived ones."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _ensure(self, directory: Path) -> None:
        """Create ``directory`` and the folders between it and the root 0700
        (``mkdir -p`` would leave them to the umask)."""
        try:
            self.root.parent.mkdir(parents=True, exist_ok=True)
            folders = [self.root]
            for part in directory.relative_to(self.root).parts:
                folders.append(folders[-1] / part)
            for folder in folders:
                if not folder.is_dir():
                    folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
                    folder.chmod(PRIVATE_DIR)
        except OSError as exc:
            raise ConfigError(f"archive directory {directory} unusable: {exc.strerror}") from None

    def staged_path(self, receipt_id: str) -> Path:
        return self.root / "staging" / f"{receipt_id}.pdf"

    def stage(self, receipt_id: str, content: bytes) -> Path:
        """Keep a rendered document until it is archived; a re-render replaces it."""
        path = self.staged_path(receipt_id)
        self._ensure(path.parent)
        _write_atomically(path, content)
        return path

    def discard_staged(self, receipt_id: str) -> None:
        """Drop a receipt's staged copy once its archived one is recorded."""
        self.staged_path(receipt_id).unlink(missing_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.pdf"

    def store(self, content: bytes) -> tuple[str, Path]:
        """Archive ``content``; storing the same bytes again is a no-op."""
        sha = hashlib.sha256(content).hexdigest()
        path = self.path_for(sha)
        if path.exists():
            if self.hash_of(path) != sha:
                raise PermanentError(f"archived document {path} does not match its name: tampered?")
            return sha, path
        self._ensure(path.parent)
        _write_atomically(path, content)
        path.chmod(ARCHIVED_FILE)
        return sha, path

    def read(self, sha256: str) -> bytes:
        """An archived document, checked against its hash."""
        content = self.path_for(sha256).read_bytes()
        if hashlib.sha256(content).hexdigest() != sha256:
            raise PermanentError(f"archived document {sha256} was altered")
        return content

    def sweep_temporary(self, older_than: float = 3600.0) -> int:
        """Remove half-written ``.<name>.<pid>.tmp`` files a crash left behind;
        nothing refers to them. Returns how many went."""
        cutoff = time.time() - older_than
        removed = 0
        for tmp in self.root.glob("**/.*.tmp") if self.root.exists() else ():
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except OSError:
                continue  # another worker's file, gone already
        return removed

    @staticmethod
    def hash_of(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()
