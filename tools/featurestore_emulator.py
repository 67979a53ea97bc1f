"""A local SageMaker Feature Store runtime: an in-memory ``sagemaker-featurestore-runtime`` client, and its HTTP API.

moto has no backend for the Feature Store runtime and LocalStack's free edition no SageMaker, so the platform's
online path (the ``update_online_features`` consumer writing, the inference server in entity mode reading) is
played against this module: by the feedback-loop drill (:mod:`tools.drill`), the integration and functional tests
(``tests/support/featurestore_fake.py`` and ``featurestore_http.py`` re-export it) and the benchmarks.

- :class:`FeatureStoreFake`: the client, in process (``put_record``, ``get_record``, ``delete_record``);
- :class:`FeatureStoreHttp`: the same store behind the runtime's rest-json API on 127.0.0.1, for processes that
  make their own botocore client (``AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME=<url>``);
- :func:`add_described_group`: a group defined from the control plane's ``DescribeFeatureGroup`` answer (moto's),
  so the runtime serves the feature group the platform created.

## The in-memory client

:class:`FeatureStoreFake` answers ``put_record``, ``get_record`` and ``delete_record`` with the keyword arguments,
response shapes and error codes of the real API (AWS's SageMaker Feature Store Runtime API reference), raising
botocore's ``ClientError`` as a real client does, so code under test cannot tell it apart from a client whose
retries are already spent. What it models:

- **EventTime.** ``PutRecord`` writes the online store only when the record's event time is *greater* than the
  stored record's ("If a new record's EventTime is greater, the new record is written to both the OnlineStore and
  OfflineStore. Otherwise, the record is a historic record and it is written only to the OfflineStore", PutRecord
  API reference). An equal or older event time leaves the online record as it was and the call still succeeds.
  Event times are compared as instants: ISO-8601 UTC strings (``yyyy-MM-dd'T'HH:mm:ssZ`` or with ``.SSS``) or
  fractional Unix seconds. A value in neither form is a ``ValidationError``.
- **TargetStores.** ``["OnlineStore"]``, ``["OfflineStore"]`` or both (the default: every store the group has);
  an offline write is appended to :attr:`FakeFeatureGroup.offline` (every write, historic ones included).
- **PutRecord is a full overwrite** of the online record (features absent from the new record are gone).
- **GetRecord** returns ``{"Record": [{"FeatureName": ..., "ValueAsString": ...}, ...]}`` in the order the record
  was written, filtered by ``FeatureNames`` when given (unknown names are a ``ValidationError``); when the online
  store has no record (never written, or deleted) the response has no ``Record`` key.
- **Errors**: ``ResourceNotFound`` (unknown feature group, HTTP 404), ``ValidationError`` (HTTP 400: missing
  identifier or event time, a feature the group does not define, a feature named twice, bad TargetStores, a group
  without the targeted store). Faults can be injected per operation with :meth:`FeatureStoreFake.fail_next`
  (``ThrottlingException``, ``ServiceUnavailable``, ... with their HTTP status), or for every call with
  :attr:`FeatureStoreFake.fault` (a callable that may raise).
- **Latency**: ``latency_seconds`` sleeps in every call (outside the lock), for benchmarks.

Not modelled: TTL (``TtlDuration`` is accepted and recorded, records never expire), ``ValueAsStringList``
collection types, ``BatchGetRecord``, throughput limits (inject throttling instead). Thread-safe.

Example::

    store = FeatureStoreFake()
    store.create_feature_group("acme-dev-churn", record_identifier="customer_id", event_time="event_time")
    # or: store.add_spec_group("acme-dev-churn", get_spec("customer-churn"))
    store.put_record(FeatureGroupName="acme-dev-churn", Record=[...], TargetStores=["OnlineStore"])
    store.get_record(FeatureGroupName="acme-dev-churn", RecordIdentifierValueAsString="c-1")

## The HTTP front

A process that makes its own botocore client (the inference server in entity mode) reaches it with
``AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME=<url>`` (botocore reads the service's endpoint variable), and any
credentials. Requests are read as botocore's service model serialises them (``GetRecord``:
``GET /FeatureGroup/{name}?RecordIdentifierValueAsString=...&FeatureName=...``; ``PutRecord``: ``PUT`` with a
JSON body; ``DeleteRecord``: ``DELETE`` with query parameters) and answered as the service answers: 200 with the
operation's JSON output, or the error's HTTP status with ``x-amzn-ErrorType`` and ``{"message": ...}``, which
botocore turns back into the same ``ClientError``.

Beyond the in-process fake: ``delay_seconds`` (sleep before answering, for timeouts and benchmarks; each request
has its own thread), ``stall`` (answer nothing until released: a store that hangs), per-record ``get_counts``, and
``GET /_stats`` (the number of GetRecord calls, for a process that does not share this object).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.exceptions import ClientError

from tools.local_http import BackgroundServer

STORES = ("OnlineStore", "OfflineStore")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{3})?Z$")
_STATUS = {
    "ValidationError": 400,
    "ResourceNotFound": 404,
    "AccessForbidden": 403,
    "ThrottlingException": 400,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
}


def client_error(code: str, message: str, operation: str, *, status: int | None = None) -> ClientError:
    """A ``ClientError`` shaped as botocore raises it for an AWS error response (code, message, HTTP status)."""
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status or _STATUS.get(code, 400), "RetryAttempts": 0},
    }
    return ClientError(response, operation)


def event_instant(value: str) -> float:
    """An event time as Unix seconds: ISO-8601 UTC (with or without milliseconds) or fractional seconds.

    Raises ``ValueError`` for anything else (the caller turns it into a ``ValidationError``).
    """
    match = _ISO.match(value)
    if match:
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        millis = int(match.group(7)[1:]) if match.group(7) else 0
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        return moment.timestamp() + millis / 1000
    return float(value)  # ValueError when it is not a number either


@dataclass
class FakeFeatureGroup:
    """One feature group's stores: ``online`` (identifier → record as written) and ``offline`` (every write)."""

    name: str
    record_identifier: str
    event_time: str
    feature_names: frozenset[str] | None = None
    """The group's feature definitions (identifier and event time included); ``None`` accepts any name."""
    online_enabled: bool = True
    offline_enabled: bool = True
    online: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    offline: list[list[dict[str, str]]] = field(default_factory=list)


@dataclass(frozen=True)
class PutCall:
    """One ``put_record`` call as received (successful or not), for assertions."""

    feature_group_name: str
    record: list[dict[str, str]]
    target_stores: tuple[str, ...] | None
    outcome: str
    """``"written"``, ``"historic"`` (online not updated: not a greater event time), ``"offline-only"`` or
    the error code raised."""


class FeatureStoreFake:
    """An in-memory ``sagemaker-featurestore-runtime`` client; see the module docstring for what it models."""

    def __init__(self, *, latency_seconds: float = 0.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.groups: dict[str, FakeFeatureGroup] = {}
        self.calls: list[PutCall] = []
        self.latency_seconds = latency_seconds
        self.fault: Callable[[str, dict[str, Any]], None] | None = None
        """Called as ``fault(operation, kwargs)`` before every call; raise from it to fail the call."""
        self._sleep = sleep
        self._faults: dict[str, deque[ClientError]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------- set-up
    def create_feature_group(
        self,
        name: str,
        *,
        record_identifier: str,
        event_time: str,
        feature_names: Iterable[str] | None = None,
        online: bool = True,
        offline: bool = True,
    ) -> FakeFeatureGroup:
        """Define a feature group (``feature_names``: every definition; ``None`` accepts any feature name)."""
        names = None if feature_names is None else frozenset({record_identifier, event_time, *feature_names})
        group = FakeFeatureGroup(name, record_identifier, event_time, names, online, offline)
        with self._lock:
            self.groups[name] = group
        return group

    def add_spec_group(self, name: str, spec: Any, *, online: bool = True, offline: bool = True) -> FakeFeatureGroup:
        """A feature group built from a :class:`mlops.features.spec.FeatureSpec`, as the feature-store layer does."""
        return self.create_feature_group(
            name,
            record_identifier=spec.record_identifier,
            event_time=spec.event_time,
            feature_names=spec.feature_names,
            online=online,
            offline=offline,
        )

    def fail_next(self, operation: str, code: str, *, times: int = 1, message: str = "injected fault") -> None:
        """Make the next ``times`` calls of ``operation`` (``"PutRecord"``, ``"GetRecord"``...) raise ``code``."""
        with self._lock:
            queue = self._faults.setdefault(operation, deque())
            queue.extend(client_error(code, message, operation) for _ in range(times))

    # ------------------------------------------------------------------------------------------- reading state
    def online_record(self, group: str, record_id: str) -> dict[str, str] | None:
        """The online record of ``record_id`` as {feature name: value string}, or None."""
        with self._lock:
            record = self.groups[group].online.get(record_id)
            return None if record is None else {f["FeatureName"]: f["ValueAsString"] for f in record}

    # ------------------------------------------------------------------------------------------- the API
    def _enter(self, operation: str, kwargs: dict[str, Any]) -> FakeFeatureGroup:
        if self.latency_seconds > 0:
            self._sleep(self.latency_seconds)
        if self.fault is not None:
            self.fault(operation, kwargs)
        with self._lock:
            queued = self._faults.get(operation)
            if queued:
                raise queued.popleft()
            name = kwargs.get("FeatureGroupName")
            group = self.groups.get(name) if isinstance(name, str) else None
        if group is None:
            raise client_error(
                "ResourceNotFound", f"Resource Not Found: Feature group {name} does not exist.", operation
            )
        return group

    def put_record(self, **kwargs: Any) -> dict[str, Any]:
        """``PutRecord``: validate, then write the online store (greater event time only) and/or the offline one."""
        try:
            group = self._enter("PutRecord", kwargs)
        except ClientError as error:
            self._record_call(kwargs, error.response["Error"]["Code"])
            raise
        try:
            record, stores = self._validated_put(group, kwargs)
        except ClientError as error:
            self._record_call(kwargs, "ValidationError")
            raise error from None
        values = {f["FeatureName"]: f["ValueAsString"] for f in record}
        identifier, when = values[group.record_identifier], event_instant(values[group.event_time])
        with self._lock:
            outcome = "offline-only"
            if "OnlineStore" in stores:
                current = group.online.get(identifier)
                newer = current is None or when > event_instant(_value(current, group.event_time))
                outcome = "written" if newer else "historic"
                if newer:
                    group.online[identifier] = [dict(f) for f in record]
            if "OfflineStore" in stores:
                group.offline.append([dict(f) for f in record])
        self._record_call(kwargs, outcome)
        return {"ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0}}

    def _validated_put(self, group: FakeFeatureGroup, kwargs: dict[str, Any]) -> tuple[list[dict[str, str]], set[str]]:
        record = kwargs.get("Record")
        if not isinstance(record, list) or not record:
            raise client_error("ValidationError", "Record must be a non-empty list", "PutRecord")
        names: list[str] = []
        for item in record:
            if not isinstance(item, dict) or not isinstance(item.get("FeatureName"), str):
                raise client_error("ValidationError", f"invalid FeatureValue {item!r}", "PutRecord")
            if not isinstance(item.get("ValueAsString"), str):
                raise client_error("ValidationError", f"{item['FeatureName']}: ValueAsString is required", "PutRecord")
            names.append(item["FeatureName"])
        if len(set(names)) != len(names):
            raise client_error("ValidationError", "a feature name appears more than once in Record", "PutRecord")
        if group.feature_names is not None:
            unknown = sorted(set(names) - group.feature_names)
            if unknown:
                raise client_error(
                    "ValidationError", f"features {unknown} are not defined in feature group {group.name}", "PutRecord"
                )
        for required in (group.record_identifier, group.event_time):
            if required not in names:
                raise client_error("ValidationError", f"Record is missing required feature {required}", "PutRecord")
        try:
            event_instant(_value(record, group.event_time))
        except ValueError:
            raise client_error(
                "ValidationError", f"invalid event time {_value(record, group.event_time)!r}", "PutRecord"
            ) from None
        targets = kwargs.get("TargetStores")
        enabled = {s for s, on in zip(STORES, (group.online_enabled, group.offline_enabled), strict=True) if on}
        if targets is None:
            return record, enabled
        if not isinstance(targets, list) or not targets or any(t not in STORES for t in targets):
            raise client_error("ValidationError", f"invalid TargetStores {targets!r}", "PutRecord")
        missing = sorted(set(targets) - enabled)
        if missing:
            raise client_error("ValidationError", f"feature group {group.name} has no {missing[0]}", "PutRecord")
        return record, set(targets)

    def _record_call(self, kwargs: dict[str, Any], outcome: str) -> None:
        targets = kwargs.get("TargetStores")
        call = PutCall(
            feature_group_name=str(kwargs.get("FeatureGroupName")),
            record=[dict(f) for f in kwargs.get("Record") or [] if isinstance(f, dict)],
            target_stores=tuple(targets) if isinstance(targets, list) else None,
            outcome=outcome,
        )
        with self._lock:
            self.calls.append(call)

    def get_record(self, **kwargs: Any) -> dict[str, Any]:
        """``GetRecord``: the online record (filtered by ``FeatureNames``), or a response without ``Record``."""
        group = self._enter("GetRecord", kwargs)
        record_id = kwargs.get("RecordIdentifierValueAsString")
        if not isinstance(record_id, str) or not record_id:
            raise client_error("ValidationError", "RecordIdentifierValueAsString is required", "GetRecord")
        if not group.online_enabled:
            raise client_error("ValidationError", f"feature group {group.name} has no OnlineStore", "GetRecord")
        wanted = kwargs.get("FeatureNames")
        if wanted is not None:
            if not isinstance(wanted, list) or not wanted:
                raise client_error("ValidationError", "FeatureNames must be a non-empty list", "GetRecord")
            if group.feature_names is not None:
                unknown = sorted(set(wanted) - group.feature_names)
                if unknown:
                    raise client_error(
                        "ValidationError",
                        f"features {unknown} are not defined in feature group {group.name}",
                        "GetRecord",
                    )
        response: dict[str, Any] = {"ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0}}
        with self._lock:
            stored = group.online.get(record_id)
            if stored is None:
                return response
            selected = [dict(f) for f in stored if wanted is None or f["FeatureName"] in wanted]
        if selected:
            response["Record"] = selected
        return response

    def delete_record(self, **kwargs: Any) -> dict[str, Any]:
        """``DeleteRecord`` (online store, soft or hard alike): the record is gone when its event time is not
        older than the stored one's."""
        group = self._enter("DeleteRecord", kwargs)
        record_id = kwargs.get("RecordIdentifierValueAsString")
        event_time = kwargs.get("EventTime")
        if not isinstance(record_id, str) or not isinstance(event_time, str):
            raise client_error(
                "ValidationError", "RecordIdentifierValueAsString and EventTime are required", "DeleteRecord"
            )
        try:
            when = event_instant(event_time)
        except ValueError:
            raise client_error("ValidationError", f"invalid event time {event_time!r}", "DeleteRecord") from None
        with self._lock:
            stored = group.online.get(record_id)
            if stored is not None and when >= event_instant(_value(stored, group.event_time)):
                del group.online[record_id]
        return {"ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0}}


def _value(record: list[dict[str, str]], name: str) -> str:
    return next(f["ValueAsString"] for f in record if f["FeatureName"] == name)


def add_described_group(
    store: FeatureStoreFake, described: Mapping[str, Any], *, online: bool | None = None
) -> FakeFeatureGroup:
    """Define in ``store`` the feature group a ``DescribeFeatureGroup`` answer describes (its identifier, event
    time and feature definitions; online and offline stores as configured), as the runtime serves it.

    ``online`` overrides the answer's ``OnlineStoreConfig.EnableOnlineStore``: moto 5.2.5 stores the group's online
    store configuration but leaves it out of ``DescribeFeatureGroup``."""
    if online is None:
        online = bool((described.get("OnlineStoreConfig") or {}).get("EnableOnlineStore"))
    return store.create_feature_group(
        described["FeatureGroupName"],
        record_identifier=described["RecordIdentifierFeatureName"],
        event_time=described["EventTimeFeatureName"],
        feature_names=[d["FeatureName"] for d in described.get("FeatureDefinitions", [])],
        online=online,
        offline="OfflineStoreConfig" in described,
    )


# ------------------------------------------------------------------------------------------------------------
# The HTTP front

PREFIX = "/FeatureGroup/"
STATS = "/_stats"


class FeatureStoreHttp:
    """``with FeatureStoreHttp(store) as http: ... http.url``: the fake served on 127.0.0.1 (a free port)."""

    def __init__(self, store: FeatureStoreFake, *, delay_seconds: float = 0.0) -> None:
        self.store = store
        self.delay_seconds = delay_seconds
        self.get_counts: Counter[str] = Counter()
        self.stall = threading.Event()  # set: requests wait until it is cleared (or the server stops)
        self._lock = threading.Lock()
        self._server = BackgroundServer(self._handler(), name="featurestore-http")

    @property
    def url(self) -> str:
        return self._server.url

    def gets(self) -> int:
        with self._lock:
            return sum(self.get_counts.values())

    def __enter__(self) -> FeatureStoreHttp:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stall.clear()
        self._server.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects
            # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits for the
            # client's delayed ACK (~40 ms on Linux), which would make every call look slow.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: tests read the server's logs, not these

            def do_GET(self) -> None:
                if self.path == STATS:  # not AWS's: how many GetRecord calls arrived (benchmarks read it)
                    data = json.dumps({"gets": front.gets()}).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                group, query = self._target()
                record_id = _one(query, "RecordIdentifierValueAsString")
                with front._lock:
                    front.get_counts[record_id or ""] += 1
                kwargs: dict[str, Any] = {"FeatureGroupName": group, "RecordIdentifierValueAsString": record_id}
                if "FeatureName" in query:
                    kwargs["FeatureNames"] = query["FeatureName"]
                self._answer(lambda: front.store.get_record(**kwargs))

            def do_PUT(self) -> None:
                group, _ = self._target()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                self._answer(lambda: front.store.put_record(FeatureGroupName=group, **body))

            def do_DELETE(self) -> None:
                group, query = self._target()
                kwargs = {"FeatureGroupName": group, **{k: v[0] for k, v in query.items()}}
                self._answer(lambda: front.store.delete_record(**kwargs))

            def _target(self) -> tuple[str, dict[str, list[str]]]:
                parts = urlsplit(self.path)
                return unquote(parts.path[len(PREFIX) :]), parse_qs(parts.query, keep_blank_values=True)

            def _answer(self, call: Any) -> None:
                while front.stall.is_set():
                    time.sleep(0.01)
                if front.delay_seconds > 0:
                    time.sleep(front.delay_seconds)
                try:
                    output = call()
                    status, headers = 200, {}
                    payload = {k: v for k, v in output.items() if k != "ResponseMetadata"}
                except ClientError as error:
                    meta = error.response.get("ResponseMetadata", {})
                    status = int(meta.get("HTTPStatusCode", 400))
                    headers = {"x-amzn-ErrorType": error.response["Error"]["Code"]}
                    payload = {"message": error.response["Error"]["Message"]}
                data = json.dumps(payload).encode()
                with contextlib.suppress(OSError):  # the client may have given up (a timeout test)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)

        return Handler


def _one(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


@contextlib.contextmanager
def serving(store: FeatureStoreFake, *, delay_seconds: float = 0.0) -> Iterator[FeatureStoreHttp]:
    with FeatureStoreHttp(store, delay_seconds=delay_seconds) as http:
        yield http
