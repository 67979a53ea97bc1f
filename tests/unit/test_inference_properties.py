"""Property-based tests (Hypothesis) of the inference server's request handling, in process.

Whatever the body, content type and Accept header:

* parsing and featurizing give a finite ``float64`` matrix with one row per record, or a ``RequestError``
  with a 4xx status and a message: never another exception (the app would answer it with a 500);
* the ASGI app answers 2xx with one prediction per record, or 4xx with a JSON ``{"message": ...}``;
  never a 5xx, never a traceback in the body;
* a boolean in a column the feature spec reads is refused, naming the record and the column;
* a null there is refused naming them, or served exactly as training computes that row;
* the CSV and JSON forms of the same records give the same matrix.

Examples are bounded and the deadline generous for a shared 2-core machine, so the unit tier stays quick;
no example database is written into the work tree.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import MutableMapping
from datetime import timedelta
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from containers.inference.inference_server.app import InferenceApp
from containers.inference.inference_server.errors import RequestError
from containers.inference.inference_server.model import LoadedModel
from containers.inference.inference_server.payload import Featurizer, media_type, parse_records
from containers.inference.inference_server.settings import Settings
from mlops.features import get_spec
from pipelines.steps.preprocess import build_features

SPEC = get_spec("customer-churn")
RAW_COLUMNS = ("sessions", "minutes_active", "support_tickets", "monthly_spend", "plan")
MAX_ROWS = 8
FEATURIZE = Featurizer(SPEC)

PROPERTIES = settings(max_examples=200, deadline=timedelta(seconds=2), database=None)

# --- strategies ------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
# Number-like text, with what breaks a float64: an integer of 400 digits is a valid Python int and not a double.
numeric_text = st.sampled_from(
    ["0", "4", "-1", "1.5", "1e3", "1e400", "nan", "inf", "-inf", " 7 ", "", "1_000", "9" * 400, "-" + "9" * 400]
)
plans = st.sampled_from(["basic", "standard", "premium", "unknown", ""])


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    """A record shaped like the raw table: counts as integers, amounts as finite floats, a plan name."""
    return {
        "sessions": draw(st.integers(0, 500)),
        "minutes_active": draw(st.floats(0, 1e5, allow_nan=False)),
        "support_tickets": draw(st.integers(0, 50)),
        "monthly_spend": draw(st.floats(0, 1e6, allow_nan=False)),
        "plan": draw(plans),
    }


@st.composite
def hostile_records(draw: st.DrawFn) -> dict[str, Any]:
    """A record whose columns may hold anything JSON can say, be missing, or come with extra columns.

    Each column stays valid most of the time, so that whole records often pass and the paths after
    parsing (features, prediction, formatting) are exercised too.
    """
    record = draw(valid_records())
    for column in RAW_COLUMNS:
        choice = draw(st.integers(0, 19))
        if choice == 1:
            record[column] = draw(json_values)
        elif choice == 2:
            record[column] = draw(numeric_text)
        elif choice == 3:
            del record[column]
    record.update(draw(st.dictionaries(st.text(max_size=6), json_scalars, max_size=2)))
    return record


def csv_body(records: list[dict[str, Any]], columns: tuple[str, ...] = RAW_COLUMNS) -> bytes:
    lines = [",".join(columns), *(",".join(_csv_field(record.get(c)) for c in columns) for record in records)]
    return ("\n".join(lines) + "\n").encode()


def _csv_field(value: Any) -> str:
    """``value`` as a CSV field: floats in round-trip form, a missing value (None) as an empty field."""
    if value is None:
        return ""
    text = repr(value) if isinstance(value, float) else str(value)
    return '"' + text.replace('"', '""') + '"' if any(ch in text for ch in ',"\n\r') else text


# A column nested just below orjson's depth limit (1024): parsed fine, but str() of it exhausts Python's recursion.
def nested_plan(depth: int) -> bytes:
    fields = b'{"sessions": 1, "minutes_active": 2, "support_tickets": 0, "monthly_spend": 5, "plan": '
    return fields + b"[" * depth + b"]" * depth + b"}"


deeply_nested = st.integers(960, 1023).map(nested_plan)
json_bodies = st.one_of(
    deeply_nested,
    hostile_records().map(lambda r: json.dumps(r).encode()),
    st.lists(hostile_records(), max_size=MAX_ROWS + 2).map(lambda rs: json.dumps({"instances": rs}).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["instances", "plan", "x"]), json_values, max_size=2).map(
        lambda d: json.dumps(d).encode()
    ),
)
csv_fields = st.text(alphabet=st.sampled_from('ab1.-e ",\n\r\x00é'), max_size=6)
csv_bodies = st.one_of(
    st.lists(hostile_records(), min_size=1, max_size=MAX_ROWS + 2).map(csv_body),
    st.lists(st.lists(csv_fields, min_size=1, max_size=6), max_size=5).map(
        lambda rows: "\n".join(",".join(row) for row in rows).encode()
    ),
)


@st.composite
def damaged(draw: st.DrawFn, bodies: st.SearchStrategy[bytes]) -> bytes:
    """A body cut short, or with a byte changed: what a broken client or a truncated upload sends."""
    body = draw(bodies)
    if not body:
        return body
    at = draw(st.integers(0, len(body) - 1))
    if draw(st.booleans()):
        return body[:at]
    return body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]


JSON_TYPES = ("application/json", "application/json; charset=utf-8", "APPLICATION/JSON")
CSV_TYPES = ("text/csv", "text/csv; charset=utf-8", "Text/CSV")
any_text = st.text(max_size=20)


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, str]:
    """A body and its content type: mostly matching (to reach the deeper paths), sometimes anything at all."""
    kind = draw(st.sampled_from(["json", "csv", "bytes"]))
    if kind == "json":
        body, content_type = draw(json_bodies | damaged(json_bodies)), draw(st.sampled_from(JSON_TYPES))
    elif kind == "csv":
        body, content_type = draw(csv_bodies | damaged(csv_bodies)), draw(st.sampled_from(CSV_TYPES))
    else:
        body, content_type = draw(st.binary(max_size=64)), draw(st.sampled_from(JSON_TYPES + CSV_TYPES))
    if draw(st.integers(0, 9)) == 9:  # not 0: Hypothesis draws small integers far more often
        content_type = draw(st.sampled_from(["", *JSON_TYPES, *CSV_TYPES]) | any_text)
    return body, content_type


@st.composite
def accepts(draw: st.DrawFn) -> str | None:
    """An Accept header: absent, one the server can answer, or (one time in ten) anything."""
    if draw(st.integers(0, 9)) == 9:
        return draw(st.sampled_from(["image/png", "text/csv;q=0", "application/xml"]) | any_text)
    return draw(st.none() | st.sampled_from(["application/json", "text/csv", "*/*", "text/csv;q=0, application/json"]))


# --- parsing and features ----------------------------------------------------------------------------


VALID = {"sessions": 4, "minutes_active": 50.5, "support_tickets": 1, "monthly_spend": 19.99, "plan": "premium"}
# Always tried, whatever Hypothesis draws: each once made the server answer 500 (RecursionError, OverflowError).
DEEP_PLAN = (nested_plan(1023), "application/json")
LONG_INTEGER = (
    b"sessions,minutes_active,support_tickets,monthly_spend,plan\n1,2," + b"9" * 400 + b",5,basic\n",
    "text/csv",
)


@PROPERTIES
@example(request=DEEP_PLAN)
@example(request=LONG_INTEGER)
@given(request=requests())
def test_any_body_gives_a_finite_matrix_or_a_4xx(request: tuple[bytes, str]) -> None:
    body, content_type = request
    try:
        records = parse_records(body, media_type(content_type), max_rows=MAX_ROWS)
        matrix = FEATURIZE(records)
    except RequestError as error:
        assert 400 <= error.status < 500
        assert error.message
        return
    assert matrix.dtype == np.float64
    assert matrix.shape == (len(records), len(SPEC.feature_names))
    assert np.isfinite(matrix).all()


@PROPERTIES
@example(record=VALID, column="support_tickets", number=10**400, as_csv=True)
@given(
    record=valid_records(),
    column=st.sampled_from(RAW_COLUMNS),
    number=st.integers(-(10**500), 10**500) | st.floats(allow_nan=False),
    as_csv=st.booleans(),
)
def test_any_number_in_any_column_gives_a_finite_row_or_a_4xx(
    record: dict[str, Any], column: str, number: float, as_csv: bool
) -> None:  # fmt: skip
    # Python ints have no bound and float64 has: a long integer in CSV text must be refused, not crash numpy.
    record = record | {column: number}
    body = csv_body([record]) if as_csv else json.dumps(record).encode()
    try:
        matrix = FEATURIZE(parse_records(body, "text/csv" if as_csv else "application/json", max_rows=1))
    except RequestError as error:
        assert error.status == 400
        return
    assert np.isfinite(matrix).all()


@PROPERTIES
@given(records=st.lists(valid_records(), min_size=1, max_size=4), data=st.data())
def test_boolean_in_a_read_column_is_refused_naming_record_and_column(
    records: list[dict[str, Any]], data: st.DataObject
) -> None:  # fmt: skip
    position = data.draw(st.integers(0, len(records) - 1))
    column = data.draw(st.sampled_from(RAW_COLUMNS))
    value = data.draw(st.booleans())
    records[position] = records[position] | {column: value}
    try:
        FEATURIZE(records)
    except RequestError as error:
        assert error.status == 400
        assert error.message.startswith(f"record {position}: field '{column}' is a boolean")
    else:
        raise AssertionError(f"a boolean {column} was served")


def training_row(record: dict[str, Any]) -> list[float] | None:
    """The row the pipeline's preprocess step computes for ``record`` written to a raw CSV file (None: dropped)."""
    header = ["customer_id", "event_time", "churned", *RAW_COLUMNS]
    row = ["c-1", "2024-05-01T12:00:00Z", "0", *(_csv_field(record[c]) for c in RAW_COLUMNS)]
    features, _ = build_features(pd.read_csv(io.StringIO(",".join(header) + "\n" + ",".join(row) + "\n")), SPEC)
    if features.empty:
        return None
    values = features[list(SPEC.feature_names)].to_numpy(dtype=np.float64)
    return values[0].tolist() if np.isfinite(values).all() else None  # a non-finite row is no model input


@PROPERTIES
@given(record=valid_records(), column=st.sampled_from(RAW_COLUMNS), as_csv=st.booleans())
def test_missing_value_is_refused_naming_the_column_or_served_as_training_computes_it(
    record: dict[str, Any], column: str, as_csv: bool
) -> None:  # fmt: skip
    record = record | {column: None}  # JSON null, or an empty CSV field
    trained = training_row(record)
    body = csv_body([record]) if as_csv else json.dumps(record).encode()
    try:
        served = FEATURIZE(parse_records(body, "text/csv" if as_csv else "application/json", max_rows=1))
    except RequestError as error:
        # Training takes it (a finite row): serving must too, with the same values.
        assert trained is None, f"training accepts a missing {column}, serving refuses it: {error.message}"
        assert error.message.startswith(f"record 0: field '{column}' is null or empty")
        return
    assert served[0].tolist() == trained


@PROPERTIES
@given(records=st.lists(valid_records(), min_size=1, max_size=MAX_ROWS))
def test_csv_and_json_forms_of_the_same_records_give_the_same_matrix(records: list[dict[str, Any]]) -> None:
    from_json = FEATURIZE(
        parse_records(json.dumps({"instances": records}).encode(), "application/json", max_rows=MAX_ROWS)
    )
    from_csv = FEATURIZE(parse_records(csv_body(records), "text/csv", max_rows=MAX_ROWS))
    assert from_csv.tolist() == from_json.tolist()


# --- the ASGI app ---------------------------------------------------------------------------------------


@cache
def app() -> InferenceApp:
    rng = np.random.default_rng(0)
    vectors = rng.uniform(0, 10, size=(200, len(SPEC.feature_names)))
    estimator = LogisticRegression().fit(vectors, (vectors[:, 0] > 5).astype(int))
    return InferenceApp(LoadedModel(estimator, SPEC, {}, 1), Settings(max_rows=MAX_ROWS, max_body_bytes=4096))


def exchange(body: bytes, content_type: str, accept: str | None, cut: int) -> tuple[int, dict[bytes, bytes], bytes]:
    """One POST /invocations through the app, the body in two ``http.request`` messages split at ``cut``."""
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    if accept is not None:
        headers.append((b"accept", accept.encode()))
    scope = {"type": "http", "method": "POST", "path": "/invocations", "headers": headers}
    chunks = [body[:cut], body[cut:]]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app()(scope, receive, send))
    return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


@PROPERTIES
@example(request=DEEP_PLAN, accept=None, cut=10)
@example(request=LONG_INTEGER, accept="text/csv", cut=100)
@given(request=requests(), accept=accepts(), cut=st.integers(0, 4096))
def test_app_answers_2xx_with_predictions_or_4xx_with_a_reason(
    request: tuple[bytes, str], accept: str | None, cut: int
) -> None:  # fmt: skip
    body, content_type = request
    status, headers, answer = exchange(body, content_type, accept, min(cut, len(body)))
    if 400 <= status < 500:
        assert headers[b"content-type"] == b"application/json"
        reason = json.loads(answer)["message"]
        assert isinstance(reason, str) and reason
        assert "Traceback" not in reason
        return
    assert status == 200, (status, answer)
    records = parse_records(body, media_type(content_type), max_rows=MAX_ROWS)  # accepted, so this parses
    if headers[b"content-type"] == b"text/csv":
        predictions = [float(line) for line in answer.decode().splitlines()]
    else:
        predictions = json.loads(answer)["predictions"]
    assert len(predictions) == len(records)
    assert all(0.0 <= p <= 1.0 for p in predictions)
