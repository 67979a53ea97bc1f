"""A stand-in HTTP server on 127.0.0.1, served from a daemon thread: the fakes of GitHub and of Feature Store.

``http.server``'s ``serve_forever`` checks for ``shutdown()`` once per poll interval, half a second by default, and
``shutdown()`` blocks until it does: a fake started per test then costs a quarter of a second to stop, every test.
A short interval makes stopping immediate; the serving thread's ``select`` on one socket costs nothing meanwhile.
"""

from __future__ import annotations

import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHUTDOWN_POLL_SECONDS = 0.01
"""How often the serving loop looks for a ``shutdown()`` request."""


class BackgroundServer:
    """``ThreadingHTTPServer(("127.0.0.1", <free port>), handler)`` run on a daemon thread between ``start`` and
    ``stop`` (or as a context manager). Request threads are daemons too, so a stalled request never holds the
    process open."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self.server: socketserver.TCPServer = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS}, name=name, daemon=True
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket; in-flight request threads finish on their own."""
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join(timeout=5)
        self.server.server_close()

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
