"""Training/serving parity: the endpoint's container answers exactly what the pipeline's evaluation predicted.

The pipeline's step scripts run locally on seeded data (:func:`pipelines.local_run.run_local`); the model
archive is unpacked the way SageMaker unpacks it into ``/opt/ml/model``; the inference server starts on
127.0.0.1 on it. Each row of the evaluation's ``predictions.csv`` is traced back to its raw record (by
customer id and event time) and the raw columns are posted, byte for byte as the pipeline read them: the
server computes the features itself, so equal probabilities show that serving computes the same features
and the same model output as training and evaluation did.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from mlops.features import get_spec
from pipelines.local_run import LocalRunResult
from tests.functional.test_inference_server import MAX_ROWS, RAW_COLUMNS, Server, invoke, running_server
from tests.support.inference_artifacts import serving_pipeline_run

SPEC = get_spec("customer-churn")


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> LocalRunResult:
    # Made once per test process and shared with test_inference_container.py (both only read it).
    return serving_pipeline_run(tmp_path_factory)


@pytest.fixture(scope="module")
def endpoint(pipeline_run: LocalRunResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    model_dir = tmp_path_factory.mktemp("opt-ml-model")
    with tarfile.open(pipeline_run.model_archive, "r:gz") as archive:
        archive.extractall(model_dir, filter="data")  # what SageMaker does with model.tar.gz
    with running_server(model_dir, tmp_path_factory.mktemp("logs") / "server.log") as server:
        yield server


def raw_rows_of_predictions(run: LocalRunResult) -> tuple[pd.DataFrame, np.ndarray]:
    """The raw records behind ``predictions.csv`` (as the strings the pipeline read) and their probabilities."""
    key = [SPEC.record_identifier, SPEC.event_time]
    predictions = pd.read_csv(run.predictions, dtype={SPEC.record_identifier: str, SPEC.event_time: str})
    raw = pd.read_csv(run.workdir / "data" / "raw" / "customer_activity.csv", dtype=str, keep_default_na=False)
    joined = predictions[[*key, "probability"]].merge(raw, on=key, how="left", validate="one_to_one")
    assert not joined[list(RAW_COLUMNS)].isna().to_numpy().any(), "a prediction has no raw record"
    return joined, joined["probability"].to_numpy(dtype=np.float64)


def as_json_value(text: str) -> str | int | float:
    """A raw CSV field as a caller would send it in JSON: a number when it is one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def post_csv(server: Server, rows: pd.DataFrame) -> list[float]:
    lines = [",".join(RAW_COLUMNS), *(",".join(row) for row in rows[list(RAW_COLUMNS)].itertuples(index=False))]
    reply = invoke(server, ("\n".join(lines) + "\n").encode(), "text/csv", accept="text/csv")
    assert reply.status == 200, reply.body
    return [float(line) for line in reply.body.decode().splitlines()]


def test_endpoint_returns_the_evaluation_probabilities(pipeline_run: LocalRunResult, endpoint: Server) -> None:
    rows, expected = raw_rows_of_predictions(pipeline_run)
    assert len(rows) >= 50  # a real test split, not a handful of rows
    served: list[float] = []
    for start in range(0, len(rows), MAX_ROWS):
        served += post_csv(endpoint, rows.iloc[start : start + MAX_ROWS])
    np.testing.assert_allclose(np.array(served), expected, rtol=1e-12, atol=0)


def test_json_requests_get_the_same_probabilities(pipeline_run: LocalRunResult, endpoint: Server) -> None:
    """The JSON path (numbers, not strings) agrees with the evaluation too."""
    rows, expected = raw_rows_of_predictions(pipeline_run)
    sample = rows.head(MAX_ROWS)
    records = [{column: as_json_value(row[column]) for column in RAW_COLUMNS} for row in sample.to_dict("records")]
    reply = invoke(endpoint, json.dumps({"instances": records}).encode(), "application/json")
    assert reply.status == 200, reply.body
    np.testing.assert_allclose(reply.json()["predictions"], expected[: len(sample)], rtol=1e-12, atol=0)
