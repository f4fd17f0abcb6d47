"""``pouracquit sync --record DIR``: every vendor request and answer of a sync, redacted, as replayable files.

Where it listens: urllib3's ``HTTPConnectionPool.urlopen``. Every connector's HTTP goes through it —
simple-salesforce, python-quickbooks, intuit-oauth, the Zoho and Xero connectors through ``requests``
(whose HTTPAdapter sends with ``urlopen``), hubspot-api-client through its own urllib3 ``PoolManager`` —
so one hook sees every vendor call with its final answer (urllib3's own retries happen inside it; only
the outermost call of a thread is recorded, the retries the connectors make are separate calls).

What it writes in DIR: ``exchanges.jsonl`` (one request and its answer a line, in the order they
finished) and ``session.json`` (the connections' non-secret settings, the numbering settings and the
receipts the sync produced, which a replay must produce again). Everything goes through
core.redaction first; binary bodies (PDF uploads, multipart) are kept as their SHA-256 and length.
tests/replay_harness.py replays a session; docs/recording.md says how and what the limits are.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from urllib3 import HTTPResponse
from urllib3.connectionpool import HTTPConnectionPool

from pouracquit.common.errors import ConfigError

from .redaction import SECRET_HEADERS, Redactor, form, is_secret_key, json_or_none, parse_form

if TYPE_CHECKING:
    from .service import Service

FORMAT = 1
EXCHANGES, SESSION = "exchanges.jsonl", "session.json"
# Headers a replay needs (content type, paging and rate-limit hints); the rest (dates, trace ids,
# server banners) only make recordings noisy.
KEPT_HEADERS = frozenset({"content-type", "location", "retry-after", "x-ratelimit-remaining",
                          "x-ratelimit-limit", "x-minlimit-remaining", "x-daylimit-remaining",
                          "x-hubspot-ratelimit-remaining", "intuit_tid", "idempotency-key"})
_DROPPED_ON_REPLAY = frozenset({"content-encoding", "transfer-encoding", "content-length"})


# Query parameters whose value is an idempotency key hashed from what a run renders (QuickBooks hashes the
# PDF's SHA-256 and the customers' real names into ``requestid``): matched on their presence only.
VOLATILE_QUERY = frozenset({"requestid"})


def match_key(method: str, url: str) -> str:
    """What a replayed request is matched on: method, path and the sorted query (host and port ignored)."""
    parts = urlsplit(url)
    pairs = sorted((k, "*" if k.lower() in VOLATILE_QUERY else v)
                   for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return f"{method.upper()} {unquote(parts.path)}" + (f"?{urlencode(pairs)}" if pairs else "")


# A file sent inside JSON (Salesforce ContentVersion.VersionData is the PDF in base64): kept as its hash.
_BLOB = re.compile(r"[A-Za-z0-9+/=\r\n]{512,}")
_BLOB_MARK = "omitted base64 file"


def _blobs(value: Any, fingerprint: bool = False) -> Any:
    """``value`` with each base64 file replaced by its hash and length (by one mark in a fingerprint,
    since a PDF rendered again differs)."""
    if isinstance(value, dict):
        return {k: _blobs(v, fingerprint) for k, v in value.items()}
    if isinstance(value, list):
        return [_blobs(v, fingerprint) for v in value]
    if isinstance(value, str) and (value.startswith(_BLOB_MARK) or _BLOB.fullmatch(value)):
        if fingerprint:
            return _BLOB_MARK
        return f"{_BLOB_MARK}: sha256 {hashlib.sha256(value.encode()).hexdigest()}, {len(value)} characters"
    return value


def body_fingerprint(body: dict[str, Any]) -> str:
    """A stored request body as compared on replay: canonical JSON, the text, the text parts of an
    upload (a file's bytes are left out: a PDF is rendered anew, with its own time stamps)."""
    if "parts" in body:
        return json.dumps([body_fingerprint(p) for p in body["parts"]], ensure_ascii=False)
    if "json" in body:
        return json.dumps(_blobs(body["json"], True), sort_keys=True, ensure_ascii=False)
    text = body.get("text")
    if text is None:
        return ""
    parsed = json_or_none(text)
    return json.dumps(_blobs(parsed, True), sort_keys=True, ensure_ascii=False) if parsed is not None else text


def stored_body(raw: bytes | None, content_type: str) -> dict[str, Any]:
    """A request body as a recording stores it (before redaction), for comparison on replay."""
    return _decode(raw, content_type) if raw is not None else {"omitted": "stream"}


def _omitted(raw: bytes, content_type: str) -> dict[str, Any]:
    return {"omitted": {"sha256": hashlib.sha256(raw).hexdigest(), "length": len(raw), "content_type": content_type}}


def _multipart(raw: bytes, content_type: str) -> dict[str, Any]:
    """An upload's parts: the text ones (file name, metadata JSON) kept, a file (a filename, a binary type
    or base64 content) as hash and length. python-quickbooks separates lines with LF, not CRLF."""
    boundary = content_type.partition("boundary=")[2].split(";")[0].strip('"')
    parts = []
    for chunk in raw.split(b"--" + boundary.encode())[1:-1] if boundary else []:
        head, content = [*re.split(rb"\r?\n\r?\n", chunk.strip(b"\r\n"), maxsplit=1), b""][:2]
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in re.split(r"\r?\n", head.decode("latin-1"))) if v}
        disposition, part_type = headers.get("content-disposition", ""), headers.get("content-type", "")
        is_file = "filename=" in disposition or "base64" in headers.get("content-transfer-encoding", "") or \
            any(t in part_type for t in ("pdf", "octet-stream", "image/"))
        part: dict[str, Any] = {"disposition": disposition, "content_type": part_type}
        part |= _omitted(content, part_type) if is_file else _decode(content, part_type or "text/plain")
        parts.append(part)
    return {"parts": parts} if parts else _omitted(raw, content_type)


def _decode(raw: bytes, content_type: str) -> dict[str, Any]:
    """A body as stored: JSON or text, a multipart's parts, or (PDFs, anything not UTF-8) hash and length."""
    if not raw:
        return {}
    if content_type.startswith("multipart/"):
        return _multipart(raw, content_type)
    binary = any(t in content_type for t in ("pdf", "octet-stream", "image/"))
    if not binary:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            binary = True
        else:
            return {"text": text}
    return _omitted(raw, content_type)


def _request_bytes(body: Any) -> bytes | None:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return None  # a stream or a generator: reading it here would take it from the vendor


class Recorder:
    """Collects the exchanges of one process while installed; ``write`` redacts and saves them."""

    def __init__(self) -> None:
        self.exchanges: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._original = HTTPConnectionPool.urlopen

    @contextmanager
    def installed(self) -> Iterator[Recorder]:
        recorder, original = self, self._original

        def urlopen(pool: HTTPConnectionPool, method: str, url: str, body: Any = None,
                    headers: Any = None, **kw: Any) -> Any:
            if getattr(recorder._local, "depth", 0):
                return original(pool, method, url, body=body, headers=headers, **kw)
            recorder._local.depth = 1
            try:
                response = original(pool, method, url, body=body, headers=headers, **kw)
            finally:
                recorder._local.depth = 0
            return recorder._capture(pool, method, url, body, dict(headers or {}), kw, response)

        HTTPConnectionPool.urlopen = urlopen  # type: ignore[method-assign]
        try:
            yield self
        finally:
            HTTPConnectionPool.urlopen = original  # type: ignore[method-assign]

    def _capture(self, pool: HTTPConnectionPool, method: str, url: str, body: Any, headers: dict[str, str],
                 kw: dict[str, Any], response: HTTPResponse) -> HTTPResponse:
        preload = kw.get("preload_content", True)
        raw = response.data if preload else response.read(decode_content=True)
        response.release_conn()
        kept = {k: v for k, v in response.headers.items() if k.lower() not in _DROPPED_ON_REPLAY}
        full_url = url if "://" in url else f"{pool.scheme}://{pool.host}:{pool.port}{url}"
        sent = _request_bytes(body)
        request_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        exchange = {
            "method": method.upper(), "url": full_url,
            "request": {"headers": headers,
                        "body": stored_body(sent, request_type)},
            "response": {"status": response.status, "reason": response.reason, "headers": kept,
                         "body": _decode(raw or b"", kept.get("Content-Type", kept.get("content-type", "")))},
        }
        with self._lock:
            exchange["seq"] = len(self.exchanges)
            self.exchanges.append(exchange)
        # the caller reads the same answer from memory, already decoded
        return HTTPResponse(body=io.BytesIO(raw or b""), headers=kept, status=response.status,
                            reason=response.reason, preload_content=preload, decode_content=False,
                            request_method=method, request_url=full_url, retries=response.retries)

    # -- writing -----------------------------------------------------------------------------------
    def write(self, directory: Path, service: Service | None = None) -> None:
        redactor = Redactor()
        for ex in self.exchanges:
            _learn(redactor, ex)
        replace = redactor.replacer()
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / EXCHANGES).open("w", encoding="utf-8") as out:
            for ex in self.exchanges:
                out.write(json.dumps(_redacted(redactor, replace, ex), ensure_ascii=False, sort_keys=True) + "\n")
        session: dict[str, Any] = {"format": FORMAT, "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                   "exchanges": len(self.exchanges)}
        if service is not None:
            session |= _session_facts(service)
        session = redactor.apply_json(session, replace)
        (directory / SESSION).write_text(json.dumps(session, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                         encoding="utf-8")


def _pairs_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def _learn(redactor: Redactor, ex: dict[str, Any]) -> None:
    redactor.collect_pairs(_pairs_of(ex["url"]))
    bodies = [ex["request"]["body"], ex["response"]["body"], *ex["request"]["body"].get("parts", [])]
    for body in bodies:
        text = body.get("text")
        if text is None:
            continue
        parsed, pairs = json_or_none(text), parse_form(text)
        if parsed is not None:
            redactor.collect_json(parsed)
        elif pairs is not None:
            redactor.collect_pairs(pairs)
        else:
            redactor.collect_text(text)


def _redacted_body(redactor: Redactor, replace: Any, body: dict[str, Any]) -> dict[str, Any]:
    if "parts" in body:
        return {"parts": [{**_redacted_body(redactor, replace, p), "disposition": replace(p["disposition"])}
                          for p in body["parts"]]}
    text = body.get("text")
    if text is None:
        return body
    parsed, pairs = json_or_none(text), parse_form(text)
    if parsed is not None:
        return {"json": redactor.apply_json(_blobs(parsed), replace)}
    if pairs is not None:
        return {"text": form(redactor.apply_pairs(pairs, replace))}
    return {"text": replace(text)}


def _redacted_headers(headers: dict[str, str], replace: Any) -> dict[str, str]:
    return {k: ("redacted" if k.lower() in SECRET_HEADERS or is_secret_key(k) else replace(str(v)))
            for k, v in headers.items() if k.lower() in KEPT_HEADERS or k.lower() in SECRET_HEADERS}


def redact_url(url: str, redactor: Redactor, replace: Any) -> str:
    parts = urlsplit(url)
    path = "/".join(quote(replace(unquote(seg)), safe="@:+,;=!$&'()*") for seg in parts.path.split("/"))
    # a volatile key is hashed from real values (QuickBooks hashes customers' names): not kept at all
    query = form([(k, "redacted" if k.lower() in VOLATILE_QUERY else v)
                  for k, v in redactor.apply_pairs(_pairs_of(url), replace)])
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def _redacted(redactor: Redactor, replace: Any, ex: dict[str, Any]) -> dict[str, Any]:
    url = redact_url(ex["url"], redactor, replace)
    return {
        "seq": ex["seq"], "method": ex["method"], "url": url, "key": match_key(ex["method"], url),
        "request": {"headers": _redacted_headers(ex["request"]["headers"], replace),
                    "body": _redacted_body(redactor, replace, ex["request"]["body"])},
        "response": {"status": ex["response"]["status"], "reason": ex["response"]["reason"],
                     "headers": _redacted_headers(ex["response"]["headers"], replace),
                     "body": _redacted_body(redactor, replace, ex["response"]["body"])},
    }


def _endpoint(settings: dict[str, Any]) -> dict[str, Any]:
    """A connector's settings without its secrets: ``{file|env}`` references become ``{"redacted": true}``."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and ({"file", "env"} & value.keys()):
            out[key] = {"redacted": True}
        elif is_secret_key(key):
            out[key] = {"redacted": True}
        else:
            out[key] = value
    return out


RECEIPT_FIELDS = ("id", "source_id", "kind", "payment_version", "status", "step", "number", "document_name",
                  "ledger_id", "ledger_attachment_id", "crm_attachment_id", "currency", "last_error")


def _session_facts(service: Service) -> dict[str, Any]:
    settings = service.settings
    connections, receipts = [], []
    states = service.store.connection_states()
    for conn in settings.connections:
        # the day the first sync took as start date when the config has none: a replay needs the same one
        kept = states[conn.name].start_date if conn.name in states else None
        start = conn.start_date or kept
        connections.append({
            "name": conn.name, "start_date": start.isoformat() if start else None,
            "refunds": conn.refunds,
            "source": {"vendor": conn.source.vendor, **_endpoint(conn.source.settings())},
            "ledger": {"vendor": conn.ledger.vendor, **_endpoint(conn.ledger.settings())},
            "mapping": conn.mapping.model_dump(),
        })
        for r in service.store.receipts(conn.name, limit=1_000_000):
            receipts.append({"connection": conn.name, "amount": str(r.amount),
                             **{f: getattr(r, f) for f in RECEIPT_FIELDS}})
    receipts.sort(key=lambda r: (r["connection"], r["source_id"], r["kind"], r["payment_version"]))
    return {"connections": connections, "numbering": settings.numbering.model_dump(mode="json"),
            "receipts": receipts}


@contextmanager
def recording(directory: str | None, service: Service) -> Iterator[None]:
    """Record the vendor traffic of the block into ``directory`` (nothing when None), even if it fails."""
    if directory is None:
        yield
        return
    target = Path(directory)
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"--record {directory}: the directory is not empty; give a new or empty one")
    recorder = Recorder()
    try:
        with recorder.installed():
            yield
    finally:
        recorder.write(target, service)
