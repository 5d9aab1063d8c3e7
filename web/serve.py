"""Serves a built site on 127.0.0.1 with the headers that make the page cross-origin isolated.

Cross-Origin-Opener-Policy: same-origin plus Cross-Origin-Embedder-Policy: require-corp give the page
SharedArrayBuffer, which onnxruntime-web needs to run WASM on several threads.

It serves only what a static host would: regular files inside the site after resolving links (no
directory listings), to requests whose Host is a loopback name the server binds to; malformed requests
get 400, idle connections are dropped, and the number of connections at once is bounded
(runtime/limits.py)."""

from __future__ import annotations

import functools
import http.server
import os
import stat
import sys
import threading
import urllib.parse
from pathlib import Path

from latent_atlas.runtime.limits import SERVER_IDLE_TIMEOUT_S, SERVER_LISTEN_BACKLOG, SERVER_MAX_CONNECTIONS

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# The Host names each loopback address answers to; a page reached under any other name (DNS rebinding:
# a hostile site's name pointed at 127.0.0.1) is refused.
LOOPBACK_NAMES = {"127.0.0.1": ("127.0.0.1", "localhost"), "::1": ("[::1]", "localhost"),
                  "localhost": ("localhost", "127.0.0.1", "[::1]")}
BUSY_RESPONSE = (b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
                 b"Connection: close\r\n\r\n")


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
                      ".json": "application/json", ".onnx": "application/octet-stream",
                      ".npz": "application/octet-stream"}
    timeout = SERVER_IDLE_TIMEOUT_S  # set on the socket: a read or write that waits longer ends the connection

    def end_headers(self) -> None:
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if "\0" in self.path or "\0" in urllib.parse.unquote(self.path):
            self.send_error(400, "NUL in the request path")
            return False
        host = self.headers.get("Host")
        if host is not None and not self.server.answers_to(host):
            self.send_error(421, f"this server answers only to {', '.join(self.server.host_names())}")
            return False
        return True

    def send_head(self):
        try:
            file = self._site_file()
        except (ValueError, OSError):  # a path the file system cannot even hold (undecodable bytes)
            self.send_error(400, "malformed request path")
            return None
        if file is None:
            self.send_error(404, "File not found")
            return None
        return super().send_head()

    def _site_file(self) -> str | None:
        """The regular file inside the site (its index.html for a folder) this request names, links
        resolved, or None; the standard translation already drops `..` and drive parts."""
        root = os.path.realpath(self.directory)
        path = os.path.realpath(self.translate_path(self.path))
        if os.path.isdir(path):
            path = os.path.realpath(os.path.join(path, "index.html"))
        inside = path == root or path.startswith(root.rstrip(os.sep) + os.sep)
        try:
            return path if inside and stat.S_ISREG(os.stat(path).st_mode) else None
        except FileNotFoundError:
            return None

    def list_directory(self, path):  # a static host shows no folder listings; send_head never gets here
        self.send_error(404, "File not found")
        return None

    def copyfile(self, source, outputfile) -> None:
        # The kernel copies the file to the socket (sendfile): the 11 MB WASM build is on the page's
        # critical path, and Python's 64 KB writes made its transfer a fifth of the cold load.
        self.connection.sendfile(source)

    def log_message(self, format, *args) -> None:  # one line per request would drown the URL
        pass


class SiteServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = SERVER_LISTEN_BACKLOG

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(SERVER_MAX_CONNECTIONS)

    def host_names(self) -> tuple[str, ...]:
        host = self.server_address[0]
        return LOOPBACK_NAMES.get(host, (f"[{host}]" if ":" in host else host,))

    def answers_to(self, host: str) -> bool:
        """Whether a request's Host header names this server: a loopback name it binds to, with its port
        or none."""
        host = host.strip().lower()
        if host.startswith("["):  # an IPv6 literal: [::1]:port
            name, _, port = host.partition("]")
            name, port = f"{name}]", port.removeprefix(":")
        else:
            name, _, port = host.partition(":")
        return name in self.host_names() and port in ("", str(self.server_address[1]))

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):  # full: say so now rather than start another thread
            try:
                request.settimeout(1)
                request.sendall(BUSY_RESPONSE)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        # A browser that closes a connection early (a new page, a cancelled fetch) is not an error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def make_server(site: Path, host: str = "127.0.0.1", port: int = 0) -> SiteServer:
    return SiteServer((host, port), functools.partial(SiteHandler, directory=str(site)))


def url_of(server: SiteServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def serve_in_thread(site: Path, host: str = "127.0.0.1", port: int = 0) -> tuple[SiteServer, str]:
    """Starts serving `site` in a daemon thread; returns the server (call .shutdown()) and its URL."""
    server = make_server(site, host, port)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return server, url_of(server)
