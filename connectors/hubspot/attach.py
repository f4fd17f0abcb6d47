"""Writing to HubSpot for the HubSpot source: the receipt PDF goes to Files and
a note carrying it is logged on the invoice (and its deal).

``attach`` costs 2 calls (upload + note) on a first attempt; with
``may_exist`` it first looks for its own file and note. ``attach_documents``
uploads each file and creates the notes 100 per call through
``POST /crm/v3/objects/notes/batch/create`` (hubspot-api-client 12:
``crm.objects.notes.batch_api.create``): 1.01 calls per receipt. HubSpot does
not answer a batch in input order (HubSpot/hubspot-api-nodejs#190), so each
note carries its receipt's key in its ``objectWriteTraceId`` and its body, and
its file id in ``hs_attachment_ids``: results are matched on those. The note -> invoice
association type is read once per process from
``GET /crm/v4/associations/notes/invoices/labels``: HubSpot publishes no id for
that pair (HubSpot/hubspot-api-python hubspot/crm/association_type.py lists
NOTE_TO_DEAL = 214 but no NOTE_TO_INVOICE), and creating the note with its
associations in one call never leaves a note without its invoice.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import hubspot
from hubspot.crm.objects import PublicObjectSearchRequest, SimplePublicObjectInputForCreate
from hubspot.crm.objects.notes import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputForCreate,
)

from pouracquit.common.errors import ConfigError, PermanentError, RetryableError
from pouracquit.connectors.base import AttachOrder, Document

# At most 100 inputs per batch create: HubSpot's CRM object limits, quoted in
# HubSpot/hubspot-api-nodejs#412 ("supports up to 100 objects per request"); no
# stored HubSpot page states it for notes (docs/vendors.md, Unverified).
NOTES_BATCH_MAX = 100

T = TypeVar("T")


class Caller(Protocol):
    """``HubSpotSource._call``: one SDK call through the source's VendorClient."""

    def __call__(self, op: str, fn: Callable[[hubspot.Client], T], *, replay_safe: bool = True,
                 search: bool = False) -> T: ...


class NoteWriter:
    """``attach`` for ``HubSpotSource``: ``call`` runs the SDK calls, ``deal_of``
    names an invoice's deal ("" for none), ``associations`` is the mapping's table."""

    def __init__(self, call: Caller, deal_of: Callable[[str], str], objects: Mapping[str, str],
                 associations: Mapping[str, Any], settings: Any) -> None:
        self._call, self._deal_of, self._objects = call, deal_of, objects
        self._associations, self.settings = associations, settings
        self._note_to_invoice: dict[str, Any] | None = None  # {"associationCategory", "associationTypeId"}

    def attach(self, ref: str, document: Document, *, may_exist: bool, deal: str | None = None) -> str:
        """Upload ``document`` to Files and log a note carrying it on the invoice (and its
        deal: ``deal`` when the caller knows it, else read)."""
        folder = self._folder()
        file_id = self._find_file(folder, document.name) if may_exist else None
        if file_id is not None:
            note_id = self._find_note(file_id)
            if note_id is not None:
                return note_id
        if file_id is None:
            file_id = self._upload(folder, document)
        body = self._note(ref, file_id, document, deal)
        answer = self._call("notes.create", lambda c: c.crm.objects.basic_api.create(
            self._objects["note"], SimplePublicObjectInputForCreate(**body),
            _request_timeout=self.settings.timeout), replay_safe=False)
        return str(answer.id)

    def attach_documents(self, orders: Sequence[AttachOrder]) -> dict[str, str | PermanentError]:
        """Each order's file uploaded, then its note created in batches of 100; an order an
        earlier attempt may have written is looked up first, one by one. An order missing
        from the answer (its upload or its note did not go through) is not written twice:
        the pipeline retries it with ``may_exist``, which finds its file."""
        done: dict[str, str | PermanentError] = {}
        fresh: list[tuple[AttachOrder, str]] = []
        for order in orders:
            try:
                if order.may_exist:
                    done[order.key] = self.attach(order.ref, order.document, may_exist=True,
                                                  deal=order.invoice.deal_id)
                else:
                    fresh.append((order, self._upload(self._folder(), order.document)))
            except PermanentError as exc:
                done[order.key] = exc
            except RetryableError:
                break  # the vendor is struggling: what is uploaded gets its notes, the rest waits
        for start in range(0, len(fresh), NOTES_BATCH_MAX):
            done.update(self._create_notes(fresh[start:start + NOTES_BATCH_MAX]))
        return done

    def _create_notes(self, chunk: Sequence[tuple[AttachOrder, str]]) -> dict[str, str]:
        by_file = {file_id: order.key for order, file_id in chunk}
        inputs = [SimplePublicObjectBatchInputForCreate(
            **self._note(order.ref, file_id, order.document, order.invoice.deal_id), object_write_trace_id=order.key)
            for order, file_id in chunk]
        body = BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
        # 201 when all were created, 207 with errors[] for those that were not (the SDK
        # returns both: hubspot/crm/objects/notes/api/batch_api.py _response_types_map)
        answer = self._call("notes.batch_create", lambda c: c.crm.objects.notes.batch_api.create(
            body, _request_timeout=self.settings.timeout), replay_safe=False)
        created: dict[str, str] = {}
        for result in answer.results or []:
            key = by_file.get(str((result.properties or {}).get("hs_attachment_ids"))) or result.object_write_trace_id
            if key in by_file.values():
                created[key] = str(result.id)
        return created

    def _folder(self) -> str:
        return "/" + self.settings.folder_path.strip("/")

    def _find_file(self, folder: str, name: str) -> str | None:
        stem = name.rsplit(".", 1)[0]
        answer = self._call("files.search", lambda c: c.files.files_api.do_search(
            name=stem, limit=100, _request_timeout=self.settings.timeout))
        wanted = f"{folder.rstrip('/')}/{name}"
        return next((str(f.id) for f in answer.results or [] if f.path == wanted and not f.archived), None)

    def _find_note(self, file_id: str) -> str | None:
        request = PublicObjectSearchRequest(
            filter_groups=[{"filters": [{"propertyName": "hs_attachment_ids", "operator": "EQ", "value": file_id}]}],
            properties=["hs_attachment_ids"], limit=10)
        answer = self._call("notes.search", lambda c: c.crm.objects.search_api.do_search(
            self._objects["note"], request, _request_timeout=self.settings.timeout), search=True)
        return str(answer.results[0].id) if answer.results else None

    def _upload(self, folder: str, document: Document) -> str:
        with tempfile.TemporaryDirectory(prefix="pouracquit-") as tmp:
            path = Path(tmp) / Path(document.name).name
            path.write_bytes(document.content)
            options = json.dumps({"access": "PRIVATE", "overwrite": False, "duplicateValidationStrategy": "NONE"})
            answer = self._call("files.upload", lambda c: c.files.files_api.upload(
                file=str(path), folder_path=folder, file_name=document.name, options=options,
                _request_timeout=self.settings.timeout), replay_safe=False)
        return str(answer.id)

    def _note_to_invoice_type(self) -> dict[str, Any]:
        """The association type a note links to an invoice with, read once per process:
        HubSpot publishes no id for this pair (hubspot-api-python's association_type.py
        has none), so GET /crm/v4/associations/notes/invoices/labels names it: the
        unlabelled HUBSPOT_DEFINED type, or the label the mapping names."""
        if self._note_to_invoice is None:
            wanted = self._associations.get("note_to_invoice_label") or None
            answer = self._call("associations.labels", lambda c: c.crm.associations.v4.schema.definitions_api.get_all(
                self._objects["note"], self._objects["invoice"], _request_timeout=self.settings.timeout))
            found = next((t for t in answer.results or [] if (t.label or None) == wanted
                          and (wanted is not None or t.category == "HUBSPOT_DEFINED")), None)
            if found is None:
                raise ConfigError(f"HubSpot has no note-to-invoice association type labelled {wanted!r}: fix "
                                  f"associations.note_to_invoice_label in the HubSpot mapping (empty: HubSpot's own)")
            self._note_to_invoice = {"associationCategory": found.category, "associationTypeId": int(found.type_id)}
        return self._note_to_invoice

    def _note(self, ref: str, file_id: str, document: Document, deal: str | None) -> dict[str, Any]:
        """A note's properties and associations (invoice, and deal unless turned off)."""
        targets = [(ref, self._note_to_invoice_type())]
        if self.settings.attach_to_deal:
            deal = self._deal_of(ref) if deal is None else deal
            if deal:
                # 214 is HubSpot's published NOTE_TO_DEAL (hubspot-api-python hubspot/crm/association_type.py)
                targets.append((deal, {"associationCategory": "HUBSPOT_DEFINED",
                                       "associationTypeId": int(self._associations["note_to_deal"])}))
        return {"properties": {"hs_timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                               "hs_attachment_ids": file_id,
                               "hs_note_body": f"Facture acquittée : {document.name} (sha256 {document.sha256[:16]})"},
                "associations": [{"to": {"id": to}, "types": [spec]} for to, spec in targets]}
