"""The admin API under hostile clients: idle and slow connections do not
starve it and are cut off, malformed requests get a 4xx and no traceback,
bodies are capped, an empty bearer is refused, HEAD works, stop is prompt."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from security_support import offline_settings

from pouracquit.app import admin_http
from pouracquit.app.admin import MAX_WEBHOOK_BYTES, AdminServer
from pouracquit.common.errors import ConfigError
from pouracquit.core.service import Service

TOKEN = "admin-s3cret-token"


@pytest.fixture
def admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminServer]:
    monkeypatch.setattr(admin_http, "HEAD_SECONDS", 1.0)  # the deadline, short enough to watch it work
    monkeypatch.setenv("T_ADMIN_TOKEN", TOKEN)
    settings = offline_settings(tmp_path, monkeypatch, admin={"bind": "127.0.0.1:0", "token": {"env": "T_ADMIN_TOKEN"}})
    service = Service.open(settings)
    server = AdminServer(service).start()
    try:
        yield server
    finally:
        server.stop()
        service.store.engine.dispose()


def _address(server: AdminServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _get(url: str, token: str | None = None, method: str = "GET") -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}" if token else "Bearer "} if token is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers), timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _exchange(server: AdminServer, data: bytes, wait: float = 3.0) -> bytes:
    """Send raw bytes; everything the server answers until it closes (or ``wait`` passes)."""
    with socket.create_connection(_address(server), timeout=wait) as conn:
        conn.sendall(data)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
        return answer


def test_healthz_answers_at_once_beside_200_idle_sockets(admin: AdminServer) -> None:
    idle = [socket.create_connection(_address(admin)) for _ in range(200)]
    try:
        started = time.monotonic()
        code, body = _get(admin.url + "/healthz")
        elapsed = time.monotonic() - started
        assert code == 200 and b"alive" in body
        assert elapsed < 1.0, f"/healthz took {elapsed:.2f}s beside 200 idle sockets"
        assert _get(admin.url + "/status", TOKEN)[0] == 200
        time.sleep(admin_http.HEAD_SECONDS + 1.0)
        for sock in idle:  # each was closed by the server: it sent no request in time
            sock.settimeout(2)
            assert sock.recv(1) == b""
    finally:
        for sock in idle:
            sock.close()


def test_a_client_trickling_its_headers_is_cut_off(admin: AdminServer) -> None:
    with socket.create_connection(_address(admin), timeout=5) as conn:
        started = time.monotonic()
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - started > admin_http.HEAD_SECONDS + 2:
                break
        if not closed:
            conn.settimeout(2)
            try:
                closed = conn.recv(1) == b""
            except ConnectionResetError:
                closed = True
        assert closed, "a slow header kept its connection past the deadline"
        assert time.monotonic() - started < admin_http.HEAD_SECONDS + 2.5


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "0x10"])
def test_a_malformed_content_length_is_400_without_traceback(admin: AdminServer, length: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    answer = _exchange(admin, f"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
                       .encode())
    assert answer.startswith(b"HTTP/1.1 400 ")
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Invalid HTTP request received." in err


def test_an_unread_body_does_not_leak_into_the_next_request(admin: AdminServer,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    body = b'{"not": "read"}'
    first = f"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    second = f"GET /status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    answer = _exchange(admin, first + second, wait=2.0)
    assert answer.startswith(b"HTTP/1.1 405 ")
    assert answer.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 200 OK" in answer
    half = b"POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"  # promises more than it sends
    assert _exchange(admin, half).startswith(b"HTTP/1.1 405 ")  # answered, then closed at the deadline
    assert "Traceback" not in capsys.readouterr().err


def test_webhook_bodies_are_capped(admin: AdminServer) -> None:
    declared = _exchange(admin, f"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                f"{MAX_WEBHOOK_BYTES + 1}\r\n\r\n".encode())
    assert declared.startswith(b"HTTP/1.1 413 ")
    # one byte over the cap, in chunks, and no end: the server must stop at the cap, not wait for the end
    chunks = [b"x" * 65536] * (MAX_WEBHOOK_BYTES // 65536) + [b"x"]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    answer = _exchange(admin, b"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       + chunked)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_the_token_check_and_head(admin: AdminServer) -> None:
    assert _get(admin.url + "/status")[0] == 401
    assert _get(admin.url + "/status", "")[0] == 401  # "Authorization: Bearer " with nothing after
    assert _get(admin.url + "/status", "wrong")[0] == 401
    assert _get(admin.url + "/status", TOKEN)[0] == 200
    assert _get(admin.url + "/status", TOKEN, method="HEAD") == (200, b"")
    assert _get(admin.url + "/healthz", method="HEAD") == (200, b"")
    assert _get(admin.url + "/metrics", TOKEN, method="POST")[0] == 405
    assert _get(admin.url + "/nowhere", TOKEN)[0] == 404


def test_stop_is_prompt_with_connections_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = Service.open(offline_settings(tmp_path, monkeypatch))
    server = AdminServer(service).start()
    idle = [socket.create_connection(_address(server)) for _ in range(20)]
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    with pytest.raises(OSError):
        socket.create_connection(_address(server), timeout=1)
    for sock in idle:
        sock.close()


def test_an_empty_token_never_opens_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("  \n")
    settings = offline_settings(tmp_path, monkeypatch, admin={"bind": "0.0.0.0:0",
                                                              "token": {"file": str(tmp_path / "token")}})
    service = Service.open(settings)
    with pytest.raises(ConfigError, match=r"admin\.token: secret token is empty"):
        AdminServer(service)


def test_a_busy_port_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        service = Service.open(offline_settings(tmp_path, monkeypatch, admin={"bind": f"127.0.0.1:{port}"}))
        with pytest.raises(ConfigError, match=f"admin.bind 127.0.0.1:{port} unusable: Address already in use"):
            AdminServer(service)
