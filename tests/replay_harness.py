"""Replays a session recorded by ``pouracquit sync --record`` (core.recording) with no vendor running.

Two interception points, because the connectors use two HTTP stacks:

* ``requests`` (simple-salesforce, python-quickbooks, intuit-oauth, Zoho, Xero): the ``responses``
  library, one callback per method for every URL, answering from the recording.
* hubspot-api-client calls urllib3 itself, which ``responses`` does not see: ``HTTPConnectionPool.urlopen``
  is replaced for the replay and answers from the same recording. (``requests`` never reaches urllib3
  while ``responses`` is active, so nothing is answered twice.) A local HTTP server for HubSpot was the
  other choice; the in-process hook needs no port or thread, and a miss raises in the caller's thread
  with the request named.

Matching: method, path and sorted query (core.recording.match_key; the host is ignored, so the
recorded sandbox ports need not exist); among recorded exchanges with that key not yet served, the one
whose request body is the same (canonical JSON, an upload's text parts), else the same once times and
hashes are masked, else the closest, the earliest recorded on a tie. Bodies decide rather than order
because receipts run on several threads: two runs interleave their calls differently. For the same
reason a GET may be asked more or fewer times than recorded (a cache that two threads fill at once):
reads are served again, writes never. Every request that finds nothing is kept in ``misses`` and
raises ``ReplayMiss``; ``unused()`` lists what the recording has that the replay never asked for.
A test asserts both empty.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import responses
from urllib3 import HTTPResponse
from urllib3.connectionpool import HTTPConnectionPool

from pouracquit.core.recording import EXCHANGES, SESSION, body_fingerprint, match_key, stored_body
from pouracquit.sandbox.launch import DEMO_SELLER, secret_file, state_key

LOCAL_FILES = frozenset({"ca_bundle"})
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


# What differs between two runs of the same sync: times stamped when a request is made (HubSpot's
# hs_timestamp) and hashes of freshly rendered PDFs (their creation time is inside). A body is compared
# with these masked when it has no identical twin in the recording.
_VOLATILE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?|\b[0-9a-f]{16,64}\b")


def _masked(fingerprint: str) -> str:
    return _VOLATILE.sub("~", fingerprint)


class ReplayMiss(AssertionError):
    """The code under test made a request the recording does not have."""


class Replayer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.session: dict[str, Any] = json.loads((directory / SESSION).read_text(encoding="utf-8"))
        lines = (directory / EXCHANGES).read_text(encoding="utf-8").splitlines()
        self.exchanges: list[dict[str, Any]] = [json.loads(line) for line in lines if line.strip()]
        self.served: list[int] = []
        self.misses: list[str] = []
        self._lock = threading.Lock()

    # -- matching ----------------------------------------------------------------------------------
    def take(self, method: str, url: str, body: Any, content_type: str) -> dict[str, Any]:
        key = match_key(method, url)
        raw = body.encode("utf-8") if isinstance(body, str) else body
        wanted = body_fingerprint(stored_body(bytes(raw) if raw is not None else b"", content_type))
        with self._lock:
            candidates = [e for e in self.exchanges if e["key"] == key and e["seq"] not in self.served]
            if not candidates and method.upper() == "GET":
                # a read asked again (a cache two threads filled at once): its last recorded answer
                candidates = [e for e in self.exchanges if e["key"] == key][-1:]
            if not candidates:
                self.misses.append(key)
                raise ReplayMiss(f"the recording in {self.directory.name} has no (more) {key}")
            prints = [body_fingerprint(e["request"]["body"]) for e in candidates]
            masked = [_masked(p) for p in prints]
            if wanted in prints:
                chosen = candidates[prints.index(wanted)]
            elif _masked(wanted) in masked:
                chosen = candidates[masked.index(_masked(wanted))]
            else:
                ratios = [SequenceMatcher(None, p, _masked(wanted)).quick_ratio() for p in masked]
                chosen = candidates[ratios.index(max(ratios))]
            self.served.append(chosen["seq"])
            return chosen["response"]

    def unused(self) -> list[str]:
        """Recorded exchanges never asked for; a GET counts as asked when its key was (reads repeat)."""
        asked = {e["key"] for e in self.exchanges if e["seq"] in self.served and e["method"] == "GET"}
        return [f"#{e['seq']} {e['key']}" for e in self.exchanges
                if e["seq"] not in self.served and e["key"] not in asked]

    # -- what the replay runs with -------------------------------------------------------------------
    def config(self, workdir: Path) -> dict[str, Any]:
        """A config for the recorded connections: secrets as files holding "redacted", fresh data dir."""
        secrets = workdir / "secrets"

        def endpoint(settings: dict[str, Any], role: str) -> dict[str, Any]:
            # no TLS is made on a replay: the recording machine's CA bundle (a sandbox's) is left out
            return {k: secret_file(secrets, f"{role}_{k}", "redacted") if v == {"redacted": True} else v
                    for k, v in settings.items() if k not in LOCAL_FILES}

        connections = []
        for conn in self.session["connections"]:
            connection = {**conn, "source": endpoint(conn["source"], "source"),
                          "ledger": endpoint(conn["ledger"], "ledger")}
            connections.append({k: v for k, v in connection.items() if v is not None})
        return {"data_dir": str(workdir / "data"), "store": {"encryption_key": state_key(secrets)},
                "seller": DEMO_SELLER, "numbering": self.session["numbering"],
                "pipeline": {"vendor_backoff_seconds": 0.05, "backoff_seconds": 0.1},
                "connections": connections}

    def receipt_ids(self) -> dict[tuple[str, str, str, int], str]:
        """(connection, source id, kind, payment version) → the recorded receipt id."""
        return {(r["connection"], r["source_id"], r["kind"], r["payment_version"]): r["id"]
                for r in self.session["receipts"]}


def _answer(recorded: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    body = recorded["body"]
    if "json" in body:
        data = json.dumps(body["json"], ensure_ascii=False).encode("utf-8")
    else:
        data = body.get("text", "").encode("utf-8")  # an omitted binary answer replays empty
    return recorded["status"], dict(recorded["headers"]), data


def _content_type(headers: Any) -> str:
    return next((str(v) for k, v in dict(headers or {}).items() if k.lower() == "content-type"), "")


@contextmanager
def replaying(replayer: Replayer) -> Iterator[Replayer]:
    """Serve every vendor request of the block from ``replayer``; nothing reaches the network."""

    def from_requests(request: Any) -> tuple[int, dict[str, str], bytes]:
        return _answer(replayer.take(request.method, request.url, request.body, _content_type(request.headers)))

    def from_urllib3(pool: HTTPConnectionPool, method: str, url: str, body: Any = None, headers: Any = None,
                     **kw: Any) -> HTTPResponse:
        full = url if "://" in url else f"{pool.scheme}://{pool.host}:{pool.port}{url}"
        recorded = replayer.take(method, full, body, _content_type(headers))
        status, answer_headers, data = _answer(recorded)
        return HTTPResponse(body=io.BytesIO(data), headers=answer_headers, status=status,
                            reason=recorded.get("reason"), preload_content=kw.get("preload_content", True),
                            decode_content=False, request_method=method, request_url=full)

    original = HTTPConnectionPool.urlopen
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in METHODS:
            mock.add_callback(method, re.compile(r".*"), callback=from_requests)
        HTTPConnectionPool.urlopen = from_urllib3  # type: ignore[method-assign]
        try:
            yield replayer
        finally:
            HTTPConnectionPool.urlopen = original  # type: ignore[method-assign]
