"""The step scripts, run end to end on synthetic data in SageMaker's container layout (local folders)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn

from mlops.features import get_spec
from pipelines.local_run import LocalRunError, LocalRunResult, run_local, synthetic_customer_activity

SPEC = get_spec("customer-churn")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> LocalRunResult:
    return run_local(tmp_path_factory.mktemp("pipeline"), data_version="2024-05-01", code_version="0123abcd")


def test_model_artifact_follows_the_contract(run: LocalRunResult) -> None:
    assert sorted(p.name for p in run.model_dir.iterdir()) == ["model-metadata.json", "model.joblib"]
    metadata = json.loads((run.model_dir / "model-metadata.json").read_text())
    assert metadata["feature_spec"] == SPEC.name
    assert metadata["feature_spec_version"] == SPEC.version
    assert metadata["feature_names"] == list(SPEC.feature_names)
    assert metadata["target"] == SPEC.target
    assert metadata["framework"] == "scikit-learn"
    assert metadata["framework_version"] == sklearn.__version__
    assert (metadata["data_version"], metadata["code_version"]) == ("2024-05-01", "0123abcd")
    model = joblib.load(run.model_dir / "model.joblib")
    assert list(model.feature_names_in_) == list(SPEC.feature_names)
    assert hasattr(model, "predict_proba")


def test_model_archive_holds_the_artifact_at_its_root(run: LocalRunResult) -> None:
    with tarfile.open(run.model_archive, "r:gz") as tar:
        assert sorted(tar.getnames()) == ["model-metadata.json", "model.joblib"]


def test_evaluation_reports_the_condition_metric_above_a_sane_threshold(run: LocalRunResult) -> None:
    report = json.loads(run.evaluation.read_text())
    metrics = report["binary_classification_metrics"]
    assert {"auc", "accuracy", "precision", "recall", "f1", "confusion_matrix"} <= set(metrics)
    assert run.metric("auc") >= 0.75
    assert report["dataset"]["rows"] == sum(sum(row.values()) for row in metrics["confusion_matrix"].values())


def test_predictions_match_reloading_the_model(run: LocalRunResult) -> None:
    predictions = pd.read_csv(run.predictions)
    assert list(predictions.columns) == [SPEC.record_identifier, SPEC.event_time, SPEC.target,
                                         *SPEC.feature_names, "probability"]  # fmt: skip
    model = joblib.load(run.model_dir / "model.joblib")
    expected = model.predict_proba(predictions[list(SPEC.feature_names)])[:, 1]
    np.testing.assert_allclose(predictions["probability"].to_numpy(), expected, rtol=0, atol=1e-12)
    assert len(predictions) == len(pd.read_csv(run.splits["test"]))


def test_features_are_the_spec_transform_of_the_raw_records(run: LocalRunResult) -> None:
    raw = synthetic_customer_activity().set_index([SPEC.record_identifier, SPEC.event_time])
    test = pd.read_csv(run.splits["test"], dtype={SPEC.record_identifier: str})
    for row in test.head(20).to_dict(orient="records"):
        record = {**raw.loc[(row[SPEC.record_identifier], row[SPEC.event_time])].to_dict(),
                  SPEC.record_identifier: row[SPEC.record_identifier]}  # fmt: skip
        expected = SPEC.transform(record)
        assert {name: row[name] for name in SPEC.feature_names} == pytest.approx(expected)


def test_splits_are_disjoint_by_customer_and_cover_every_record(run: LocalRunResult) -> None:
    customers = {split: set(pd.read_csv(path)[SPEC.record_identifier]) for split, path in run.splits.items()}
    assert not customers["train"] & customers["validation"]
    assert not customers["train"] & customers["test"]
    assert not customers["validation"] & customers["test"]
    report = json.loads(run.preprocess_report.read_text())
    assert sum(report["rows"].values()) == report["raw_records"] == len(synthetic_customer_activity())


def test_baseline_statistics_describe_the_feature_columns(run: LocalRunResult) -> None:
    statistics = json.loads(run.statistics.read_text())
    assert [f["name"] for f in statistics["features"]] == list(SPEC.feature_names)
    assert statistics["dataset"]["item_count"] == len(pd.read_csv(run.splits["train"]))
    for feature in statistics["features"]:
        assert feature["inferred_type"] == SPEC.feature_type(feature["name"])
        numbers = feature["numerical_statistics"]
        assert numbers["common"]["num_present"] == statistics["dataset"]["item_count"]
        assert numbers["min"] <= numbers["mean"] <= numbers["max"]
        assert numbers["distribution"]["kll"]["buckets"]


def test_baseline_constraints_cover_the_feature_columns(run: LocalRunResult) -> None:
    constraints = json.loads(run.constraints.read_text())
    assert [f["name"] for f in constraints["features"]] == list(SPEC.feature_names)
    assert all(f["completeness"] == 1.0 for f in constraints["features"])
    assert constraints["monitoring_config"]["evaluate_constraints"] == "Enabled"


def test_a_failing_step_reports_its_output(tmp_path: Path) -> None:
    raw = synthetic_customer_activity(customers=20).drop(columns=["churned"])
    with pytest.raises(LocalRunError, match="lack the columns \\['churned'\\]"):
        run_local(tmp_path, raw)
