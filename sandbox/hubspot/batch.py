"""Creating CRM objects in the HubSpot sandbox, one or many per call.

* ``POST /crm/v3/objects/{type}`` (``basic_api.create``): one object with its
  associations, 201 and the object;
* ``POST /crm/v3/objects/{type}/batch/create`` (hubspot-api-client 12:
  ``crm.objects.notes.batch_api.create``; HubSpot's page:
  https://developers.hubspot.com/docs/api-reference/legacy/crm/activities/notes/batch/create-notes):
  ``{"inputs": [{"properties", "associations", "objectWriteTraceId"}]}``, at
  most 100 inputs (HubSpot/hubspot-api-nodejs#412, quoting HubSpot's limits);
  201 ``{status, results, startedAt, completedAt}`` when every input was
  created, 207 with ``numErrors`` and ``errors[]`` when some were not (the SDK's
  response map: notes/api/batch_api.py). ``results`` come in no particular
  order, as HubSpot's do (a maintainer: "There is no way to do it",
  HubSpot/hubspot-api-nodejs#190). An invalid property refuses the whole batch
  (400), an association to a missing record fails that input alone; the
  ``objectWriteTraceId`` is not echoed (docs/vendors.md, Unverified).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pouracquit.sandbox.server import HttpError, Request, Response

from .search import validation_error

if TYPE_CHECKING:
    from .emulator import HubSpotSandbox

BATCH_CREATE_MAX = 100


def _check_properties(object_type: str, properties: dict[str, Any]) -> None:
    if object_type == "notes" and not properties.get("hs_timestamp"):
        raise validation_error("Property values were not valid: hs_timestamp is required for notes")


def _links(box: HubSpotSandbox, object_type: str, associations: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The (type, id) each association names; HttpError when a type or a record is wrong."""
    links = []
    for association in associations:
        to_id = str((association.get("to") or {}).get("id", ""))
        for spec in association.get("types") or []:
            to_type = next((b for (a, b) in box.store.association_types
                            if a == object_type and box.store.type_id(a, b) == spec.get("associationTypeId")), None)
            if to_type is None or spec.get("associationCategory") != "HUBSPOT_DEFINED":
                raise validation_error(f"invalid association type {spec!r} for {object_type}")
            box.record(to_type, to_id)
            links.append((to_type, to_id))
    return links


def _store(box: HubSpotSandbox, object_type: str, properties: dict[str, Any],
           links: list[tuple[str, str]]) -> dict[str, Any]:
    record = box.store.create(object_type, properties)
    for to_type, to_id in links:
        box.store.associate(object_type, record["id"], to_type, to_id)
    return record


def create(box: HubSpotSandbox, request: Request) -> Response:
    object_type, body = request.params["type"], request.json()
    properties = body.get("properties") or {}
    _check_properties(object_type, properties)
    with box.lock:
        record = _store(box, object_type, properties, _links(box, object_type, body.get("associations") or []))
        return Response(status=201, body=box.view(record, None))


def batch_create(box: HubSpotSandbox, request: Request) -> Response:
    object_type = request.params["type"]
    inputs = request.json().get("inputs") or []
    if len(inputs) > BATCH_CREATE_MAX:
        raise validation_error(f"Batch input cannot exceed {BATCH_CREATE_MAX} inputs, got {len(inputs)}")
    for item in inputs:
        _check_properties(object_type, item.get("properties") or {})
    started = datetime.now(UTC).isoformat()
    results, errors = [], []
    with box.lock:
        for item in inputs:
            try:
                links = _links(box, object_type, item.get("associations") or [])
            except HttpError as refused:
                said = refused.response.body
                errors.append({"status": "error", "category": said.get("category", "VALIDATION_ERROR"),
                               "message": said.get("message", ""), "context": {}, "errors": []})
                continue
            results.append(box.view(_store(box, object_type, item.get("properties") or {}, links), None))
    random.shuffle(results)  # HubSpot's answer order is not the input order
    answer: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                              "completedAt": datetime.now(UTC).isoformat()}
    if errors:
        return Response(status=207, body={**answer, "numErrors": len(errors), "errors": errors})
    return Response(status=201, body=answer)
