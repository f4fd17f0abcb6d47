"""``archive verify``: re-hash every archived document and walk the event chain.

Anything that does not match is reported with its position: the document's
hash and path, or the event's sequence number.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select

from pouracquit.state.chain import verify_chain
from pouracquit.state.store import Store
from pouracquit.state.tables import Document, Receipt

from .archive import Archive


@dataclass(frozen=True)
class Finding:
    where: str
    problem: str


@dataclass(frozen=True)
class AuditReport:
    documents: int
    events: int
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings


def _check_document(doc: Document, root: Path) -> Finding | None:
    # the archive is content-addressed: a document's place follows from its hash under the
    # configured root, whatever directory this runs from and wherever the data was moved
    path = Archive(root).path_for(doc.sha256)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return Finding(f"document {doc.sha256}", f"missing from the archive ({path})")
    except OSError as exc:
        return Finding(f"document {doc.sha256}", f"unreadable: {exc.strerror}")
    actual = hashlib.sha256(content).hexdigest()
    if actual != doc.sha256:
        return Finding(f"document {doc.sha256}", f"content altered: now hashes to {actual} ({path})")
    return None


def audit(store: Store, root: Path) -> AuditReport:
    """Check every archived document under the archive ``root`` and the whole audit chain."""
    with store.session() as session:
        documents = list(session.exec(select(Document).order_by(col(Document.archived_at))))
        shas = select(Receipt.document_sha256).where(col(Receipt.document_sha256).is_not(None))
        referenced = set(session.exec(shas))
    findings = [f for f in (_check_document(d, root) for d in documents) if f is not None]
    known = {d.sha256 for d in documents}
    findings += [Finding(f"document {sha}", "a receipt points at it but the archive has no record of it")
                 for sha in sorted(referenced - known)]
    events = store.events()
    findings += [Finding(f"event #{b.seq}", b.reason) for b in verify_chain(events)]
    return AuditReport(documents=len(documents), events=len(events), findings=findings)


def document_matches(store: Store, receipt: Receipt, root: Path) -> bool:
    """Whether the receipt's archived document is present and unaltered."""
    if not receipt.document_sha256:
        return False
    with store.session() as session:
        doc = session.get(Document, (store.tenant, receipt.document_sha256))
    return doc is not None and _check_document(doc, root) is None
