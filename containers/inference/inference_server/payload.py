"""Request parsing, feature vectors and response formatting (pure functions, no server state).

The request path is: body bytes → raw records (``parse_records``) → one ``float64`` matrix for the
whole batch (``Featurizer``), computed with the feature spec's own conversion, the one training
uses → one ``predict_proba`` call → body bytes (``format_predictions``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import orjson

from mlops.features.spec import FeatureSpec, compute_features

from .errors import RequestError

CSV = "text/csv"
JSON = "application/json"
ResponseFormat = Literal["application/json", "text/csv"]


def media_type(header_value: str | None) -> str:
    """The bare, lower-case media type of a Content-Type value (``text/csv; charset=utf-8`` → ``text/csv``)."""
    if not header_value:
        return ""
    return header_value.split(";", 1)[0].strip().lower()


def response_format(accept: str | None) -> ResponseFormat:
    """The response media type for an Accept header: JSON unless the client asks for CSV first.

    Media ranges are taken in the order listed (q-values other than ``q=0`` are not ranked).
    Raises ``RequestError(406)`` when nothing acceptable is offered.
    """
    if not accept:
        return JSON
    for part in accept.split(","):
        kind, *params = part.split(";")
        kind = kind.strip().lower()
        if any(_is_zero_q(param) for param in params):
            continue  # q=0 means "not acceptable"
        if kind in (JSON, "application/*", "*/*"):
            return JSON
        if kind in (CSV, "text/*"):
            return CSV
    raise RequestError(406, "not_acceptable", f"cannot answer with {accept!r}: use {JSON} or {CSV}")


def _is_zero_q(param: str) -> bool:
    key, _, value = param.strip().partition("=")
    try:
        return key.strip().lower() == "q" and float(value) <= 0
    except ValueError:
        return False


def parse_records(body: bytes, content_type: str, *, max_rows: int) -> list[Mapping[str, Any]]:
    """Raw records of a request body.

    ``text/csv``: a header row naming the raw columns, then one record per row.
    ``application/json``: ``{"instances": [record, ...]}`` or one record object.
    Raises ``RequestError``: 400 for an empty or malformed body, 413 for more than ``max_rows``
    records, 415 for another content type.
    """
    if not body.strip():
        raise RequestError(400, "empty_body", "request body is empty")
    if content_type == CSV:
        return _parse_csv(body, max_rows)
    if content_type == JSON:
        return _parse_json(body, max_rows)
    shown = content_type or "none"
    raise RequestError(415, "unsupported_media_type", f"content type {shown!r} is not supported: use {CSV} or {JSON}")


def _too_many(count: int, max_rows: int) -> RequestError:
    return RequestError(413, "too_many_rows", f"{count} records exceed this endpoint's limit of {max_rows} per request")


def _parse_csv(body: bytes, max_rows: int) -> list[Mapping[str, Any]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequestError(400, "bad_encoding", "CSV body is not UTF-8") from None
    rows = csv.reader(io.StringIO(text))
    try:
        header = next((row for row in rows if row), None)
        if header is None:
            raise RequestError(400, "empty_body", "CSV body has no header row")
        names = [name.strip() for name in header]
        if "" in names or len(set(names)) != len(names):
            raise RequestError(400, "bad_header", "CSV header must name every column once (a header row is required)")
        width = len(names)
        records: list[Mapping[str, Any]] = []
        for row in rows:
            if not row:
                continue  # blank line
            if len(row) != width:
                raise RequestError(
                    400, "bad_row", f"CSV line {rows.line_num} has {len(row)} fields, the header has {width}"
                )
            records.append(dict(zip(names, row, strict=True)))
            if len(records) > max_rows:
                raise _too_many(len(records), max_rows)
    except csv.Error as exc:
        raise RequestError(400, "bad_csv", f"malformed CSV at line {rows.line_num}: {exc}") from None
    if not records:
        raise RequestError(400, "no_records", "CSV body has a header row but no records")
    return records


def _parse_json(body: bytes, max_rows: int) -> list[Mapping[str, Any]]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, "bad_json", f"malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RequestError(
            400, "bad_json_shape", 'JSON body must be an object: {"instances": [record, ...]} or one record'
        )
    if "instances" not in document:
        return [document]
    instances = document["instances"]
    if not isinstance(instances, list) or not instances:
        raise RequestError(400, "bad_json_shape", '"instances" must be a non-empty list of record objects')
    if len(instances) > max_rows:
        raise _too_many(len(instances), max_rows)
    for position, record in enumerate(instances):
        if not isinstance(record, dict):
            raise RequestError(400, "bad_json_shape", f'"instances"[{position}] is not an object')
    return instances


class Featurizer:
    """Raw records → the model's input matrix, via the feature spec (the training path's conversion).

    Each record goes through :func:`mlops.features.spec.compute_features` (the spec's transform,
    with its values checked and typed per the spec); the values are laid out in
    ``spec.feature_names`` order, and the whole batch becomes one ``float64`` array (the model
    loader refuses specs with ``String`` features).
    """

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.names = spec.feature_names

    def __call__(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The ``(len(records), len(feature_names))`` matrix; ``RequestError(400)`` names the bad record."""
        spec, names = self.spec, self.names
        rows: list[list[Any]] = []
        position = 0
        try:
            for position, record in enumerate(records):  # noqa: B007  (position names the failing record)
                values = compute_features(spec, record)
                rows.append([values[name] for name in names])
        except (ValueError, TypeError, ArithmeticError) as exc:  # FeatureSpecError is a ValueError
            raise RequestError(400, "bad_record", f"record {position}: {exc}") from None
        matrix = np.array(rows, dtype=np.float64)
        if not np.isfinite(matrix).all():
            bad = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
            raise RequestError(400, "bad_record", f"record {bad}: features must be finite numbers")
        return matrix


def format_predictions(probabilities: np.ndarray, response_type: ResponseFormat) -> bytes:
    """The response body for ``probabilities`` (one row per record).

    A 1-d array (binary models: the positive class) gives one number per record; a 2-d array
    (multi-class) gives one list, or CSV row, of class probabilities per record. Numbers keep full
    precision (shortest round-trip form).
    """
    values = probabilities.tolist()
    if response_type == JSON:
        return orjson.dumps({"predictions": values})
    if probabilities.ndim == 1:
        return ("\n".join(map(repr, values)) + "\n").encode()
    return ("\n".join(",".join(map(repr, row)) for row in values) + "\n").encode()


def error_body(message: str) -> bytes:
    """The JSON body of an error response."""
    return orjson.dumps({"message": message})
