"""Request parsing, feature vectors and response formatting (pure functions, no server state).

The request path is: body bytes → raw records (``parse_records``) → one ``float64`` matrix for the
whole batch (``Featurizer``), computed with the feature spec's own conversion, the one training
uses → one ``predict_proba`` call → body bytes (``format_predictions``; in entity request mode a JSON body
also carries the scored feature values).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import orjson

from mlops.features.spec import FeatureSpec, Value, compute_features

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

    ``text/csv``: a header row naming the raw columns, then one record per row; values are strings, an
    empty field is ``None`` (a missing value, as training's CSV reader takes it).
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
    # strict: an unterminated quote or text after a closing quote is an error. The lenient default would read
    # '"premium' as the rest of the body and '"premium"x' as 'premiumx', values nobody sent.
    rows = csv.reader(io.StringIO(text), strict=True)
    row_start = 1  # line on which the row being read starts (a quoted field may span lines)
    try:
        header: list[str] | None = None
        for row in rows:
            row_start = rows.line_num + 1
            if row:
                header = row
                break
        if header is None:
            raise RequestError(400, "empty_body", "CSV body has no header row")
        names = [name.strip() for name in header]
        if "" in names or len(set(names)) != len(names):
            raise RequestError(400, "bad_header", "CSV header must name every column once (a header row is required)")
        width = len(names)
        records: list[Mapping[str, Any]] = []
        for row in rows:
            if row and len(row) != width:
                raise RequestError(
                    400, "bad_row", f"CSV line {row_start} has {len(row)} fields, the header has {width}"
                )
            row_start = rows.line_num + 1
            if not row:
                continue  # blank line
            if "" in row:  # an empty field is a missing value, as training's CSV reader (pandas) takes it
                row = [value if value != "" else None for value in row]
            records.append(dict(zip(names, row, strict=True)))
            if len(records) > max_rows:
                raise _too_many(len(records), max_rows)
    except csv.Error as exc:
        raise RequestError(
            400, "bad_csv", f"malformed CSV in the row starting on line {row_start}: {_csv_problem(exc)}"
        ) from None
    if not records:
        raise RequestError(400, "no_records", "CSV body has a header row but no records")
    return records


def _csv_problem(error: csv.Error) -> str:
    """Python's csv message, in the caller's terms where it is cryptic."""
    text = str(error)
    if text == "unexpected end of data":
        return "a quoted field is not closed (no closing '\"' before the end of the body)"
    if text.startswith("',' expected after"):
        return "a closing '\"' must be followed by ',' or the end of the line (write \"\" for a quote inside a field)"
    return text


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


FEATURE_ERRORS = (ValueError, TypeError, ArithmeticError)  # what the spec's conversion raises on a bad value
MISSING = float("nan")  # a missing value as training's reader (pandas) presents it; the spec's is_missing()
NO_VALUE = "is null or empty"
_PLAIN = frozenset({str, int, float})  # JSON strings and numbers; CSV values are all str


class _RefusedValue(Exception):  # noqa: N818  (internal signal, never leaves this module)
    """A raw value the server refuses outright, raised when the spec's transform reads it.

    Deliberately not a ``ValueError``: a transform that catches ``ValueError`` to apply a default must not
    turn a boolean into that default.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.field = field
        self.problem = problem


class _ReadChecked(Mapping[str, Any]):
    """A raw record that checks each value the spec's transform reads.

    Booleans, arrays and objects are refused when read (``float(True)`` is 1.0 and ``str(True)`` an
    unknown category: the transform alone would serve them silently). A missing value (JSON null, an
    empty CSV field) reaches the transform as ``NaN``, the form training's reader (pandas) gives it, so
    the spec decides as in training: its transform refuses it, or gives it a meaning (``customer-churn``
    reads a missing plan as the unknown tier, and minutes as irrelevant when there were no sessions).
    The columns read without a value are recorded, to name them when the spec refuses the record.
    """

    def __init__(self, record: Mapping[str, Any]) -> None:
        self._record = record
        self.missing: dict[str, None] = {}  # columns read with no value, in reading order

    def __getitem__(self, key: str) -> Any:
        value = self._record[key]
        if value is None:
            self.missing[key] = None
            return MISSING
        if isinstance(value, bool):
            raise _RefusedValue(key, f"is a boolean ({'true' if value else 'false'}): send a number or a string")
        if isinstance(value, list | dict):
            kind = "an array" if isinstance(value, list) else "an object"
            raise _RefusedValue(key, f"is {kind}: send a number or a string")
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._record  # a membership test reads no value

    def __iter__(self) -> Iterator[str]:
        return iter(self._record)

    def __len__(self) -> int:
        return len(self._record)


class Featurizer:
    """Raw records → the model's input matrix, via the feature spec (the training path's conversion).

    Each record goes through :func:`mlops.features.spec.compute_features` (the spec's transform,
    with its values checked and typed per the spec); the values are laid out in
    ``spec.feature_names`` order, and the whole batch becomes one ``float64`` array (the model
    loader refuses specs with ``String`` features).

    Value types are strict where JSON has more types than training data: a boolean, array or object
    in a column the transform reads is refused, naming the record and the column. A missing value
    (JSON null, empty CSV field) is what training reads as missing: served exactly as training
    computes it when the spec gives it a meaning, refused naming the column when the spec does not.
    """

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.names = spec.feature_names

    def __call__(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The ``(len(records), len(feature_names))`` matrix; ``RequestError(400)`` names the bad record."""
        names = self.names
        rows: list[list[Value]] = []
        for position, record in enumerate(records):
            values = self._features(position, record)
            rows.append([values[name] for name in names])
        try:
            matrix = np.array(rows, dtype=np.float64)
        except OverflowError:  # an Integral feature beyond float64's range (Python ints have no limit)
            raise self._too_large(rows) from None
        if not np.isfinite(matrix).all():
            bad = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
            raise RequestError(400, "bad_record", f"record {bad}: features must be finite numbers")
        return matrix

    def _features(self, position: int, record: Mapping[str, Any]) -> dict[str, Value]:
        if _PLAIN.issuperset(map(type, record.values())):  # every complete CSV record, nearly every JSON one
            try:
                return compute_features(self.spec, record)
            except FEATURE_ERRORS as exc:  # FeatureSpecError is a ValueError
                raise RequestError(400, "bad_record", f"record {position}: {exc}") from None
        checked = _ReadChecked(record)
        try:
            return compute_features(self.spec, checked)
        except _RefusedValue as refusal:
            raise RequestError(
                400, "bad_record", f"record {position}: field '{refusal.field}' {refusal.problem}"
            ) from None
        except FEATURE_ERRORS as exc:
            blamed = self._missing_needed(record, list(checked.missing))
            if not blamed:
                raise RequestError(400, "bad_record", f"record {position}: {exc}") from None
            names = ", ".join(f"'{name}'" for name in blamed)
            message = f"field {names} {NO_VALUE}" if len(blamed) == 1 else f"fields {names} are null or empty"
            raise RequestError(
                400, "bad_record", f"record {position}: {message}: the feature spec needs a value"
            ) from None

    def _missing_needed(self, record: Mapping[str, Any], missing: list[str]) -> list[str]:
        """The missing columns the spec refused the record for: with a value (0) in them, it would pass.

        Only on a refused record holding missing values, so the few trial conversions cost nothing in the
        common case; a refusal with other causes names no column (its own message says what is wrong).
        """

        def passes(filled: list[str]) -> bool:
            trial = {**record, **dict.fromkeys(filled, 0)}
            try:
                compute_features(self.spec, _ReadChecked(trial))
            except (_RefusedValue, *FEATURE_ERRORS):
                return False
            return True

        if not missing or not passes(missing):
            return []
        # A column is to blame if filling every other one is not enough (a missing plan, say, is not); when
        # any one of them would do, all are named.
        needed = [name for name in missing if not passes([other for other in missing if other != name])]
        return needed or missing

    def _too_large(self, rows: list[list[Value]]) -> RequestError:
        for position, row in enumerate(rows):
            for name, value in zip(self.names, row, strict=True):
                try:
                    float(value)
                except OverflowError:
                    return RequestError(
                        400, "bad_record", f"record {position}: feature '{name}' is beyond float64's range"
                    )
        return RequestError(400, "bad_record", "a feature is beyond float64's range")


def format_predictions(
    probabilities: np.ndarray,
    response_type: ResponseFormat,
    features: Sequence[Mapping[str, Value]] | None = None,
) -> bytes:
    """The response body for ``probabilities`` (one row per record).

    A 1-d array (binary models: the positive class) gives one number per record; a 2-d array
    (multi-class) gives one list, or CSV row, of class probabilities per record. Numbers keep full
    precision (shortest round-trip form). ``features`` (entity request mode: one ``{feature: value}``
    per record) is added to a JSON body as ``"features"``, after ``"predictions"``; a CSV body has no
    room for it and leaves it out. Without ``features`` the JSON body is ``{"predictions": [...]}`` only.
    """
    values = probabilities.tolist()
    if response_type == JSON:
        if features is None:
            return orjson.dumps({"predictions": values})
        return orjson.dumps({"predictions": values, "features": features})
    if probabilities.ndim == 1:
        return ("\n".join(map(repr, values)) + "\n").encode()
    return ("\n".join(",".join(map(repr, row)) for row in values) + "\n").encode()


def error_body(message: str) -> bytes:
    """The JSON body of an error response."""
    return orjson.dumps({"message": message})
