"""One line of SageMaker data capture → what the request scored (raw records or feature values) and the predictions.

A capture line (one JSON object per line, ``eventVersion`` 0) looks like::

    {"captureData": {
        "endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",  "data": "...", "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": "...", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "...", "inferenceId": "...", "inferenceTime": "2024-05-01T12:00:00Z"},
     "eventVersion": "0"}

``data`` is the body as text for the ``CSV`` and ``JSON`` encodings, base64 for ``BASE64``. The response follows
the container's ``format_predictions``: JSON ``{"predictions": [p, ...]}`` or CSV with one row per record; a row is
the positive class's probability (binary models), or ``[p0, p1]``.

The inference container has two request modes, and a line is read by what its request holds:

* **rows** (raw records): the request is parsed by
  :func:`mlops.monitoring.preprocessor_runtime.request_records`, the container's contract (CSV with a header row,
  or JSON ``{"instances": [...]}`` / one record) that the Model Monitor engine uses too; the analysis computes the
  features with the spec's transform.
* **entity** (entity ids, features from the online store): a JSON request whose record objects hold
  ``entityId`` (and optionally ``overrides``) and nothing else, ``{"entityId": ...}`` or ``{"instances":
  [{"entityId": ...}, ...]}``; or a CSV request of one id per line (no header) whose response answers one row per
  line. The request says nothing about the features, so they are taken from the captured response's
  ``"features"`` (one ``{feature: value}`` per entity: the values the model scored, after overrides), which the
  container adds to every JSON answer in this mode. They are checked against the spec: exactly its feature names,
  and values of each feature's type (a JSON number for a numeric feature; an ``Integral`` one integral). An
  entity request answered in CSV has no features (the container cannot add them there): it is counted as
  :data:`ENTITY_WITHOUT_FEATURES`, so traffic that asks for CSV answers shows as "drift not measured", not as
  silence.

Problems raise :class:`MalformedCaptureError` with a short reason code (the report counts them by reason) and a
message. An unusable *response* does not discard a rows-mode request (its inputs still describe the traffic); an
entity-mode request's inputs are in its response, so without usable features nothing of it is analysed.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mlops.features.spec import FeatureSpec, FeatureSpecError, Value, coerce_value
from mlops.monitoring.preprocessor_runtime import (
    CSV,
    ENCODING_MEDIA_TYPES,
    JSON,
    RecordPreprocessorError,
    capture_body,
    media_type,
    request_records,
)

NOT_JSON = "not_json"
NO_INPUT = "no_input"
BAD_REQUEST = "bad_request"
BAD_RECORD = "bad_record"
BAD_RESPONSE = "bad_response"
ENTITY_WITHOUT_FEATURES = "entity_without_features"
BAD_FEATURES = "bad_features"
UNREADABLE_OBJECT = "unreadable_object"
REASONS = (
    NOT_JSON,
    NO_INPUT,
    BAD_REQUEST,
    BAD_RECORD,
    BAD_RESPONSE,
    ENTITY_WITHOUT_FEATURES,
    BAD_FEATURES,
    UNREADABLE_OBJECT,
)
"""Why a captured line (or object) could not be used, as counted in the report's ``malformed_by_reason``."""

ENTITY_ID = "entityId"
ENTITY_KEYS = frozenset({ENTITY_ID, "overrides"})
"""The keys of an entity-mode record object (the container refuses any other in that mode)."""

RequestMode = Literal["rows", "entity"]


class MalformedCaptureError(ValueError):
    """A capture line that cannot be used; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CapturedRequest:
    """A parsed capture line.

    ``records``: the request's raw records (rows mode) or its entity objects (entity mode, ``{"entityId": ...}``).
    ``features``: entity mode only, one ``{feature: typed value}`` per record in spec order, from the response;
    ``None`` in rows mode (the analysis computes them from ``records``). ``predictions``: one per record when
    usable, else ``None`` with ``response_problem`` saying why.
    """

    event_id: str | None
    inference_id: str | None
    inference_time: str | None
    records: list[Mapping[str, Any]]
    predictions: list[float] | None
    response_problem: str | None
    mode: RequestMode = "rows"
    features: list[dict[str, Value]] | None = None

    @property
    def join_key(self) -> str | None:
        """The id ground truth names: the caller's ``inferenceId`` when given, else SageMaker's ``eventId``."""
        return self.inference_id or self.event_id


def parse_capture_line(line: bytes | str, spec: FeatureSpec) -> CapturedRequest:
    """Parse one capture line of a model with feature spec ``spec``; raises :class:`MalformedCaptureError` when
    its request cannot be used."""
    try:
        event = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedCaptureError(NOT_JSON, f"not a JSON line: {exc}") from None
    if not isinstance(event, dict):
        raise MalformedCaptureError(NOT_JSON, "not a JSON object")
    capture = event.get("captureData")
    endpoint_input = capture.get("endpointInput") if isinstance(capture, dict) else None
    if not isinstance(endpoint_input, dict):
        raise MalformedCaptureError(
            NO_INPUT, "no captureData.endpointInput: the endpoint's data capture must include Input"
        )
    endpoint_output = capture.get("endpointOutput") if isinstance(capture, dict) else None
    response = _Response.read(endpoint_output) if isinstance(endpoint_output, dict) else None
    metadata = event.get("eventMetadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    try:
        records, mode = _records(endpoint_input, response)
    except RecordPreprocessorError as exc:
        raise MalformedCaptureError(BAD_REQUEST, str(exc)) from None
    features = _entity_features(spec, response, len(records)) if mode == "entity" else None
    predictions: list[float] | None = None
    problem: str | None = None
    if response is not None:
        try:
            predictions = response.predictions()
            if len(predictions) != len(records):
                raise ValueError(f"{len(predictions)} predictions for {len(records)} records")
        except ValueError as exc:  # RecordPreprocessorError is one
            predictions, problem = None, str(exc)
    return CapturedRequest(
        event_id=_text(metadata.get("eventId")),
        inference_id=_text(metadata.get("inferenceId")),
        inference_time=_text(metadata.get("inferenceTime")),
        records=records,
        predictions=predictions,
        response_problem=problem,
        mode=mode,
        features=features,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _input_fields(endpoint_input: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return endpoint_input.get("data"), endpoint_input.get("encoding"), endpoint_input.get("observedContentType")


# --- entity-mode requests --------------------------------------------------------------------------------


def _records(
    endpoint_input: Mapping[str, Any], response: _Response | None
) -> tuple[list[Mapping[str, Any]], RequestMode]:
    """The request's records and its mode: raw records (``rows``) or entity objects (``entity``).

    Entity mode, JSON: every record object holds ``entityId`` and no key besides ``entityId`` and ``overrides``
    (the container refuses anything else in entity mode, and no raw record looks like that). CSV: every non-blank
    line is one field and the response answers one row per line (a rows-mode CSV request has a header line, which
    gets no answer of its own). Anything else is read as raw records. Raises :class:`RecordPreprocessorError`
    saying why the request cannot be read (as the container would have refused it).
    """
    data, encoding, observed = _input_fields(endpoint_input)
    encoding_name = str(encoding or "").upper()
    if isinstance(data, str | bytes) and (media_type(observed) or ENCODING_MEDIA_TYPES.get(encoding_name)) == CSV:
        ids = _csv_ids(capture_body(data, encoding_name, "captureData.endpointInput"))
        if ids is not None and response is not None and response.answered_rows() == len(ids):
            return [{ENTITY_ID: entity_id} for entity_id in ids], "entity"
        return request_records(data, encoding, observed), "rows"
    records = request_records(data, encoding, observed)
    if all(ENTITY_ID in record and ENTITY_KEYS.issuperset(record) for record in records):
        return records, "entity"
    return records, "rows"


def _csv_ids(body: bytes) -> list[str] | None:
    """One non-empty field per non-blank line (no header): the ids of an entity-mode CSV request; else ``None``."""
    ids: list[str] = []
    try:
        for row in csv.reader(io.StringIO(body.decode("utf-8-sig")), strict=True):
            if not row:
                continue
            if len(row) != 1 or not row[0]:
                return None  # a rows-mode header or record: stop at the first line
            ids.append(row[0])
    except (UnicodeDecodeError, csv.Error):
        return None
    return ids or None


def _entity_features(spec: FeatureSpec, response: _Response | None, count: int) -> list[dict[str, Value]]:
    """The ``count`` entities' scored features, from the captured response, typed and checked against ``spec``."""
    if response is None:
        raise MalformedCaptureError(
            ENTITY_WITHOUT_FEATURES,
            "entity-mode request without a captured response: its features are in the response (capture Output)",
        )
    if response.problem is not None:
        raise MalformedCaptureError(BAD_RESPONSE, f"entity-mode request: {response.problem}")
    document = response.document
    if response.content_type == JSON and not (
        isinstance(document, dict) and isinstance(document.get("predictions"), list)
    ):
        raise MalformedCaptureError(
            BAD_RESPONSE, 'entity-mode request: the JSON response has no "predictions" list (an error answer?)'
        )
    if response.content_type != JSON:
        raise MalformedCaptureError(
            ENTITY_WITHOUT_FEATURES,
            f"entity-mode request answered in {response.content_type}, which has no room for the scored features: "
            "drift is not measured for it (callers must send Accept: application/json, the default)",
        )
    if "features" not in document:
        raise MalformedCaptureError(
            ENTITY_WITHOUT_FEATURES,
            'entity-mode request answered without "features": drift is not measured for it (an inference image '
            "older than the one that returns them?)",
        )
    return scored_features(spec, document["features"], count)


def scored_features(spec: FeatureSpec, features: Any, count: int) -> list[dict[str, Value]]:
    """A response's ``"features"`` (one ``{feature: value}`` per entity) typed per ``spec``, in spec order.

    Raises :class:`MalformedCaptureError` (:data:`BAD_FEATURES`) naming the problem: not a list of ``count``
    objects, a missing or unknown feature name, a value that is not of the feature's type.
    """
    if not isinstance(features, list) or len(features) != count:
        shown = f"{len(features)} objects" if isinstance(features, list) else type(features).__name__
        raise MalformedCaptureError(BAD_FEATURES, f'"features" must list one object per entity ({count}), got {shown}')
    names = spec.feature_names
    typed: list[dict[str, Value]] = []
    for position, item in enumerate(features):
        where = f"features[{position}]"
        if not isinstance(item, dict):
            raise MalformedCaptureError(BAD_FEATURES, f"{where} is not an object")
        if item.keys() != set(names):
            missing = [n for n in names if n not in item]
            unknown = sorted(k for k in item if k not in names)
            raise MalformedCaptureError(
                BAD_FEATURES,
                f"{where} does not name the features of spec '{spec.name}' (missing {missing}, unknown {unknown}): "
                "is the capture from another model or spec version?",
            )
        typed.append({name: _feature_value(spec, where, name, item[name]) for name in names})
    return typed


def _feature_value(spec: FeatureSpec, where: str, name: str, value: Any) -> Value:
    kind = spec.feature_type(name)
    # The container answers JSON numbers for numeric features; a string ("3") is not what it sends.
    if kind != "String" and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise MalformedCaptureError(BAD_FEATURES, f"{where}: feature '{name}' is {kind}, got {value!r}")
    try:
        return coerce_value(spec, name, value)
    except FeatureSpecError as exc:
        raise MalformedCaptureError(BAD_FEATURES, f"{where}: {exc}") from None


# --- responses ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Response:
    """A captured response, decoded once: its media type and document (parsed JSON, or CSV rows of cells), or
    the problem that kept it from being read."""

    content_type: str
    document: Any
    problem: str | None

    @classmethod
    def read(cls, endpoint_output: Mapping[str, Any]) -> _Response:
        try:
            return cls(*_response_document(endpoint_output), None)
        except ValueError as exc:  # RecordPreprocessorError is one
            return cls("", None, str(exc))

    def answered_rows(self) -> int | None:
        """How many records the response answers (its ``predictions`` or CSV rows); ``None`` if unreadable."""
        rows = self.document.get("predictions") if isinstance(self.document, dict) else self.document
        return len(rows) if self.problem is None and isinstance(rows, list) else None

    def predictions(self) -> list[float]:
        """The positive-class probabilities; ``ValueError`` naming the problem (see :func:`parse_predictions`)."""
        if self.problem is not None:
            raise ValueError(self.problem)
        if self.content_type == JSON:
            rows = self.document.get("predictions") if isinstance(self.document, dict) else None
            if not isinstance(rows, list):
                raise ValueError('JSON response has no "predictions" list')
        else:
            rows = self.document
        return [_probability(row, position) for position, row in enumerate(rows)]


def _response_document(endpoint_output: Mapping[str, Any]) -> tuple[str, Any]:
    """``(media type, document)`` of a captured response: the parsed JSON, or for CSV its rows of cells.

    Raises ``ValueError`` (or :class:`RecordPreprocessorError` for an undecodable capture) naming the problem.
    """
    data = endpoint_output.get("data")
    if not isinstance(data, str | bytes):
        raise ValueError("captureData.endpointOutput has no data")
    encoding = str(endpoint_output.get("encoding") or "").upper()
    content_type = media_type(endpoint_output.get("observedContentType")) or ENCODING_MEDIA_TYPES.get(encoding, "")
    body = capture_body(data, encoding, "captureData.endpointOutput")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("response body is not UTF-8") from None
    if content_type == JSON:
        try:
            return JSON, json.loads(text)
        except ValueError as exc:
            raise ValueError(f"response is not JSON: {exc}") from None
    if content_type == CSV:
        return CSV, [[cell.strip() for cell in line.split(",")] for line in text.splitlines() if line.strip()]
    raise ValueError(f"response content type {content_type or 'none'!r} is not {JSON} or {CSV}")


def parse_predictions(endpoint_output: Mapping[str, Any]) -> list[float]:
    """The positive-class probabilities of a captured response (``captureData.endpointOutput``).

    Raises ``ValueError`` (or :class:`RecordPreprocessorError` for an undecodable capture) naming the problem:
    not JSON or CSV, no ``predictions``, a row that is not one probability or a ``[p0, p1]`` pair, a number
    outside ``[0, 1]``. Other keys of a JSON response (an entity-mode answer's ``features``) are not read here.
    """
    return _Response(*_response_document(endpoint_output), None).predictions()


def _probability(row: Any, position: int) -> float:
    if isinstance(row, list):
        if len(row) == 1:
            row = row[0]
        elif len(row) == 2:
            row = row[1]  # [P(class 0), P(class 1)]
        else:
            raise ValueError(f"prediction {position} has {len(row)} values: not a binary classifier's output")
    try:
        value = float(row)
    except (TypeError, ValueError):
        raise ValueError(f"prediction {position} is not a number: {row!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"prediction {position} is {value!r}, not a probability")
    return value
