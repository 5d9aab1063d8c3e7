"""Serves a built site on 127.0.0.1 with the headers that make the page cross-origin isolated.

Cross-Origin-Opener-Policy: same-origin plus Cross-Origin-Embedder-Policy: require-corp give the page
SharedArrayBuffer, which onnxruntime-web needs to run WASM on several threads."""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from pathlib import Path

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
                      ".json": "application/json", ".onnx": "application/octet-stream",
                      ".npz": "application/octet-stream"}

    def end_headers(self) -> None:
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def copyfile(self, source, outputfile) -> None:
        # The kernel copies the file to the socket (sendfile): the 11 MB WASM build is on the page's
        # critical path, and Python's 64 KB writes made its transfer a fifth of the cold load.
        self.connection.sendfile(source)

    def log_message(self, format, *args) -> None:  # one line per request would drown the URL
        pass


class SiteServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

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
