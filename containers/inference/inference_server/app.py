"""The ASGI application: ``GET /ping`` and ``POST /invocations`` (SageMaker's container contract).

A bare ASGI callable rather than a framework: two routes do not need routing, and each layer a
framework adds costs time on every request (see the README's measurements). Prediction runs on the
event loop: with one worker process per core the work is CPU-bound anyway, and a thread pool would
only add hand-offs.

Coalescing: requests whose bodies arrive in the same turn of the event loop are predicted together
in one ``predict_proba`` call (their matrices stacked, the result split back). It never waits for more
requests, so an idle server answers as soon as it can; under load, scikit-learn's fixed per-call cost
(input validation, mostly) is paid once per turn instead of once per request.

Connection limits: the body must arrive within ``body_timeout`` of the app starting to read it (else 408
and the connection is closed). The header timeout, idle connections and the connection cap act before
an app runs, in :mod:`inference_server.protocol`, which answers over-capacity requests with
:meth:`InferenceApp.refuse_over_capacity`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
import sklearn
from threadpoolctl import threadpool_limits

from .errors import RequestError
from .logs import configure_logging
from .lookup import EntityLookup, entity_rows, make_lookup, parse_entity_requests, rows_matrix, scored_features
from .model import LoadedModel, load_model
from .payload import JSON, Featurizer, error_body, format_predictions, media_type, parse_records, response_format
from .settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("inference_server")

JSON_HEADER = (b"content-type", b"application/json")
CLOSE_HEADER = (b"connection", b"close")
PING_BODY = b'{"status":"healthy"}'


class Coalescer:
    """Stacks the matrices submitted in one event-loop turn into one prediction call."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], max_rows: int) -> None:
        self._predict = predict
        self._max_rows = max_rows
        self._pending: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        self._scheduled = False

    def submit(self, matrix: np.ndarray) -> asyncio.Future[np.ndarray]:
        """A future of ``matrix``'s predictions, made together with the others submitted this turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._pending.append((matrix, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)  # runs after the request handlers already queued for this turn
        return future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        group: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        rows = 0
        for item in pending:
            if group and rows + len(item[0]) > self._max_rows:
                self._run(group)
                group, rows = [], 0
            group.append(item)
            rows += len(item[0])
        if group:
            self._run(group)

    def _run(self, group: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]]) -> None:
        matrix = group[0][0] if len(group) == 1 else np.concatenate([m for m, _ in group])
        try:
            predictions = self._predict(matrix)
        except Exception as exc:  # handed to each waiting request, which answers 500
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for part, future in group:
            end = start + len(part)
            if not future.done():  # the request may have been cancelled (client gone)
                future.set_result(predictions[start:end])
            start = end


class InferenceApp:
    """ASGI callable serving one loaded model."""

    def __init__(self, model: LoadedModel, settings: Settings, lookup: EntityLookup | None = None) -> None:
        if (settings.request_mode == "entity") != (lookup is not None):
            raise ValueError("an entity-mode app needs an EntityLookup, and only an entity-mode app takes one")
        self.model = model
        self.settings = settings
        self.lookup = lookup
        self.featurize = Featurizer(model.spec)
        self.coalescer = Coalescer(model.predict, settings.max_coalesced_rows) if settings.coalesce else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        fields: dict[str, Any] = {"method": method, "path": path, "rows": 0}
        close = False
        try:
            if path == "/invocations":
                if method != "POST":
                    raise RequestError(405, "method_not_allowed", "use POST /invocations")
                status, body, content_type = await self._invoke(scope, receive, fields)
            elif path == "/ping":
                if method not in ("GET", "HEAD"):
                    raise RequestError(405, "method_not_allowed", "use GET /ping")
                status, body, content_type = 200, PING_BODY, b"application/json"
            else:
                raise RequestError(404, "not_found", f"no route {path}: use GET /ping or POST /invocations")
        except RequestError as exc:
            status, body, content_type = exc.status, error_body(exc.message), b"application/json"
            fields["error"] = exc.code  # a payload-free code: messages may quote the payload
            close = exc.close
        except Exception:
            log.exception("request failed", extra={"method": method, "path": path})
            status, body, content_type = 500, error_body("internal error"), b"application/json"
            fields["error"] = "internal"
        await _answer(send, status, body, content_type, close=close)
        fields["status"] = status
        fields["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        log.info("request", extra=fields)

    async def refuse_over_capacity(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI callable for a request arriving while the worker holds more than ``max_connections``.

        503 with ``connection: close``: closing brings the count back under the cap, where a connection
        kept open would go on counting (and every request on every connection would be refused).
        """
        limit = self.settings.max_connections
        message = f"this worker holds more than {limit} connections: retry shortly"
        await _answer(send, 503, error_body(message), b"application/json", close=True)
        fields = {"method": scope["method"], "path": scope["path"], "rows": 0, "status": 503, "error": "over_capacity"}
        log.info("request", extra=fields)

    async def _invoke(self, scope: Scope, receive: Receive, fields: dict[str, Any]) -> tuple[int, bytes, bytes]:
        headers = _headers(scope)
        answer_as = response_format(headers.get(b"accept", b"").decode("latin-1"))
        content_type = media_type(headers.get(b"content-type", b"").decode("latin-1"))
        deadline = self.settings.body_timeout
        try:
            async with asyncio.timeout(deadline):
                body = await _read_body(receive, headers, self.settings.max_body_bytes)
        except TimeoutError:
            raise RequestError(
                408, "body_timeout", f"request body not received within {deadline} s", close=True
            ) from None
        fields["bytes"] = len(body)
        rows: list[list[Any]] | None = None
        if self.lookup is not None:
            requests = parse_entity_requests(body, content_type, self.model.spec, max_rows=self.settings.max_rows)
            fields["rows"] = len(requests)
            vectors = await self.lookup.vectors([r.entity_id for r in requests])
            rows = entity_rows(self.model.spec, requests, vectors)
            matrix = rows_matrix(rows)
        else:
            records = parse_records(body, content_type, max_rows=self.settings.max_rows)
            fields["rows"] = len(records)
            matrix = self.featurize(records)
        if self.coalescer is None:
            predictions = self.model.predict(matrix)
        else:
            predictions = await self.coalescer.submit(matrix)
        # Entity mode answers JSON with the scored features too: its captured requests hold only ids, so the
        # captured response is where the drift job finds what the model saw. CSV has no room for them.
        features = scored_features(self.model.spec, rows) if rows is not None and answer_as == JSON else None
        return 200, format_predictions(predictions, answer_as, features), answer_as.encode()


async def _answer(send: Send, status: int, body: bytes, content_type: bytes, *, close: bool = False) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append(CLOSE_HEADER)  # the server closes the connection once the answer is sent
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])  # ASGI servers lower-case header names


async def _read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, "body_too_large", f"request body of {int(declared)} bytes exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError(400, "client_disconnected", "client disconnected before sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "body_too_large", f"request body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_app(model: LoadedModel, settings: Settings, online_client: Any | None = None) -> InferenceApp:
    """The app for an already loaded model, with this process tuned for serving it.

    In entity request mode the process's online-store client is made here, once (``online_client`` replaces it:
    a test's fake), with its cache and lookup threads.
    """
    # One BLAS/OpenMP thread per worker process: workers already occupy every core.
    threadpool_limits(limits=settings.threads_per_worker)
    # Featurizer rejects non-finite values itself, so scikit-learn's own scan of every input is redundant.
    sklearn.set_config(assume_finite=True)
    lookup = make_lookup(settings, model.spec, online_client) if settings.request_mode == "entity" else None
    return InferenceApp(model, settings, lookup)


def create_app() -> InferenceApp:
    """App factory for worker processes: settings from the environment (set by the launcher), model loaded."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return build_app(load_model(settings.model_dir), settings)
