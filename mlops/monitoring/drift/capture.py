"""One line of SageMaker data capture → the request's raw records and the endpoint's predictions.

A capture line (one JSON object per line, ``eventVersion`` 0) looks like::

    {"captureData": {
        "endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",  "data": "...", "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": "...", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "...", "inferenceId": "...", "inferenceTime": "2024-05-01T12:00:00Z"},
     "eventVersion": "0"}

``data`` is the body as text for the ``CSV`` and ``JSON`` encodings, base64 for ``BASE64``. The request is
parsed by :func:`mlops.monitoring.preprocessor_runtime.request_records`, the inference container's contract
(CSV with a header row, or JSON ``{"instances": [...]}`` / one record) that the Model Monitor engine uses too.
The response follows the container's ``format_predictions``: JSON ``{"predictions": [p, ...]}`` or CSV with one
row per record; a row is the positive class's probability (binary models), or ``[p0, p1]``.

Problems raise :class:`MalformedCaptureError` with a short reason code (the report counts them by reason) and a
message; an unusable *response* does not discard the request (its inputs still describe the traffic).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
UNREADABLE_OBJECT = "unreadable_object"
REASONS = (NOT_JSON, NO_INPUT, BAD_REQUEST, BAD_RECORD, BAD_RESPONSE, UNREADABLE_OBJECT)
"""Why a captured line (or object) could not be used, as counted in the report's ``malformed_by_reason``."""


class MalformedCaptureError(ValueError):
    """A capture line that cannot be used; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CapturedRequest:
    """A parsed capture line: the request's raw records and, when usable, one prediction per record."""

    event_id: str | None
    inference_id: str | None
    inference_time: str | None
    records: list[Mapping[str, Any]]
    predictions: list[float] | None
    response_problem: str | None

    @property
    def join_key(self) -> str | None:
        """The id ground truth names: the caller's ``inferenceId`` when given, else SageMaker's ``eventId``."""
        return self.inference_id or self.event_id


def parse_capture_line(line: bytes | str) -> CapturedRequest:
    """Parse one capture line; raises :class:`MalformedCaptureError` when its request cannot be used."""
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
    try:
        records = request_records(
            endpoint_input.get("data"), endpoint_input.get("encoding"), endpoint_input.get("observedContentType")
        )
    except RecordPreprocessorError as exc:
        raise MalformedCaptureError(BAD_REQUEST, str(exc)) from None
    metadata = event.get("eventMetadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    predictions: list[float] | None = None
    problem: str | None = None
    endpoint_output = capture.get("endpointOutput") if isinstance(capture, dict) else None
    if isinstance(endpoint_output, dict):
        try:
            predictions = parse_predictions(endpoint_output)
            if len(predictions) != len(records):
                raise ValueError(f"{len(predictions)} predictions for {len(records)} records")
        except (RecordPreprocessorError, ValueError) as exc:
            predictions, problem = None, str(exc)
    return CapturedRequest(
        event_id=_text(metadata.get("eventId")),
        inference_id=_text(metadata.get("inferenceId")),
        inference_time=_text(metadata.get("inferenceTime")),
        records=records,
        predictions=predictions,
        response_problem=problem,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_predictions(endpoint_output: Mapping[str, Any]) -> list[float]:
    """The positive-class probabilities of a captured response (``captureData.endpointOutput``).

    Raises ``ValueError`` (or :class:`RecordPreprocessorError` for an undecodable capture) naming the problem:
    not JSON or CSV, no ``predictions``, a row that is not one probability or a ``[p0, p1]`` pair, a number
    outside ``[0, 1]``.
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
            document = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"response is not JSON: {exc}") from None
        rows = document.get("predictions") if isinstance(document, dict) else None
        if not isinstance(rows, list):
            raise ValueError('JSON response has no "predictions" list')
    elif content_type == CSV:
        rows = [[cell.strip() for cell in line.split(",")] for line in text.splitlines() if line.strip()]
    else:
        raise ValueError(f"response content type {content_type or 'none'!r} is not {JSON} or {CSV}")
    return [_probability(row, position) for position, row in enumerate(rows)]


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
