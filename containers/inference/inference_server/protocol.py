"""The HTTP connection limits uvicorn 0.54 lacks, as a subclass of its httptools protocol.

uvicorn arms no timer while a request's headers arrive, and its keep-alive timer runs only between
requests and stops at any byte: a client sending a header byte every few seconds holds a connection
forever (slowloris), and one that connects and says nothing is never closed. It puts no bound on the
size of the headers either. Its ``limit_concurrency`` answers 503 to every request on every
connection while over the limit and keeps those connections open: the count comes down only as
clients give up.
An ASGI app cannot fix any of this: it runs only once the headers are in. So this protocol adds:

* a new connection gets ``keep_alive_timeout`` to send its first byte, like an idle kept-alive one;
* ``header_timeout`` from a request's first byte to the end of its headers: 408, then closed;
* ``max_header_bytes`` of request line and headers: 431, then closed;
* a body that an early answer left unread (404, 405, 406, 413, 415) must end within ``body_timeout``
  of the answer, else the connection is closed (the app holds the bodies it reads to the same time);
* over ``max_connections`` connections in this worker, requests get the app's 503 and their
  connection is closed.

The settings come from the :class:`~inference_server.app.InferenceApp` uvicorn serves. The class reaches
into uvicorn's protocol internals: uvicorn is pinned, and the functional tests exercise each hook over
real sockets.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from .app import InferenceApp
from .payload import error_body

log = logging.getLogger("inference_server")

REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def served_app(app: object) -> InferenceApp:
    """The :class:`InferenceApp` inside the middleware uvicorn may wrap it in (each keeps it as ``.app``)."""
    found = app
    while not isinstance(found, InferenceApp):
        found = getattr(found, "app", None)
        if found is None:
            raise TypeError(f"{type(app).__name__} is not an InferenceApp: the connection limits are its settings")
    return found


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout, a header size limit and a connection cap."""

    def __init__(
        self, config: Config, server_state: ServerState, app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:  # fmt: skip
        super().__init__(config, server_state, app_state, _loop)
        served = served_app(self.app)
        self.limits = served.settings
        self.refuse_over_capacity = served.refuse_over_capacity
        self.limit_concurrency = None  # the cap is enforced in on_headers_complete, with a closing 503
        self.header_timer: asyncio.TimerHandle | None = None
        self.unread_body_timer: asyncio.TimerHandle | None = None
        self.awaiting_headers = True  # from a connection's start, or a request's end, to the next headers' end
        self.header_bytes = 0
        self.tail = b""  # last bytes seen while awaiting headers (the blank line may straddle two reads)
        self.in_body = False  # headers done, body not yet
        self.refused = False  # answered by this class and closing: nothing more is parsed

    # --- connection -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its idle timer only after a response: without this, a silent connection stays forever.
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.awaiting_headers:
            # Counted here, not in the parser's callbacks: httptools hands over a header only once it is
            # complete, so a header that never ends would otherwise grow without limit until the timeout.
            # The blank line ending the headers may straddle two reads: look across the previous read's tail
            # first, without copying the chunk (which may hold a large body after the headers).
            straddle = (self.tail + data[:3]).find(b"\r\n\r\n") if self.tail else -1
            if straddle >= 0:
                self.header_bytes += max(0, straddle + 4 - len(self.tail))
            else:
                end = data.find(b"\r\n\r\n")
                self.header_bytes += len(data) if end < 0 else end + 4
            self.tail = (self.tail + data[-3:])[-3:]
            if self.header_bytes > self.limits.max_header_bytes:
                limit = self.limits.max_header_bytes
                self._refuse(431, "header_too_large", f"request line and headers exceed {limit} bytes")
                return
        super().data_received(data)

    # --- parser callbacks ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_body = False
        # From the request's first byte: a pause between kept-alive requests is the idle timer's business.
        self.header_timer = self.loop.call_later(self.limits.header_timeout, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        self._cancel(self.header_timer)
        self.header_timer = None
        self.awaiting_headers, self.header_bytes, self.tail = False, 0, b""
        self.in_body = True
        if len(self.connections) <= self.limits.max_connections:
            super().on_headers_complete()
            return
        # uvicorn's own limit would substitute its app here; ours answers 503 in JSON and closes.
        app, self.app = self.app, self.refuse_over_capacity
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        self.in_body = False
        self.awaiting_headers = True
        if self.unread_body_timer is not None:
            # The answer went out before the body ended: from here on the connection is idle.
            self._cancel(self.unread_body_timer)
            self.unread_body_timer = None
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        answered_early = self.in_body and self.cycle is not None and self.cycle.response_complete
        if answered_early and not self.transport.is_closing():
            self.unread_body_timer = self.loop.call_later(self.limits.body_timeout, self._unread_body_too_slow)

    # --- limits -----------------------------------------------------------------------------------------

    def _headers_too_slow(self) -> None:
        self.header_timer = None
        self._refuse(408, "header_timeout", f"request headers not received within {self.limits.header_timeout} s")

    def _unread_body_too_slow(self) -> None:
        self.unread_body_timer = None
        if not self.transport.is_closing():
            self.transport.close()
            log.info("connection closed", extra={"error": "unread_body_timeout"})

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` (JSON ``{"message"}``) to a request whose headers are not complete, then close."""
        self.refused = True
        self._cancel_timers()
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # no earlier answer under way on this connection
            body = error_body(message)
            head = (
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head % (status, REASONS[status], len(body)) + body)
        self.transport.close()
        log.info("request", extra={"status": status, "error": code, "rows": 0})

    def _cancel_timers(self) -> None:
        for timer in (self.header_timer, self.unread_body_timer):
            self._cancel(timer)
        self.header_timer = self.unread_body_timer = None

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()
