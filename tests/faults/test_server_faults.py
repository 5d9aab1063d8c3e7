"""`latent-atlas web --serve`'s server hit with raw sockets: it serves only regular files inside the site,
answers malformed requests with 400 and strange Hosts with 421, lists no folder, drops idle connections
and bounds how many it serves at once."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from latent_atlas.web import serve

SECRET = b"a file outside the site"


@pytest.fixture
def site(tmp_path) -> Path:
    root = tmp_path / "site"
    (root / "models" / "empty").mkdir(parents=True)
    (root / "index.html").write_text("<p>the explorer</p>")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "index.html").write_bytes(SECRET)
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "folder-link").symlink_to(tmp_path / "outside")
    (root / "inner-link.html").symlink_to(root / "index.html")  # a link that stays inside is served
    return root


@pytest.fixture
def server(site):
    server, _ = serve.serve_in_thread(site)
    yield server
    server.shutdown()
    server.server_close()


def request(server, raw: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(server.server_address[:2], timeout=timeout) as connection:
        connection.sendall(raw)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    return data


def get(server, path: bytes, host: bytes | None = None) -> tuple[int, bytes]:
    host = host if host is not None else f"127.0.0.1:{server.server_address[1]}".encode()
    answer = request(server, b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    return int(answer.split(b" ", 2)[1]), answer


def test_the_site_is_served(server):
    assert get(server, b"/")[0] == 200 and b"the explorer" in get(server, b"/index.html")[1]
    assert b"the explorer" in get(server, b"/inner-link.html")[1]
    assert get(server, b"/", b"localhost")[0] == 200


@pytest.mark.parametrize("path", [b"/link.txt", b"/folder-link/", b"/folder-link/index.html", b"/../secret.txt",
                                  b"/%2e%2e/secret.txt", b"/..%2fsecret.txt", b"/..\\secret.txt",
                                  b"http://127.0.0.1/../secret.txt", b"//../secret.txt"])
def test_nothing_outside_the_site_is_served(server, path):
    status, answer = get(server, path)
    assert status == 404 and SECRET not in answer


def test_a_folder_without_index_is_not_listed(server):
    status, answer = get(server, b"/models/empty/")
    assert status == 404 and b"Directory listing" not in answer


@pytest.mark.parametrize("path", [b"/a%00b", b"/index.html%00.png", b"/%ff%fe%80"])
def test_malformed_paths_get_400_and_no_traceback(server, path, capsys):
    status, _ = get(server, path)
    assert status in (400, 404) if path == b"/%ff%fe%80" else status == 400
    assert "Traceback" not in capsys.readouterr().err
    assert get(server, b"/")[0] == 200  # and the server goes on


def test_a_raw_nul_in_the_request_line_gets_400(server, capsys):
    answer = request(server, b"GET /in\x00dex.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 400") and "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("host", [b"evil.example", b"evil.example:80", b"127.0.0.1.evil.example", b"127.0.0.1:1"])
def test_only_loopback_host_names_are_answered(server, host):
    status, answer = get(server, b"/", host)
    assert status == 421 and b"the explorer" not in answer


def test_an_idle_connection_is_dropped(site, monkeypatch):
    monkeypatch.setattr(serve.SiteHandler, "timeout", 0.5)
    server, _ = serve.serve_in_thread(site)
    try:
        with socket.create_connection(server.server_address[:2], timeout=10) as connection:
            connection.sendall(b"GET / HTTP/1.1\r\n")  # and then nothing
            started = time.perf_counter()
            while connection.recv(65536):
                pass
            assert time.perf_counter() - started < 5
    finally:
        server.shutdown()
        server.server_close()


def test_connections_beyond_the_bound_get_503_at_once(site, monkeypatch):
    monkeypatch.setattr(serve, "SERVER_MAX_CONNECTIONS", 3)
    server, _ = serve.serve_in_thread(site)
    stalled = [socket.create_connection(server.server_address[:2], timeout=10) for _ in range(3)]
    try:
        time.sleep(0.3)  # the three are accepted and each holds a thread
        started = time.perf_counter()
        status, _ = get(server, b"/")
        assert status == 503 and time.perf_counter() - started < 2
        for connection in stalled:
            connection.close()
        deadline = time.monotonic() + 5
        while get(server, b"/")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()


def test_a_burst_of_clients_is_queued_not_dropped(server):
    connections = [socket.create_connection(server.server_address[:2], timeout=5) for _ in range(200)]
    assert server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    try:
        started = time.perf_counter()
        assert get(server, b"/")[0] == 200
        assert time.perf_counter() - started < 1  # no SYN waited for a retransmission
    finally:
        for connection in connections:
            connection.close()
