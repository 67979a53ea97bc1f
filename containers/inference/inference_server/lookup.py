"""Entity request mode: requests name entities, features come from the online feature store.

The request path in this mode: body bytes → entity requests (``parse_entity_requests``: an id and, optionally,
overrides of individual features) → each id's feature vector from the feature group's online store
(:class:`EntityLookup`, through :func:`mlops.featurestore.online.get_online_vector`, the conversion the
training set's vectors go through), or from a small per-process cache → overrides applied → one ``float64``
matrix → the model, exactly as in rows mode. A JSON response also carries the scored feature values
(:func:`scored_features`): the captured response is what the platform's drift job reads in this mode.

Lookups are blocking botocore calls, so they run on a small thread pool while the event loop serves other
requests; the whole lookup of one request is bounded by the configured timeout (504 after it).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from mlops.features.spec import FeatureSpec, FeatureSpecError, Value, coerce_value
from mlops.featurestore.errors import RecordNotFoundError
from mlops.featurestore.online import GetRecordClient, OnlineStoreError, get_online_vector, online_client

from .errors import RequestError
from .payload import CSV, JSON
from .settings import Settings

log = logging.getLogger("inference_server")

ENTITY_ID = "entityId"
OVERRIDES = "overrides"
MAX_ENTITY_ID_BYTES = 2 * 1024
"""Feature Store's limit on a record identifier value (2 KB): a longer id cannot be in the store."""
ENTITY_SHAPE = '{"entityId": "<id>", "overrides": {<feature>: <number>, ...}} or {"instances": [...]}'

# How a failed lookup is answered: a timeout is the gateway's (504), a throttled or unavailable store is
# transient (503, retry), denied access, an unknown feature group or a record that does not match the spec
# are the platform's configuration or data (502).
STATUS_OF_FAILURE = {
    "timeout": 504,
    "throttled": 503,
    "unavailable": 503,
    "denied": 502,
    "misconfigured": 502,
    "bad_record": 502,
}


@dataclass(frozen=True)
class EntityRequest:
    """One record of an entity-mode request: the entity's id and typed overrides of individual features."""

    entity_id: str
    overrides: dict[str, Value] = field(default_factory=dict)


# --- parsing -------------------------------------------------------------------------------------------


def parse_entity_requests(body: bytes, content_type: str, spec: FeatureSpec, *, max_rows: int) -> list[EntityRequest]:
    """The entity requests of a body.

    ``application/json``: ``{"entityId": "c-1"}``, ``{"entityId": "c-1", "overrides": {"plan_tier": 2}}`` or
    ``{"instances": [<either>, ...]}``. ``text/csv``: one entity id per line, no header, no overrides.
    Raw records are refused (this endpoint reads features from the store). Raises ``RequestError``: 400 naming
    the record and the key, 413 over ``max_rows``, 415 for another content type.
    """
    if not body.strip():
        raise RequestError(400, "empty_body", "request body is empty")
    if content_type == JSON:
        return _parse_json(body, spec, max_rows)
    if content_type == CSV:
        return _parse_csv(body, max_rows)
    shown = content_type or "none"
    raise RequestError(415, "unsupported_media_type", f"content type {shown!r} is not supported: use {CSV} or {JSON}")


def _too_many(count: int, max_rows: int) -> RequestError:
    return RequestError(
        413, "too_many_rows", f"{count} entities exceed this endpoint's limit of {max_rows} per request"
    )


def _parse_json(body: bytes, spec: FeatureSpec, max_rows: int) -> list[EntityRequest]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, "bad_json", f"malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RequestError(400, "bad_json_shape", f"JSON body must be an object: {ENTITY_SHAPE}")
    if "instances" not in document:
        return [_entity(0, document, spec)]
    instances = document["instances"]
    if len(document) != 1:
        extra = sorted(k for k in document if k != "instances")
        raise RequestError(400, "bad_json_shape", f'unknown key(s) {extra} beside "instances": {ENTITY_SHAPE}')
    if not isinstance(instances, list) or not instances:
        raise RequestError(400, "bad_json_shape", '"instances" must be a non-empty list of entity objects')
    if len(instances) > max_rows:
        raise _too_many(len(instances), max_rows)
    return [_entity(position, item, spec) for position, item in enumerate(instances)]


def _entity(position: int, item: Any, spec: FeatureSpec) -> EntityRequest:
    where = f"record {position}"
    if not isinstance(item, dict):
        raise RequestError(400, "bad_json_shape", f"{where}: not an object: {ENTITY_SHAPE}")
    unknown = sorted(k for k in item if k not in (ENTITY_ID, OVERRIDES))
    if unknown:
        raise RequestError(
            400,
            "not_entity_request",
            f"{where}: unknown key(s) {unknown}: this endpoint takes entity ids ({ENTITY_SHAPE}) and reads the "
            "features from the online feature store; raw records are not accepted in entity request mode",
        )
    entity_id = item.get(ENTITY_ID)
    if not isinstance(entity_id, str) or not entity_id:
        raise RequestError(400, "bad_entity_id", f'{where}: "{ENTITY_ID}" must be a non-empty string')
    _check_id(where, entity_id)
    overrides = item.get(OVERRIDES, {})
    if not isinstance(overrides, dict):
        raise RequestError(400, "bad_override", f'{where}: "{OVERRIDES}" must be an object of feature: number')
    return EntityRequest(entity_id, {name: _override(where, spec, name, value) for name, value in overrides.items()})


def _check_id(where: str, entity_id: str) -> None:
    try:
        size = len(entity_id.encode("utf-8"))
    except UnicodeEncodeError:
        raise RequestError(400, "bad_entity_id", f"{where}: entity id is not valid Unicode text") from None
    if size > MAX_ENTITY_ID_BYTES:
        raise RequestError(
            400, "bad_entity_id", f"{where}: entity id of {size} bytes exceeds Feature Store's {MAX_ENTITY_ID_BYTES}"
        )


def _override(where: str, spec: FeatureSpec, name: str, value: Any) -> Value:
    """``value`` typed as feature ``name``: a JSON number of the feature's type; anything else is refused."""
    if name not in spec.feature_names:
        raise RequestError(
            400,
            "bad_override",
            f"{where}: override '{name}' is not a feature of spec '{spec.name}'; allowed: {list(spec.feature_names)}",
        )
    kind = spec.feature_type(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        shown = "a boolean" if isinstance(value, bool) else "null" if value is None else type(value).__name__
        raise RequestError(
            400, "bad_override", f"{where}: override '{name}' is {kind}: send a JSON number, got {shown}"
        )
    try:
        return coerce_value(spec, name, value)
    except FeatureSpecError as exc:
        raise RequestError(400, "bad_override", f"{where}: override '{name}': {exc}") from None


def _parse_csv(body: bytes, max_rows: int) -> list[EntityRequest]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequestError(400, "bad_encoding", "CSV body is not UTF-8") from None
    requests: list[EntityRequest] = []
    rows = csv.reader(io.StringIO(text), strict=True)
    try:
        for row in rows:
            if not row:
                continue  # blank line
            where = f"CSV line {rows.line_num}"
            if len(row) != 1 or not row[0]:
                raise RequestError(
                    400, "bad_row", f"{where}: one entity id per line (no header, no other fields), got {len(row)}"
                )
            _check_id(where, row[0])
            requests.append(EntityRequest(row[0]))
            if len(requests) > max_rows:
                raise _too_many(len(requests), max_rows)
    except csv.Error as exc:
        raise RequestError(400, "bad_csv", f"malformed CSV: {exc}") from None
    if not requests:
        raise RequestError(400, "no_records", "CSV body holds no entity id")
    return requests


# --- the cache ----------------------------------------------------------------------------------------------


class TtlCache:
    """A per-process LRU cache of feature vectors whose entries expire ``ttl_seconds`` after they were stored.

    Bounded: beyond ``max_entries`` the least recently used entry goes. Used from the event loop only (no lock).
    Misses are not cached: a record written a moment later must be found.
    """

    def __init__(self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, list[Value]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> list[Value] | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: str, vector: list[Value]) -> None:
        self._entries[key] = (self._clock() + self.ttl_seconds, vector)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


# --- the lookup ---------------------------------------------------------------------------------------------


class EntityLookup:
    """Feature vectors of entity ids from one feature group's online store, cached, with a bounded wait."""

    def __init__(
        self,
        client: GetRecordClient,
        feature_group: str,
        spec: FeatureSpec,
        *,
        timeout_seconds: float,
        concurrency: int,
        cache: TtlCache | None,
    ) -> None:
        self.client = client
        self.feature_group = feature_group
        self.spec = spec
        self.timeout_seconds = timeout_seconds
        self.cache = cache
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="online-lookup")

    async def vectors(self, entity_ids: Sequence[str]) -> dict[str, list[Value]]:
        """Each distinct id's vector. ``RequestError``: 404 naming a missing entity; 502/503/504 when the store
        fails (the reason is logged, without the ids)."""
        found: dict[str, list[Value]] = {}
        wanted: list[str] = []
        for entity_id in dict.fromkeys(entity_ids):
            cached = self.cache.get(entity_id) if self.cache is not None else None
            if cached is None:
                wanted.append(entity_id)
            else:
                found[entity_id] = cached
        if not wanted:
            return found
        loop = asyncio.get_running_loop()
        calls = [
            loop.run_in_executor(self._executor, get_online_vector, self.client, self.feature_group, self.spec, i)
            for i in wanted
        ]
        try:
            async with asyncio.timeout(self.timeout_seconds):
                results = await asyncio.gather(*calls, return_exceptions=True)
        except TimeoutError:
            # The threads finish on their own (botocore's timeouts bound them); their results are dropped.
            self._log_failure("timeout", "Timeout", f"no answer within {self._budget()}", len(wanted))
            raise RequestError(
                504,
                "online_store_timeout",
                f"the online feature store did not answer within {self._budget()} "
                f"(feature group '{self.feature_group}'); retry",
            ) from None
        missing: list[str] = []
        failure: OnlineStoreError | None = None
        for entity_id, result in zip(wanted, results, strict=True):
            if isinstance(result, RecordNotFoundError):
                missing.append(entity_id)
            elif isinstance(result, OnlineStoreError):
                failure = failure or result
            elif isinstance(result, BaseException):
                raise result
            else:
                found[entity_id] = result
                if self.cache is not None:
                    self.cache.put(entity_id, result)
        if failure is not None:  # the store's problem outranks a missing entity: the answer is incomplete
            self._log_failure(failure.failure, failure.code, failure.detail, len(wanted))
            status = STATUS_OF_FAILURE[failure.failure]
            hint = "; retry" if status in (503, 504) else ""
            raise RequestError(
                status,
                f"online_store_{failure.failure}",
                f"online feature store lookup failed ({failure.failure}: {failure.code}) for feature group "
                f"'{self.feature_group}'{hint}",
            )
        if missing:
            shown = ", ".join(f"'{m}'" for m in missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            )
            raise RequestError(
                404,
                "entity_not_found",
                f"entity {shown} not found in the online store of feature group '{self.feature_group}' "
                "(never written, deleted or expired)",
            )
        return found

    def _budget(self) -> str:
        return f"{self.timeout_seconds * 1000:g} ms"

    def _log_failure(self, failure: str, code: str, detail: str, entities: int) -> None:
        log.warning(
            "online lookup failed",
            extra={
                "error": f"online_store_{failure}",
                "aws_error_code": code,
                "reason": detail,
                "feature_group": self.feature_group,
                "entities": entities,
            },
        )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def entity_rows(
    spec: FeatureSpec, requests: Sequence[EntityRequest], vectors: dict[str, list[Value]]
) -> list[list[Value]]:
    """Each request's typed vector (in ``spec.feature_names`` order) with its overrides applied."""
    index = {name: position for position, name in enumerate(spec.feature_names)}
    rows: list[list[Value]] = []
    for request in requests:
        row = list(vectors[request.entity_id])
        for name, value in request.overrides.items():
            row[index[name]] = value
        rows.append(row)
    return rows


def rows_matrix(rows: list[list[Value]]) -> np.ndarray:
    """The model's input matrix of :func:`entity_rows`; ``RequestError(502)`` for a value it cannot hold."""
    try:
        matrix = np.array(rows, dtype=np.float64)
    except OverflowError:  # an Integral beyond float64's range, stored in the online store
        raise RequestError(
            502, "online_store_bad_record", "an online record holds a number beyond float64's range"
        ) from None
    if not np.isfinite(matrix).all():
        raise RequestError(502, "online_store_bad_record", "an online record holds a non-finite value")
    return matrix


def entity_matrix(spec: FeatureSpec, requests: Sequence[EntityRequest], vectors: dict[str, list[Value]]) -> np.ndarray:
    """The model's input matrix: each request's vector (in ``spec.feature_names`` order) with its overrides."""
    return rows_matrix(entity_rows(spec, requests, vectors))


_JSON_INTEGERS = (-(2**63), 2**64 - 1)  # what orjson (and most JSON readers) can hold as an integer


def scored_features(spec: FeatureSpec, rows: Sequence[Sequence[Value]]) -> list[dict[str, Value]]:
    """Each row of :func:`entity_rows` as ``{feature: value}`` in spec order: the response's ``features``.

    These are the values the model scored, after overrides; the platform's drift job reads them from the captured
    response (an entity-mode request holds ids only). An ``Integral`` beyond 64 bits, which JSON encoders refuse,
    is given as the float64 the model saw.
    """
    names = spec.feature_names
    low, high = _JSON_INTEGERS
    return [
        {
            name: float(value) if isinstance(value, int) and not low <= value <= high else value
            for name, value in zip(names, row, strict=True)
        }
        for row in rows
    ]


def make_lookup(settings: Settings, spec: FeatureSpec, client: GetRecordClient | None = None) -> EntityLookup:
    """The process's lookup: its client (made here unless given: tests pass one), cache and thread pool."""
    timeout = settings.online_timeout_ms / 1000
    store = client
    if store is None:
        store = online_client(
            region_name=settings.online_region,
            timeout_seconds=timeout,
            max_attempts=settings.online_max_attempts,
            max_pool_connections=settings.online_concurrency,
        )
    cache = (
        TtlCache(settings.online_cache_max_entries, settings.online_cache_ttl_seconds)
        if settings.online_cache_enabled
        else None
    )
    return EntityLookup(
        store,
        settings.feature_group,
        spec,
        timeout_seconds=timeout,
        concurrency=settings.online_concurrency,
        cache=cache,
    )


__all__ = [
    "EntityLookup",
    "EntityRequest",
    "TtlCache",
    "entity_matrix",
    "entity_rows",
    "make_lookup",
    "parse_entity_requests",
    "rows_matrix",
    "scored_features",
]
