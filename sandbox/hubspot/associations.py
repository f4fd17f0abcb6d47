"""The HubSpot sandbox's associations v4 endpoints, as hubspot-api-client 12
(hubspot/crm/associations/v4) calls them:

* ``POST /crm/v4/associations/{from}/{to}/batch/read``: the records linked to
  each input id, at most 1,000 inputs;
* ``GET /crm/v4/associations/{from}/{to}/labels`` (schema ``definitions_api.get_all``):
  ``{"results": [{"category", "typeId", "label"}]}``, the unlabelled default
  type with ``label: null``; the id of a pair HubSpot publishes none for
  (note -> invoice) is only learnt here;
* ``PUT /crm/v4/objects/{from}/{id}/associations/default/{to}/{toId}``
  (``basic_api.create_default``): links two records with the default type and
  answers a ``BatchResponsePublicDefaultAssociation`` with both directions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pouracquit.sandbox.server import Request, Response

from .search import validation_error
from .store import OBJECT_TYPES

if TYPE_CHECKING:
    from .emulator import HubSpotSandbox


def _pair(request: Request) -> tuple[str, str]:
    from_type, to_type = request.params["from"], request.params["to"]
    if from_type not in OBJECT_TYPES or to_type not in OBJECT_TYPES:
        raise validation_error(f"Unable to infer object type from: {from_type}/{to_type}")
    return from_type, to_type


def batch_read(box: HubSpotSandbox, request: Request) -> Response:
    from_type, to_type = _pair(request)
    inputs = request.json().get("inputs") or []
    if len(inputs) > 1000:
        raise validation_error(f"Batch input cannot exceed 1000 inputs, got {len(inputs)}")
    started = datetime.now(UTC).isoformat()
    results = []
    with box.lock:
        type_id = box.store.type_id(from_type, to_type)
        for item in inputs:
            ids = box.store.associated(from_type, str(item.get("id")), to_type)
            if ids:
                results.append({"from": {"id": str(item.get("id"))}, "to": [
                    {"toObjectId": i, "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}]} for i in ids]})
    return Response(body={"status": "COMPLETE", "results": results, "startedAt": started,
                          "completedAt": datetime.now(UTC).isoformat()})


def labels(box: HubSpotSandbox, request: Request) -> Response:
    from_type, to_type = _pair(request)
    with box.lock:
        type_id = box.store.type_id(from_type, to_type)
    found = [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}] if type_id else []
    return Response(body={"results": found})


def create_default(box: HubSpotSandbox, request: Request) -> Response:
    from_type, to_type = request.params["type"], request.params["to"]
    if to_type not in OBJECT_TYPES:
        raise validation_error(f"Unable to infer object type from: {to_type}")
    started = datetime.now(UTC).isoformat()
    with box.lock:
        forward, backward = box.store.type_id(from_type, to_type), box.store.type_id(to_type, from_type)
        if not forward:
            raise validation_error(f"{from_type} cannot be associated with {to_type}")
        box.record(from_type, request.params["id"])
        box.record(to_type, request.params["to_id"])
        box.store.associate(from_type, request.params["id"], to_type, request.params["to_id"])
    results: list[dict[str, Any]] = [
        {"from": {"id": a}, "to": {"id": b},
         "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}}
        for a, b, type_id in ((request.params["id"], request.params["to_id"], forward),
                              (request.params["to_id"], request.params["id"], backward))]
    return Response(body={"status": "COMPLETE", "results": results, "startedAt": started,
                          "completedAt": datetime.now(UTC).isoformat()})
