"""Notes on a record in the Zoho sandbox: ``POST`` and ``GET
/crm/v8/{module}/{record_id}/Notes``, and ``POST /crm/v8/Notes`` for notes on many records.

As Zoho documents them (https://www.zoho.com/crm/developer/docs/api/v7/create-notes.html,
v4 page for the limit): ``{"data": [{"Note_Title", "Note_Content", ...}]}``, at
most 100 notes per call, ``Note_Content`` mandatory; each note answers on its own
(``{"code": "SUCCESS", "details": {"id", ...}, "message": "record added",
"status": "success"}``, or an error entry), 201 when all were added. A record
without notes lists as 204 No Content, like its attachments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pouracquit.sandbox.server import Handler, HttpError, Request, Response

from .store import zoho_time

if TYPE_CHECKING:
    from .emulator import ZohoSandbox

NOTES_PER_CALL = 100  # "You can create a maximum of 100 notes per API call" (v4 create-notes page)
_OWNER = {"name": "Sandbox Admin", "id": "5725767000000250001"}


def install(box: ZohoSandbox, api: Any, module: str, record: str) -> dict[str, list[dict[str, Any]]]:
    """Register the notes routes on ``box`` (``api`` wraps a handler with auth and limits);
    returns the notes by parent record id, which the routes keep."""
    notes: dict[str, list[dict[str, Any]]] = {}

    def add(item: Any, module_name: str, parent: str) -> dict[str, Any]:
        """One note as Zoho answers it, added under record ``parent`` of ``module_name``."""
        if not isinstance(item, dict) or not str(item.get("Note_Content") or "").strip():
            return {"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "Note_Content"},
                    "message": "required field not found", "status": "error"}
        if parent not in box.store.records.get(module_name, {}):
            return {"code": "INVALID_DATA", "details": {"api_name": "Parent_Id"}, "message": "invalid data",
                    "status": "error"}
        now = zoho_time(box.store.tick())
        note = {"id": box.store.new_id(), "Note_Title": item.get("Note_Title") or "",
                "Note_Content": item["Note_Content"], "Created_Time": now, "Modified_Time": now,
                "Parent_Id": {"module": {"api_name": module_name}, "id": parent}}
        notes.setdefault(parent, []).append(note)
        return {"code": "SUCCESS", "details": {"Modified_Time": now, "Modified_By": _OWNER, "Created_Time": now,
                                               "id": note["id"], "Created_By": _OWNER},
                "message": "record added", "status": "success"}

    def items_of(request: Request) -> list[Any]:
        items = request.json().get("data")
        if not isinstance(items, list) or not items:
            raise HttpError(400, {"code": "INVALID_DATA", "details": {}, "message": "data is missing",
                                  "status": "error"})
        if len(items) > NOTES_PER_CALL:
            raise HttpError(400, {"code": "LIMIT_EXCEEDED", "details": {"limit": NOTES_PER_CALL},
                                  "message": "the number of notes exceeds the limit", "status": "error"})
        return items

    def answered(answers: list[dict[str, Any]]) -> Response:
        ok = all(a["status"] == "success" for a in answers)
        return Response(status=201 if ok else 207, body={"data": answers})

    def create(request: Request) -> Response:
        items = items_of(request)
        with box.lock:
            box._parent(request)
            return answered([add(item, request.params["module"], request.params["id"]) for item in items])

    def create_many(request: Request) -> Response:
        """``POST /crm/v8/Notes``: each note names its record, ``Parent_Id`` as v6+ write it
        (``{"module": {"api_name": ...}, "id": ...}``); answers in input order."""
        items = items_of(request)
        with box.lock:
            answers = []
            for item in items:
                parent = item.get("Parent_Id") if isinstance(item, dict) else None
                if not isinstance(parent, dict) or not isinstance(parent.get("module"), dict):
                    answers.append({"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "Parent_Id"},
                                    "message": "required field not found", "status": "error"})
                    continue
                answers.append(add(item, str(parent["module"].get("api_name") or ""), str(parent.get("id") or "")))
            return answered(answers)

    def listing(request: Request) -> Response:
        names = box._fields(request)
        with box.lock:
            box._parent(request)
            items = [{"id": n["id"], **{k: n.get(k) for k in names if k != "id"}}
                     for n in notes.get(request.params["id"], [])]
        if not items:
            return Response(status=204)
        return Response(body={"data": items, "info": {"per_page": 200, "count": len(items), "page": 1,
                                                      "more_records": False}})

    handlers: tuple[tuple[str, str, Handler], ...] = (("POST", "notes_create", create), ("GET", "notes_list", listing))
    for method, name, handler in handlers:
        box.route(method, rf"/crm/v8/{module}/{record}/Notes", name, api(handler))
    box.route("POST", r"/crm/v8/Notes", "notes_create_many", api(create_many))
    return notes
