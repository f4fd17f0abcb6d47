"""Every Xero Accounting API call a test made, checked against Xero's own
OpenAPI spec (``sandbox/xero/spec/xero_accounting.yaml``) with openapi-core:
the operation exists, its path, query and header parameters, the request's
content type and body, and the answer's body for the statuses the spec
documents (200, and 400 where it lists its Error shape).

The sandbox records each call as sent and answered (``XeroSandbox.exchanges``);
``violations`` lists what the spec refuses, so a test asserts it is empty.
"""

from __future__ import annotations

import base64
import functools
import json
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

import pouracquit.sandbox.xero

SPEC = Path(pouracquit.sandbox.xero.__file__).resolve().parent / "spec" / "xero_accounting.yaml"
IDENTITY = SPEC.with_name("xero-identity.yaml")
HOST = "https://api.xero.com"  # the spec's server is https://api.xero.com/api.xro/2.0


@functools.cache
def accounting_api() -> OpenAPI:
    """The parsed spec (close to 1 MB: once per test session). The spec itself is Xero's
    and is not linted here; only the calls are checked against it."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(SPEC.read_text(encoding="utf-8"), Loader=loader)
    # The spec types attachment bodies `type: string, format: byte` under application/octet-stream;
    # OpenAPI 3.0 defines `byte` as base64 text while Xero takes the raw bytes: the validator reads
    # such a body as the base64 text of the bytes sent.
    raw_as_base64 = {"application/octet-stream": lambda body, **_: base64.b64encode(body).decode()}
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None, extra_media_type_deserializers=raw_as_base64))


def _request(exchange: Mapping[str, Any]) -> MockRequest:
    headers = dict(exchange["headers"])
    content_type = (headers.get("content-type") or "").split(";")[0].strip()
    body: bytes = exchange["body"] or b""
    args = {k: v[0] for k, v in exchange["query"].items()}
    return MockRequest(HOST, exchange["method"].lower(), exchange["path"], args=args, headers=headers,
                       data=body or None, content_type=content_type or "application/json")


def violations(exchanges: Iterable[Mapping[str, Any]]) -> list[str]:
    """What the spec refuses in these calls, one line each; also the number checked via ``checked``."""
    api, found = accounting_api(), []
    for exchange in exchanges:
        where = f"{exchange['method']} {exchange['path']}"
        request = _request(exchange)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openapi-core does not model oauth2 security schemes
            try:
                api.validate_request(request)
            except Exception as exc:  # every validation error class, reported with its cause
                found.append(f"{where} request: {exc!r} {exc.__cause__!r}"[:2000])
            answer = MockResponse(json.dumps(exchange["response"]).encode(), status_code=exchange["status"],
                                  content_type=exchange["content_type"])
            try:
                api.validate_response(request, answer)
            except ResponseNotFound:
                continue  # a status the spec does not document for this operation (401, 403, 404, 429)
            except Exception as exc:
                found.append(f"{where} -> {exchange['status']}: {exc!r} {exc.__cause__!r}"[:2000])
    return found


@functools.cache
def _identity_schemas() -> dict[str, Any]:
    return dict(yaml.safe_load(IDENTITY.read_text(encoding="utf-8"))["components"]["schemas"])


def identity_errors(schema: str, value: Any) -> list[str]:
    """What ``xero-identity.yaml``'s ``schema`` (Connection, AccessToken) refuses in ``value``. Types
    and shapes only: Xero's own example dates (``2019-12-07T18:46:19.5165400``) carry no offset,
    so RFC 3339 ``date-time`` format checks would refuse Xero itself."""
    validator = OAS30Validator(_identity_schemas()[schema])
    return [error.message for error in validator.iter_errors(value)]
