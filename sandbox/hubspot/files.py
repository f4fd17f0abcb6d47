"""The HubSpot sandbox's Files v3 endpoints: multipart upload (``folderPath``,
``fileName``, ``options`` JSON with ``access`` and ``overwrite``; a taken name
gets ``-1``, ``-2`` ... unless overwriting), search by name, path or folder, and
get by id. Answers never carry the content."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pouracquit.sandbox.server import HttpError, Request, Response, multipart_fields

from .search import validation_error
from .store import iso_ms

if TYPE_CHECKING:
    from .emulator import HubSpotSandbox


def upload(box: HubSpotSandbox, request: Request) -> Response:
    fields = _multipart(request)
    if "file" not in fields:
        raise validation_error("a 'file' part is required")
    folder = str(fields.get("folderPath", (b"/", ""))[0].decode() or "/").rstrip("/") or ""
    raw_name = fields.get("fileName", (b"", ""))[0].decode() or fields["file"][1] or "file"
    options = json.loads(fields["options"][0]) if "options" in fields else {}
    stem, dot, extension = raw_name.rpartition(".") if "." in raw_name else (raw_name, "", "")
    store = box.store
    with box.lock:
        folder_id = store.folders.setdefault(folder or "/", store.new_id())
        taken = {f["path"] for f in store.files.values() if not f["archived"]}
        name, n = stem, 0
        while f"{folder}/{name}{dot}{extension}" in taken and not options.get("overwrite"):
            n += 1
            name = f"{stem}-{n}"
        ms = store.tick()
        file_id = store.new_id()
        content = fields["file"][0]
        store.files[file_id] = {
            "id": file_id, "name": name, "extension": extension, "path": f"{folder}/{name}{dot}{extension}",
            "parentFolderId": folder_id, "size": len(content), "type": "DOCUMENT" if extension else "OTHER",
            "access": options.get("access", "PRIVATE"), "isUsableInContent": False, "archived": False,
            "createdAt": iso_ms(ms), "updatedAt": iso_ms(ms), "encoding": extension or None,
            "url": f"{box.url}/files/v3/files/{file_id}/content", "content": content,
        }
        return Response(status=201, body=file_view(store.files[file_id]))


def search(box: HubSpotSandbox, request: Request) -> Response:
    name, path = request.arg("name"), request.arg("path")
    folders = {p for value in request.query.get("parentFolderIds", []) for p in value.split(",") if p}
    limit = int(request.arg("limit", "10") or 10)
    with box.lock:
        hits = [f for f in box.store.files.values() if not f["archived"]
                and (not name or name.lower() in f["name"].lower())
                and (not path or f["path"] == path)
                and (not folders or f["parentFolderId"] in folders)]
    return Response(body={"results": [file_view(f) for f in hits[:max(1, min(limit, 100))]]})


def get(box: HubSpotSandbox, request: Request) -> Response:
    with box.lock:
        found = box.store.files.get(request.params["id"])
    if found is None:
        raise HttpError(404, box.error_body(404, "File not found"))
    return Response(body=file_view(found))


def file_view(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "content"}


def _multipart(request: Request) -> dict[str, tuple[bytes, str]]:
    fields = multipart_fields(request)
    if fields is None:
        content_type = request.header("content-type", "") or ""
        raise validation_error(f"expected multipart/form-data, got {content_type!r}")
    return fields
