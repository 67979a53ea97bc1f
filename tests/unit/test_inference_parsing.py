"""The inference server's pure parts, in process: parsing, feature matrices, formatting, coalescing, settings."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import MutableMapping
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from containers.inference.inference_server.app import Coalescer, InferenceApp
from containers.inference.inference_server.errors import RequestError
from containers.inference.inference_server.model import LoadedModel
from containers.inference.inference_server.payload import (
    Featurizer,
    format_predictions,
    media_type,
    parse_records,
    response_format,
)
from containers.inference.inference_server.settings import Settings, SettingsError
from mlops.features import get_spec
from mlops.features.spec import compute_features
from pipelines.steps.preprocess import build_features

SPEC = get_spec("customer-churn")
RECORD = {"sessions": 4, "minutes_active": 50.5, "support_tickets": 1, "monthly_spend": 19.99, "plan": "premium"}


def refused(call: Any, *args: Any, **kwargs: Any) -> RequestError:
    with pytest.raises(RequestError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- parsing ----------------------------------------------------------------------------------------


def test_json_object_is_one_record() -> None:
    assert parse_records(json.dumps(RECORD).encode(), "application/json", max_rows=5) == [RECORD]


def test_json_instances_are_records_in_order() -> None:
    second = RECORD | {"plan": "basic"}
    body = json.dumps({"instances": [RECORD, second]}).encode()
    assert parse_records(body, "application/json", max_rows=5) == [RECORD, second]


def test_csv_header_names_the_columns_of_every_row() -> None:
    body = b"\xef\xbb\xbfsessions, plan\n3,basic\n\n5,premium\n"  # BOM, spaced header, blank line
    assert parse_records(body, "text/csv", max_rows=5) == [
        {"sessions": "3", "plan": "basic"},
        {"sessions": "5", "plan": "premium"},
    ]


def test_csv_quoted_fields_keep_commas() -> None:
    assert parse_records(b'plan,note\n"a,b",x\n', "text/csv", max_rows=5) == [{"plan": "a,b", "note": "x"}]


def test_csv_duplicate_header_is_refused() -> None:
    assert refused(parse_records, b"plan,plan\na,b\n", "text/csv", max_rows=5).code == "bad_header"


@pytest.mark.parametrize(
    "body",
    [
        b'plan,note\n"premium,x\n',  # the quote swallows the rest of the body: one field where two are named
        b'plan\n"premium\n',  # the quote swallows the line break: Python's csv module reads "premium\n"
    ],
)
def test_csv_unterminated_quote_is_refused(body: bytes) -> None:
    error = refused(parse_records, body, "text/csv", max_rows=5)
    assert (error.status, error.code) == (400, "bad_csv")
    assert "quoted field is not closed" in error.message


def test_csv_text_after_a_closing_quote_is_refused() -> None:
    # Lenient parsing reads '"premium"x' as 'premiumx': an unknown plan, served silently as tier -1.
    error = refused(parse_records, b'plan,note\n"premium"x,y\n', "text/csv", max_rows=5)
    assert (error.status, error.code) == (400, "bad_csv")
    assert "line 2" in error.message


def test_row_limit_is_inclusive() -> None:
    body = json.dumps({"instances": [RECORD] * 3}).encode()
    assert len(parse_records(body, "application/json", max_rows=3)) == 3
    assert refused(parse_records, body, "application/json", max_rows=2).status == 413


def test_media_type_drops_parameters_and_case() -> None:
    assert media_type("Text/CSV; charset=utf-8") == "text/csv"
    assert media_type(None) == ""


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("text/csv, application/json", "text/csv"),
        ("application/xml, text/*", "text/csv"),
        ("text/csv;q=0, application/json", "application/json"),
    ],
)
def test_response_format_follows_accept(accept: str | None, expected: str) -> None:
    assert response_format(accept) == expected


def test_response_format_refuses_what_it_cannot_produce() -> None:
    assert refused(response_format, "application/x-protobuf").status == 406


# --- feature matrix ---------------------------------------------------------------------------------


def test_matrix_rows_are_the_specs_features_in_spec_order() -> None:
    records = [RECORD, RECORD | {"plan": "unknown", "sessions": 0}]
    matrix = Featurizer(SPEC)(records)
    expected = [[compute_features(SPEC, r)[name] for name in SPEC.feature_names] for r in records]
    assert matrix.dtype == np.float64
    assert matrix.tolist() == expected


def test_csv_strings_give_the_same_matrix_as_json_numbers() -> None:
    as_text = {key: str(value) for key, value in RECORD.items()}
    assert Featurizer(SPEC)([as_text]).tolist() == Featurizer(SPEC)([RECORD]).tolist()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"sessions": "x"}, "record 1: could not convert"),
        ({"monthly_spend": float("nan")}, "record 1: feature 'monthly_spend' has no value"),
        ({"monthly_spend": "-inf"}, "record 1: feature 'monthly_spend'"),
        ({"support_tickets": None}, "record 1:"),
        ({"sessions": [1]}, "record 1:"),
    ],
)
def test_bad_value_names_the_record(change: dict[str, Any], fragment: str) -> None:
    error = refused(Featurizer(SPEC), [RECORD, RECORD | change])
    assert error.status == 400
    assert fragment in error.message


def test_missing_raw_column_is_named() -> None:
    partial = {k: v for k, v in RECORD.items() if k != "minutes_active"}
    assert "lacks column 'minutes_active'" in refused(Featurizer(SPEC), [partial]).message


# --- strict value types ----------------------------------------------------------------------------

RAW_COLUMNS = ("sessions", "minutes_active", "support_tickets", "monthly_spend", "plan")


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("column", RAW_COLUMNS)
def test_boolean_raw_value_is_refused_naming_record_and_field(column: str, value: bool) -> None:
    # float(True) is 1.0 and str(True) is "True" (an unknown plan): the transform alone would serve a plausible,
    # wrong prediction instead of telling the caller.
    error = refused(Featurizer(SPEC), [RECORD, RECORD | {column: value}])
    assert (error.status, error.code) == (400, "bad_record")
    assert error.message.startswith(f"record 1: field '{column}' is a boolean ({json.dumps(value)})")


@pytest.mark.parametrize("column", ["sessions", "minutes_active", "support_tickets", "monthly_spend"])
def test_null_where_a_number_is_needed_names_record_and_field(column: str) -> None:
    # minutes_active is refused through the feature computed from it (minutes_per_session): still named.
    error = refused(Featurizer(SPEC), [RECORD, RECORD | {column: None}])
    assert (error.status, error.code) == (400, "bad_record")
    assert error.message.startswith(f"record 1: field '{column}' is null or empty")


def test_only_the_missing_values_the_spec_needs_are_named() -> None:
    # A missing plan is acceptable (the unknown tier): next to a missing sessions count, only sessions is blamed.
    error = refused(Featurizer(SPEC), [RECORD | {"sessions": None, "plan": None}])
    assert error.message.startswith("record 0: field 'sessions' is null or empty")


def test_refusal_for_another_reason_does_not_blame_a_missing_value() -> None:
    error = refused(Featurizer(SPEC), [RECORD | {"plan": None, "support_tickets": "many"}])
    assert "invalid literal" in error.message
    assert "plan" not in error.message


def test_empty_csv_field_is_a_missing_value_named_in_the_refusal() -> None:
    body = b"sessions,minutes_active,support_tickets,monthly_spend,plan\n,50.5,1,19.99,basic\n"
    error = refused(Featurizer(SPEC), parse_records(body, "text/csv", max_rows=1))
    assert error.message.startswith("record 0: field 'sessions' is null or empty")


def training_vectors(csv_text: str) -> list[list[float]]:
    """Feature vectors as the pipeline's preprocess step computes them from a raw CSV file."""
    features, dropped = build_features(pd.read_csv(io.StringIO(csv_text)), SPEC)
    assert dropped["rejected_by_transform"] == 0, "training refused the row: not a case of parity"
    return features[list(SPEC.feature_names)].to_numpy(dtype=np.float64).tolist()


def test_missing_plan_is_served_as_training_reads_it() -> None:
    # The spec's transform gives a missing plan a meaning (the unknown tier, -1), and training accepts it: an
    # empty CSV field is NaN to pandas. Serving must agree for JSON null and for an empty CSV field alike.
    trained = training_vectors(
        "customer_id,event_time,churned,sessions,minutes_active,support_tickets,monthly_spend,plan\n"
        "c-1,2024-05-01T12:00:00Z,0,4,50.5,1,19.99,\n"
    )
    from_json = Featurizer(SPEC)([RECORD | {"plan": None}]).tolist()
    csv_body = b"sessions,minutes_active,support_tickets,monthly_spend,plan\n4,50.5,1,19.99,\n"
    from_csv = Featurizer(SPEC)(parse_records(csv_body, "text/csv", max_rows=1)).tolist()
    assert from_json == from_csv == trained
    assert trained[0][SPEC.feature_names.index("plan_tier")] == -1


def test_missing_minutes_without_sessions_is_served_as_training_reads_it() -> None:
    # With no sessions the transform does not divide by minutes: training keeps such a row (minutes_per_session 0).
    trained = training_vectors(
        "customer_id,event_time,churned,sessions,minutes_active,support_tickets,monthly_spend,plan\n"
        "c-1,2024-05-01T12:00:00Z,0,0,,1,19.99,basic\n"
    )
    served = Featurizer(SPEC)([RECORD | {"sessions": 0, "minutes_active": None, "plan": "basic"}]).tolist()
    assert served == trained


def test_booleans_and_nulls_in_columns_the_spec_does_not_read_are_ignored() -> None:
    extra = RECORD | {"customer_id": None, "is_trial": True}
    assert Featurizer(SPEC)([extra]).tolist() == Featurizer(SPEC)([RECORD]).tolist()


@pytest.mark.parametrize("column", ["support_tickets", "sessions"])
def test_number_too_large_for_a_float_is_a_400_naming_the_record(column: str) -> None:
    # int("1" * 400) is a valid Python int that float64 cannot hold: refused, not a 500 from numpy's OverflowError.
    error = refused(Featurizer(SPEC), [RECORD, RECORD | {column: "1" * 400}])
    assert (error.status, error.code) == (400, "bad_record")
    assert error.message.startswith("record 1:")


# --- response bodies -----------------------------------------------------------------------------


def test_formats_keep_full_precision() -> None:
    values = np.array([0.1234567890123456789, 1e-12, 0.999999999999])
    assert json.loads(format_predictions(values, "application/json"))["predictions"] == values.tolist()
    assert [float(x) for x in format_predictions(values, "text/csv").decode().split()] == values.tolist()


def test_a_rows_mode_json_answer_holds_the_predictions_only() -> None:
    # The bytes rows-mode clients (and captures) have always had; features are entity mode's, in JSON only.
    assert format_predictions(np.array([0.25, 0.5]), "application/json") == b'{"predictions":[0.25,0.5]}'
    features = [{"sessions": 1}, {"sessions": 2}]
    assert format_predictions(np.array([0.25, 0.5]), "text/csv", features) == b"0.25\n0.5\n"
    assert format_predictions(np.array([0.25, 0.5]), "application/json", features) == (
        b'{"predictions":[0.25,0.5],"features":[{"sessions":1},{"sessions":2}]}'
    )


def test_multiclass_gives_one_row_of_probabilities_per_record() -> None:
    probabilities = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    assert json.loads(format_predictions(probabilities, "application/json"))["predictions"] == probabilities.tolist()
    assert format_predictions(probabilities, "text/csv") == b"0.2,0.3,0.5\n0.1,0.1,0.8\n"


# --- coalescing ----------------------------------------------------------------------------------


def test_matrices_submitted_in_one_turn_share_one_prediction() -> None:
    calls: list[int] = []

    def predict(matrix: np.ndarray) -> np.ndarray:
        calls.append(len(matrix))
        return matrix[:, 0] * 10

    async def scenario() -> list[np.ndarray]:
        coalescer = Coalescer(predict, max_rows=100)
        parts = [np.full((size, 2), float(size)) for size in (1, 3, 2)]
        return list(await asyncio.gather(*(coalescer.submit(part) for part in parts)))

    results = asyncio.run(scenario())
    assert calls == [6]
    assert [r.tolist() for r in results] == [[10.0], [30.0] * 3, [20.0] * 2]


def test_coalesced_rows_are_capped() -> None:
    calls: list[int] = []

    def predict(matrix: np.ndarray) -> np.ndarray:
        calls.append(len(matrix))
        return matrix[:, 0]

    async def scenario() -> None:
        coalescer = Coalescer(predict, max_rows=4)
        await asyncio.gather(*(coalescer.submit(np.zeros((3, 1))) for _ in range(3)))

    asyncio.run(scenario())
    assert calls == [3, 3, 3]


def test_prediction_failure_reaches_every_waiting_request() -> None:
    def predict(matrix: np.ndarray) -> np.ndarray:
        raise RuntimeError("boom")

    async def scenario() -> list[Any]:
        coalescer = Coalescer(predict, max_rows=10)
        return await asyncio.gather(*(coalescer.submit(np.zeros((1, 1))) for _ in range(2)), return_exceptions=True)

    assert [str(r) for r in asyncio.run(scenario())] == ["boom", "boom"]


# --- the ASGI app in process -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded_model() -> LoadedModel:
    rng = np.random.default_rng(0)
    vectors = rng.uniform(0, 10, size=(200, len(SPEC.feature_names)))
    estimator = LogisticRegression().fit(vectors, (vectors[:, 0] > 5).astype(int))
    return LoadedModel(estimator=estimator, spec=SPEC, metadata={}, positive_class=1)


def asgi_call(app: InferenceApp, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    chunks = [body[:10], body[10:]]  # the body in two messages
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("coalesce", [True, False])
def test_app_answers_predict_proba_of_the_spec_vector(loaded_model: LoadedModel, coalesce: bool) -> None:
    app = InferenceApp(loaded_model, Settings(coalesce=coalesce))
    status, body = asgi_call(
        app, "POST", "/invocations", json.dumps(RECORD).encode(), {"content-type": "application/json"}
    )
    vector = np.array([[compute_features(SPEC, RECORD)[name] for name in SPEC.feature_names]])
    assert status == 200
    assert json.loads(body)["predictions"] == loaded_model.estimator.predict_proba(vector)[:, 1].tolist()


def test_app_unexpected_failure_is_a_500_without_details(loaded_model: LoadedModel) -> None:
    class Broken:
        def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
            raise RuntimeError("secret internals")

    app = InferenceApp(LoadedModel(Broken(), SPEC, {}, 1), Settings(coalesce=False))
    status, body = asgi_call(
        app, "POST", "/invocations", json.dumps(RECORD).encode(), {"content-type": "application/json"}
    )
    assert (status, json.loads(body)) == (500, {"message": "internal error"})


def stalled_body_call(app: InferenceApp) -> tuple[int, dict[bytes, bytes], bytes]:
    """POST /invocations whose body stops arriving after its first chunk (a client that stalls)."""
    scope = {"type": "http", "method": "POST", "path": "/invocations",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"500")]}  # fmt: skip
    sent: list[MutableMapping[str, Any]] = []
    first = [{"type": "http.request", "body": b'{"instances": [', "more_body": True}]

    async def receive() -> dict[str, Any]:
        if first:
            return first.pop()
        await asyncio.Event().wait()  # never set: the rest of the body never comes
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=5))
    return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def test_body_not_received_in_time_is_a_408_that_closes_the_connection(loaded_model: LoadedModel) -> None:
    app = InferenceApp(loaded_model, Settings(body_timeout=0.05))
    status, headers, body = stalled_body_call(app)
    assert status == 408
    # The rest of the body may still arrive: keeping the connection would read it as the next request.
    assert headers[b"connection"] == b"close"
    assert "not received within 0.05 s" in json.loads(body)["message"]


# --- settings ------------------------------------------------------------------------------------


def test_settings_come_from_sagemaker_variables_then_overrides() -> None:
    env = {"SM_MODEL_DIR": "/models/a", "SAGEMAKER_BIND_TO_PORT": "9000", "SAGEMAKER_MODEL_SERVER_WORKERS": "3"}
    settings = Settings.from_env(env, port=None, host="127.0.0.1")
    assert (settings.model_dir, settings.port, settings.workers, settings.host) == ("/models/a", 9000, 3, "127.0.0.1")
    assert Settings.from_env(settings.to_env()) == settings


def test_defaults_follow_the_container_contract() -> None:
    settings = Settings.from_env({})
    assert (settings.model_dir, settings.port, settings.host) == ("/opt/ml/model", 8080, "0.0.0.0")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT='http' is not an integer"),
        ({"SAGEMAKER_BIND_TO_PORT": "70000"}, "port (SAGEMAKER_BIND_TO_PORT) must be a TCP port"),
        ({"INFERENCE_MAX_ROWS": "0"}, "max_rows (INFERENCE_MAX_ROWS) must be a positive integer"),
        ({"INFERENCE_COALESCE": "maybe"}, "INFERENCE_COALESCE='maybe' is not a boolean"),
    ],
)
def test_bad_setting_names_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert fragment in str(caught.value)


def test_connection_limits_come_from_the_environment_and_reach_workers() -> None:
    env = {
        "INFERENCE_HEADER_TIMEOUT": "2.5",
        "INFERENCE_BODY_TIMEOUT": "7",
        "INFERENCE_KEEP_ALIVE_TIMEOUT": "30",
        "INFERENCE_MAX_CONNECTIONS": "64",
    }
    settings = Settings.from_env(env)
    assert (settings.header_timeout, settings.body_timeout) == (2.5, 7.0)
    assert (settings.keep_alive_timeout, settings.max_connections) == (30, 64)
    assert Settings.from_env(settings.to_env()) == settings  # worker processes read the same limits


def test_default_timeouts_leave_time_to_answer_within_sagemakers_60_s() -> None:
    # SageMaker stops waiting for an invocation after 60 s: a request still arriving by then is lost anyway,
    # and the model needs time to predict and answer once the body is in.
    settings = Settings()
    assert settings.header_timeout + settings.body_timeout <= 45
    # Idle connections outlive SageMaker's front end's own idle timeout, so the server never closes one first.
    assert settings.keep_alive_timeout > 60


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"INFERENCE_HEADER_TIMEOUT": "0"}, "header_timeout (INFERENCE_HEADER_TIMEOUT) must be a positive number"),
        ({"INFERENCE_BODY_TIMEOUT": "-1"}, "body_timeout (INFERENCE_BODY_TIMEOUT) must be a positive number"),
        ({"INFERENCE_BODY_TIMEOUT": "nan"}, "body_timeout (INFERENCE_BODY_TIMEOUT) must be a positive number"),
        ({"INFERENCE_HEADER_TIMEOUT": "inf"}, "header_timeout (INFERENCE_HEADER_TIMEOUT) must be a positive number"),
        ({"INFERENCE_HEADER_TIMEOUT": "soon"}, "INFERENCE_HEADER_TIMEOUT='soon' is not a number"),
        ({"INFERENCE_MAX_CONNECTIONS": "0"}, "max_connections (INFERENCE_MAX_CONNECTIONS) must be a positive integer"),
        ({"INFERENCE_KEEP_ALIVE_TIMEOUT": "0"}, "keep_alive_timeout (INFERENCE_KEEP_ALIVE_TIMEOUT) must be a positive"),
    ],
)
def test_bad_connection_limit_names_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert fragment in str(caught.value)
