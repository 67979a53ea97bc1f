"""The drift command's contract, end to end, on capture files generated from the real feature spec.

``python -m mlops.monitoring.drift`` runs on folders of SageMaker data-capture lines built from seeded raw
``customer_activity`` rows (:mod:`tools.synthetic_capture`), and on the same layout in S3 under moto, with
its CloudWatch metrics read back from moto. The training pipeline's preprocess step and the monitor step run
from the published code bundle in a clean interpreter, as the processing jobs run them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from mlops.features import get_spec
from mlops.monitoring.drift import BASELINE_FORMAT
from mlops.monitoring.drift.analysis import AnalysisSettings, WindowAnalysis
from mlops.monitoring.drift.baseline import baseline_from_raw
from mlops.monitoring.drift.cli import main
from mlops.monitoring.drift.profile import CHUNK
from pipelines.bundle import write_code_bundle
from pipelines.local_run import synthetic_customer_activity
from tools.synthetic_capture import (
    capture_line,
    capture_lines,
    churn_probability,
    entity_capture_line,
    ground_truth_line,
    write_lines,
)

SPEC = get_spec("customer-churn")
ROOT = Path(__file__).resolve().parents[2]
PROGRAM_ERROR = "python -m mlops.monitoring.drift: error: "
HOUR_FOLDER = "churn-prod/AllTraffic/2024/05/01/12"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw training rows (CSV), the reference the baseline is computed from."""
    path = tmp_path_factory.mktemp("reference") / "customer_activity.csv"
    synthetic_customer_activity(customers=1500, days=3, seed=1).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def live() -> pd.DataFrame:
    """Raw rows of the same distribution as the reference (another seed)."""
    return synthetic_customer_activity(customers=400, days=3, seed=2)


def capture_folder(root: Path, lines: list[str] | Iterator[str]) -> Path:
    write_lines(root / HOUR_FOLDER / "capture.jsonl", lines)
    return root


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlops.monitoring.drift", *args]


def drift(reference: Path, capture: Path, out: Path, *extra: str) -> dict[str, Any]:
    """Run the command in process; the report it wrote (the exit status must be 0)."""
    args = ["--model", SPEC.name, "--reference", str(reference), "--capture", str(capture), "--out", str(out)]
    assert main([*args, *extra]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


# --- the contract ---------------------------------------------------------------------------------------


def test_an_unshifted_window_is_analysed_and_nothing_is_flagged(
    reference: Path, live: pd.DataFrame, tmp_path: Path
) -> None:
    capture = capture_folder(tmp_path / "capture", capture_lines(live, batch=3))
    out = tmp_path / "report.json"
    finished = subprocess.run(
        command("--model", SPEC.name, "--reference", str(reference), "--capture", str(capture), "--out", str(out)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["records"] == len(live)
    assert report["malformed"] == 0
    assert set(report["features"]) == set(SPEC.feature_names)
    for verdict in report["features"].values():
        assert isinstance(verdict["score"], float) and isinstance(verdict["threshold"], float)
        assert verdict["drifted"] is (verdict["score"] >= verdict["threshold"])
    assert report["drifted"] == []


def test_a_shifted_feature_is_flagged_and_named(reference: Path, live: pd.DataFrame, tmp_path: Path) -> None:
    shifted = live.assign(monthly_spend=live["monthly_spend"] + 15.0)
    report = drift(reference, capture_folder(tmp_path / "c", capture_lines(shifted)), tmp_path / "r.json")
    assert report["drifted"] == ["monthly_spend"]
    assert report["features"]["monthly_spend"]["score"] >= report["features"]["monthly_spend"]["threshold"]


def test_a_per_feature_threshold_overrides_the_default(reference: Path, live: pd.DataFrame, tmp_path: Path) -> None:
    shifted = live.assign(monthly_spend=live["monthly_spend"] + 15.0)
    capture = capture_folder(tmp_path / "c", capture_lines(shifted))
    report = drift(reference, capture, tmp_path / "r.json", "--thresholds", '{"monthly_spend": 0.95}')
    assert report["features"]["monthly_spend"]["threshold"] == 0.95
    assert report["drifted"] == []


def test_a_request_carrying_a_batch_of_rows_counts_each_row(
    reference: Path, live: pd.DataFrame, tmp_path: Path
) -> None:
    report = drift(reference, capture_folder(tmp_path / "c", capture_lines(live, batch=7)), tmp_path / "r.json")
    assert report["records"] == len(live)
    assert report["capture"]["requests"] == -(-len(live) // 7)
    assert report["predictions"]["count"] == len(live)


def test_csv_json_and_base64_requests_give_the_same_analysis(
    reference: Path, live: pd.DataFrame, tmp_path: Path
) -> None:
    encodings = {
        "csv": {"content_type": "text/csv"},
        "json": {"content_type": "application/json", "response_type": "text/csv"},
        "base64": {"content_type": "text/csv", "base64_input": True},
    }
    scores = {}
    for name, options in encodings.items():
        capture = capture_folder(tmp_path / name, capture_lines(live, batch=2, **options))
        report = drift(reference, capture, tmp_path / f"{name}.json")
        assert report["records"] == len(live), name
        scores[name] = {feature: v["score"] for feature, v in report["features"].items()}
    assert scores["csv"] == scores["json"] == scores["base64"]


def test_malformed_lines_are_counted_by_reason_kept_as_examples_and_never_fatal(
    reference: Path, live: pd.DataFrame, tmp_path: Path
) -> None:
    rows = live.head(2).to_dict(orient="records")
    bad_response = json.loads(capture_line(rows, event_id="r-1"))
    bad_response["captureData"]["endpointOutput"]["data"] = '{"message": "internal error"}'
    too_many = json.loads(capture_line(rows, event_id="r-2", probabilities=[0.1, 0.2, 0.3]))
    ragged = json.loads(capture_line(rows, event_id="r-3"))
    ragged["captureData"]["endpointInput"]["data"] += "c-9,2024\n"
    unparsable = capture_line([{**rows[0], "sessions": "many"}], event_id="r-4", probabilities=[0.5])
    lines = [
        *capture_lines(live),
        "this is not JSON",
        json.dumps({"captureData": {}, "eventMetadata": {"eventId": "r-0"}}),
        json.dumps(ragged),
        unparsable,
        json.dumps(bad_response),
        json.dumps(too_many),
    ]
    report = drift(reference, capture_folder(tmp_path / "c", lines), tmp_path / "r.json")
    assert report["malformed_by_reason"] == {
        "not_json": 1,
        "no_input": 1,
        "bad_request": 1,
        "bad_record": 1,
        "bad_response": 2,
        "entity_without_features": 0,
        "bad_features": 0,
        "unreadable_object": 0,
    }
    assert report["malformed"] == 6
    assert report["malformed_responses"] == 2
    # The requests whose response is unusable still describe the traffic; their predictions are left out.
    assert report["records"] == len(live) + 4
    assert report["predictions"]["count"] == len(live)
    first = report["malformed_examples"][0]
    assert first["reason"] == "not_json"
    assert first["location"].endswith(f"capture.jsonl:{len(live) + 1}")


def test_ground_truth_is_joined_by_inference_id_else_event_id(
    reference: Path, live: pd.DataFrame, tmp_path: Path
) -> None:
    rows = live.to_dict(orient="records")
    lines, truth, pairs = [], [], []
    for number, row in enumerate(rows):
        with_inference_id = number % 2 == 0
        inference_id = f"inf-{number}" if with_inference_id else None
        lines.append(capture_line([row], event_id=f"ev-{number}", inference_id=inference_id))
        if number % 3 == 0:  # a third of the requests are labelled, by the id Model Monitor would join on
            truth.append(ground_truth_line(inference_id or f"ev-{number}", [row["churned"]]))
            pairs.append((row["churned"], churn_probability(row)))
        elif with_inference_id:  # an eventId where an inferenceId exists must not match
            truth.append(ground_truth_line(f"ev-{number}", [1 - row["churned"]]))
    truth += ['{"groundTruthData": {"data": "maybe", "encoding": "CSV"}, "eventMetadata": {"eventId": "ev-1"}}']
    write_lines(tmp_path / "truth" / "2024/05/01/13/labels.jsonl", truth)
    report = drift(
        reference, capture_folder(tmp_path / "c", lines), tmp_path / "r.json", "--ground-truth", str(tmp_path / "truth")
    )
    section = report["ground_truth"]
    assert section["matched"] == len(pairs)
    assert section["malformed"] == 1
    # Imported by the two tests using it rather than at collection, which every test process pays (~0.1 s).
    from sklearn import metrics

    labels = np.array([label for label, _ in pairs])
    scores = np.array([score for _, score in pairs])
    assert section["metrics"]["auc"] == pytest.approx(metrics.roc_auc_score(labels, scores))
    assert section["metrics"]["f1"] == pytest.approx(metrics.f1_score(labels, scores >= 0.5))


def test_segments_report_each_values_positive_rate_and_the_rest_aggregated(
    reference: Path, live: pd.DataFrame, tmp_path: Path
) -> None:
    capture = capture_folder(tmp_path / "c", capture_lines(live))
    probabilities = np.array([churn_probability(row) for row in live.to_dict(orient="records")])
    report = drift(reference, capture, tmp_path / "r.json", "--segments", "plan")
    values = report["segments"]["plan"]["values"]
    assert set(values) == set(live["plan"])
    for plan, figures in values.items():
        mask = (live["plan"] == plan).to_numpy()
        assert figures["records"] == mask.sum()
        assert figures["positive_rate"] == pytest.approx((probabilities[mask] >= 0.5).mean())
    capped = drift(reference, capture, tmp_path / "capped.json", "--segments", "plan", "--max-segment-values", "1")
    section = capped["segments"]["plan"]
    most_frequent = live["plan"].value_counts().index[0]
    assert set(section["values"]) == {most_frequent, "__other__"}
    assert sum(v["records"] for v in section["values"].values()) == len(live)
    assert section["truncated"] is True


# --- entity request mode: features from the captured answers -----------------------------------------------


def scores_of(report: dict[str, Any]) -> dict[str, float]:
    return {feature: verdict["score"] for feature, verdict in report["features"].items()}


def test_an_entity_mode_capture_is_analysed_like_the_rows_it_scored(
    reference: Path, live: pd.DataFrame, tmp_path: Path
) -> None:
    rows = drift(reference, capture_folder(tmp_path / "rows", capture_lines(live, batch=3)), tmp_path / "rows.json")
    forms = {
        "single": {"batch": 1},
        "instances": {"batch": 3},
        "csv ids": {"batch": 3, "content_type": "text/csv"},
    }
    for name, options in forms.items():
        capture = capture_folder(tmp_path / name, capture_lines(live, entity=True, **options))
        report = drift(reference, capture, tmp_path / f"{name}.json")
        assert (report["records"], report["malformed"]) == (len(live), 0), name
        assert report["predictions"] == rows["predictions"], name
        assert scores_of(report) == scores_of(rows), name
        assert report["data_quality"] == rows["data_quality"], name
        assert report["drifted"] == [], name


def test_a_shifted_feature_of_an_entity_mode_capture_is_flagged_and_the_others_are_not(
    reference: Path, live: pd.DataFrame, tmp_path: Path
) -> None:
    shifted = live.assign(monthly_spend=live["monthly_spend"] + 15.0)
    capture = capture_folder(tmp_path / "c", capture_lines(shifted, batch=4, entity=True))
    report = drift(reference, capture, tmp_path / "r.json")
    assert report["records"] == len(live)
    assert report["drifted"] == ["monthly_spend"]


def test_entity_requests_answered_in_csv_show_as_drift_not_measured(
    reference: Path, live: pd.DataFrame, tmp_path: Path
) -> None:
    rows = live.head(50)
    lines = [
        *capture_lines(rows, batch=2, entity=True, response_type="text/csv"),
        *capture_lines(rows, batch=2, entity=True, content_type="text/csv", response_type="text/csv", prefix="c"),
    ]
    report = drift(reference, capture_folder(tmp_path / "c", lines), tmp_path / "r.json")
    assert report["malformed_by_reason"]["entity_without_features"] == len(lines)
    assert report["malformed"] == len(lines)
    assert (report["records"], report["features"], report["drifted"]) == (0, {}, [])
    assert "Accept: application/json" in report["malformed_examples"][0]["message"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda answer: answer["features"].pop(), "bad_features"),
        (lambda answer: answer["features"][0].pop("plan_tier"), "bad_features"),
        (lambda answer: answer["features"][0].update(plan="basic"), "bad_features"),
        (lambda answer: answer["features"][0].update(sessions="3"), "bad_features"),
        (lambda answer: answer["features"][0].update(plan_tier=1.5), "bad_features"),
        (lambda answer: answer.pop("features"), "entity_without_features"),
        (lambda answer: answer.pop("predictions"), "bad_response"),
    ],
)
def test_unusable_entity_answers_leave_the_request_out_under_their_reason(
    reference: Path, live: pd.DataFrame, tmp_path: Path, change: Any, reason: str
) -> None:
    event = json.loads(next(capture_lines(live.head(2), batch=2, entity=True)))
    output = event["captureData"]["endpointOutput"]
    answer = json.loads(output["data"])
    change(answer)
    output["data"] = json.dumps(answer)
    lines = [*capture_lines(live.head(10), entity=True, prefix="ok"), json.dumps(event)]
    report = drift(reference, capture_folder(tmp_path / "c", lines), tmp_path / "r.json")
    assert {k: v for k, v in report["malformed_by_reason"].items() if v} == {reason: 1}
    assert report["records"] == 10


def test_entity_mode_predictions_are_joined_with_ground_truth_by_inference_id(
    reference: Path, live: pd.DataFrame, tmp_path: Path
) -> None:
    rows = live.to_dict(orient="records")
    lines, truth, pairs = [], [], []
    for number, row in enumerate(rows):
        lines.append(entity_capture_line([row], event_id=f"ev-{number}", inference_id=f"inf-{number}"))
        if number % 2 == 0:
            truth.append(ground_truth_line(f"inf-{number}", [row["churned"]]))
            pairs.append((row["churned"], churn_probability(row)))
    write_lines(tmp_path / "truth" / "2024/05/01/13/labels.jsonl", truth)
    capture = capture_folder(tmp_path / "c", lines)
    report = drift(reference, capture, tmp_path / "r.json", "--ground-truth", str(tmp_path / "truth"))
    from sklearn import metrics  # imported where used, as in test_ground_truth_is_joined_by_inference_id_else_event_id

    labels = np.array([label for label, _ in pairs])
    scores = np.array([score for _, score in pairs])
    assert report["ground_truth"]["matched"] == len(pairs)
    assert report["model_quality"]["auc"] == pytest.approx(metrics.roc_auc_score(labels, scores))


def test_segments_by_a_feature_read_the_scored_value_in_either_mode(
    reference: Path, live: pd.DataFrame, tmp_path: Path
) -> None:
    tiers = {"basic": "0", "standard": "1", "premium": "2"}
    by_plan = drift(
        reference, capture_folder(tmp_path / "r", capture_lines(live)), tmp_path / "p.json", "--segments", "plan"
    )
    expected = {tiers[plan]: figures for plan, figures in by_plan["segments"]["plan"]["values"].items()}
    for name, entity in (("rows", False), ("entity", True)):
        capture = capture_folder(tmp_path / name, capture_lines(live, batch=2, entity=entity))
        report = drift(reference, capture, tmp_path / f"{name}.json", "--segments", "plan_tier,plan")
        assert report["segments"]["plan_tier"]["values"] == expected, name
    # An entity-mode request has no raw columns: a raw-column segment has no value there.
    assert set(report["segments"]["plan"]["values"]) == {"(missing)"}


def test_a_local_window_reads_only_its_hour_folders(reference: Path, live: pd.DataFrame, tmp_path: Path) -> None:
    rows = live.head(300)
    for hour, part in zip((11, 12, 13), (rows.iloc[:100], rows.iloc[100:200], rows.iloc[200:]), strict=True):
        folder = tmp_path / "c" / f"churn-prod/AllTraffic/2024/05/01/{hour}"
        write_lines(folder / "capture.jsonl", capture_lines(part, prefix=f"h{hour}"))
    write_lines(tmp_path / "c" / "loose.jsonl", capture_lines(rows.iloc[:5]))  # no hour path: outside any window
    # A run starting a little after the hour analyses the whole hours before it.
    window = ("--window-end", "2024-05-01T13:00:07.250Z", "--window-hours", "2")
    report = drift(reference, tmp_path / "c", tmp_path / "r.json", *window)
    assert (report["records"], report["capture"]["objects"], report["capture"]["skipped_objects"]) == (200, 2, 2)
    everything = drift(reference, tmp_path / "c", tmp_path / "all.json")
    assert everything["records"] == 305


def test_analysis_state_stays_bounded_as_lines_stream_in(reference: Path) -> None:
    baseline = baseline_from_raw(SPEC, pd.read_csv(reference))
    analysis = WindowAnalysis(SPEC, baseline, AnalysisSettings())
    rows = synthetic_customer_activity(customers=1000, days=3, seed=5)
    for _ in range(3):
        for line in capture_lines(rows, batch=1):
            analysis.add_line(line)
            assert all(len(feature.values.buffer) < CHUNK for feature in analysis.features)
    assert analysis.records == 3 * len(rows)


# --- unusable input: exit 2, one line, no report ------------------------------------------------------------

BAD_INPUTS = {
    "missing reference": (["--reference", "{tmp}/nope.csv"], "--reference {tmp}/nope.csv: no such file"),
    "empty reference": (["--reference", "{tmp}/empty.csv"], "--reference {tmp}/empty.csv: no rows"),
    "unknown spec": (["--model", "no-such-spec"], "--model: unknown feature spec 'no-such-spec'"),
    "missing capture folder": (["--capture", "{tmp}/nowhere"], "--capture {tmp}/nowhere: no such folder"),
    "thresholds not JSON": (["--thresholds", "{{sessions: 1}}"], "--thresholds '{{sessions: 1}}' is not JSON"),
    "threshold of no feature": (["--thresholds", '{{"speed": 0.1}}'], "--thresholds names ['speed']"),
    "hours without end": (["--window-hours", "3"], "--window-hours needs --window-end"),
    "bad window end": (["--window-end", "yesterday"], "--window-end 'yesterday' is not an ISO-8601 date-time"),
    "baseline of another spec": (["--reference", "{tmp}/other.json"], "the baseline is for feature spec 'other'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_unusable_input_exits_2_with_one_line_naming_the_problem(
    reference: Path, live: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    (tmp_path / "other.json").write_text(
        json.dumps({"format": BASELINE_FORMAT, "feature_spec": "other", "feature_names": ["x"], "features": {"x": {}}}),
        encoding="utf-8",
    )
    capture = capture_folder(tmp_path / "c", capture_lines(live.head(10)))
    options = {"--model": SPEC.name, "--reference": str(reference), "--capture": str(capture)}
    overrides, expected = BAD_INPUTS[case]
    for option, value in zip(overrides[::2], overrides[1::2], strict=True):
        options[option] = value.format(tmp=tmp_path)
    args = [item for pair in options.items() for item in pair] + ["--out", str(tmp_path / "r.json")]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(PROGRAM_ERROR)
    assert expected.format(tmp=tmp_path) in err
    assert err.count("\n") == 1
    assert not (tmp_path / "r.json").exists()


def test_a_real_process_reports_unusable_input_without_a_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "x.csv")
    finished = subprocess.run(
        command("--model", SPEC.name, "--reference", missing, "--capture", str(tmp_path), "--out", str(tmp_path / "r")),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines()[-1] == f"{PROGRAM_ERROR}--reference {tmp_path / 'x.csv'}: no such file"
    assert "Traceback" not in finished.stderr


# --- the processing jobs: preprocess writes the baseline, monitor reads it, from the code bundle -------------


def run_step(script: Path, args: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    """A step script in a clean interpreter: only the staged code_lib, nothing from this repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    env.update({"MLOPS_PROCESSING_ROOT": str(root), "MLOPS_CODE_DIR": str(root / "input" / "code_lib")})
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def stage(code: Path, root: Path, script: str) -> Path:
    (root / "input" / "code").mkdir(parents=True)
    (root / "input" / "code" / script).write_bytes((code / script).read_bytes())
    (root / "input" / "code_lib").mkdir(parents=True)
    os.symlink(code / "mlops", root / "input" / "code_lib" / "mlops")
    return root / "input" / "code" / script


def test_the_training_baseline_from_the_code_bundle_is_the_monitor_steps_reference(
    live: pd.DataFrame, tmp_path: Path
) -> None:
    code = write_code_bundle(tmp_path / "code")
    pre = tmp_path / "preprocess"
    (pre / "input" / "raw").mkdir(parents=True)
    synthetic_customer_activity(customers=600, days=3, seed=1).to_csv(pre / "input" / "raw" / "raw.csv", index=False)
    finished = run_step(stage(code, pre, "preprocess.py"), ["--feature-spec", SPEC.name], pre)
    assert finished.returncode == 0, finished.stderr
    baseline_path = pre / "output" / "baseline" / "drift-baseline.json"
    baseline = json.loads(baseline_path.read_text(encoding="utf-8"))
    train = pd.read_csv(pre / "output" / "train" / "train.csv")
    assert baseline["format"] == BASELINE_FORMAT
    assert baseline["rows"] == len(train)
    assert baseline["target"]["positive_rate"] == pytest.approx(train[SPEC.target].mean())
    # Model Monitor's files are still written next to it.
    assert {"statistics.json", "constraints.json"} <= {p.name for p in baseline_path.parent.iterdir()}

    mon = tmp_path / "monitor"
    capture = capture_folder(tmp_path / "capture", capture_lines(live, batch=4))
    # The step's baseline output folder will do: the job finds drift-baseline.json in it.
    args = ["--model", SPEC.name, "--reference", str(baseline_path.parent), "--capture", str(capture)]
    finished = run_step(stage(code, mon, "monitor.py"), [*args, "--out", str(tmp_path / "report.json")], mon)
    assert finished.returncode == 0, finished.stderr
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert (report["records"], report["drifted"]) == (len(live), [])


# --- on AWS: S3 window, partitioned report, CloudWatch metrics (moto) --------------------------------------

BUCKET = "mlops-monitoring"
CAPTURE = f"s3://{BUCKET}/churn/data-capture/"
NAMESPACE = "MLOps/ModelMonitoring"
DIMENSIONS = [{"Name": "Model", "Value": "churn"}, {"Name": "Endpoint", "Value": "churn-prod"}]
WINDOW_END = datetime(2024, 5, 1, 14, tzinfo=UTC)


@pytest.fixture(scope="module")
def bucket_objects(
    reference: Path, live: pd.DataFrame
) -> tuple[dict[str, bytes], dict[datetime, list[dict[str, Any]]]]:
    """What :func:`aws` puts in the bucket (key -> body), and the rows captured each hour.

    Only the bytes are shared between tests, computed once: the baseline of the reference rows and 2,000 capture
    lines took ~100 ms for each test. Each test still gets a new bucket holding them, in a mock of its own."""
    objects: dict[str, bytes] = {}
    baseline = baseline_from_raw(SPEC, pd.read_csv(reference), source="train.csv")
    objects["baselines/drift-baseline.json"] = json.dumps(baseline).encode()
    per_hour = {}
    rows = live.to_dict(orient="records")
    for index, hour in enumerate(WINDOW_END - timedelta(hours=h) for h in (4, 3, 2, 1, 0)):
        chunk = rows[index * 200 : (index + 1) * 200]
        per_hour[hour] = chunk
        for variant in ("AllTraffic", "Shadow"):
            lines = [
                capture_line([row], event_id=f"{variant}-{hour:%H}-{n}", inference_id=f"{variant}-{hour:%H}-{n}")
                for n, row in enumerate(chunk)
            ]
            key = f"churn/data-capture/churn-prod/{variant}/{hour:%Y/%m/%d/%H}/capture-{hour:%H}.jsonl"
            objects[key] = ("\n".join(lines) + "\n").encode()
    truth = [
        ground_truth_line(f"AllTraffic-{hour:%H}-{n}", [row["churned"]])
        for hour, chunk in per_hour.items()
        for n, row in enumerate(chunk)
    ]
    objects["churn/ground-truth/2024/05/01/13/labels.jsonl"] = "\n".join(truth).encode()
    objects["churn/ground-truth/2024/04/30/09/old.jsonl"] = truth[0].encode()
    return objects, per_hour


@pytest.fixture
def aws(
    bucket_objects: tuple[dict[str, bytes], dict[datetime, list[dict[str, Any]]]],
) -> Iterator[dict[str, Any]]:
    """A monitoring bucket holding a baseline, capture for hours 10..14 and ground truth, under moto."""
    objects, per_hour = bucket_objects
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for key, body in objects.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        yield {"s3": s3, "cloudwatch": boto3.client("cloudwatch"), "per_hour": per_hour}


def aws_args(*extra: str, window_end: datetime = WINDOW_END) -> list[str]:
    return [
        "--model",
        SPEC.name,
        "--reference",
        f"s3://{BUCKET}/baselines/drift-baseline.json",
        "--capture",
        CAPTURE,
        "--out",
        f"s3://{BUCKET}/reports/",
        "--window-end",
        window_end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--window-hours",
        "2",
        "--segments",
        "plan",
        "--metrics-namespace",
        NAMESPACE,
        "--dimension",
        "Model=churn",
        "--dimension",
        "Endpoint=churn-prod",
        *extra,
    ]


def the_report(s3: Any) -> tuple[str, dict[str, Any], str]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="reports/").get("Contents", [])]
    assert len(keys) == 1, keys
    body = s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read().decode()
    return keys[0], json.loads(body), body


def metric_sum(cloudwatch: Any, name: str, *extra: dict[str, str]) -> float | None:
    """The sum of one metric's data with exactly these dimensions (as CloudWatch matches them)."""
    now = datetime.now(UTC)
    query = {
        "Id": "m",
        "MetricStat": {
            "Metric": {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": [*DIMENSIONS, *extra]},
            "Period": 3600,
            "Stat": "Sum",
        },
    }
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[query], StartTime=now - timedelta(minutes=30), EndTime=now + timedelta(minutes=30)
    )["MetricDataResults"][0]
    return result["Values"][0] if result["Values"] else None


def test_the_window_reads_only_its_hours_from_every_variant(aws: dict[str, Any]) -> None:
    assert main(aws_args(window_end=WINDOW_END + timedelta(seconds=5))) == 0  # as a scheduled run starts
    _, report, _ = the_report(aws["s3"])
    in_window = [h for h in aws["per_hour"] if WINDOW_END - timedelta(hours=2) <= h < WINDOW_END]
    assert report["capture"]["objects"] == 2 * len(in_window)  # AllTraffic and Shadow, hours 12 and 13
    assert report["records"] == 2 * sum(len(aws["per_hour"][h]) for h in in_window)
    window = (report["window_start"], report["window_end"], report["window_hours"])
    assert window == ("2024-05-01T12:00:00Z", "2024-05-01T14:00:00Z", 2)
    assert (report["endpoint"], report["model_quality"]) == ("churn-prod", None)


def test_the_report_is_one_json_line_under_its_model_and_date_partition(aws: dict[str, Any]) -> None:
    assert main(aws_args()) == 0
    key, report, body = the_report(aws["s3"])
    # The partition is the model's name (its Model dimension), not its feature spec's.
    assert re.fullmatch(r"reports/model=churn/date=2024-05-01/20240501T140000Z-[0-9a-f]{8}\.json", key)
    assert body.count("\n") == 1 and body.endswith("\n")
    assert key.endswith(f"-{report['run_id'][:8]}.json")
    assert (report["model"], report["feature_spec"]) == ("churn", SPEC.name)


def test_the_model_name_option_names_the_partition(aws: dict[str, Any]) -> None:
    assert main(aws_args("--model-name", "churn-eu")) == 0
    key, report, _ = the_report(aws["s3"])
    assert key.startswith("reports/model=churn-eu/date=2024-05-01/")
    assert report["model"] == "churn-eu"


def test_ground_truth_is_read_from_the_windows_start_on_and_joined(aws: dict[str, Any]) -> None:
    assert main(aws_args("--ground-truth", f"s3://{BUCKET}/churn/ground-truth/")) == 0
    _, report, _ = the_report(aws["s3"])
    assert report["ground_truth"]["files"] == 1  # the 2024-04-30 file was collected before the window
    in_window = [h for h in aws["per_hour"] if WINDOW_END - timedelta(hours=2) <= h < WINDOW_END]
    assert report["ground_truth"]["matched"] == sum(len(aws["per_hour"][h]) for h in in_window)
    assert report["model_quality"] == {
        "matched": report["ground_truth"]["matched"],
        **report["ground_truth"]["metrics"],
    }


def test_the_metrics_contract_is_published_to_cloudwatch(aws: dict[str, Any]) -> None:
    assert main(aws_args("--ground-truth", f"s3://{BUCKET}/churn/ground-truth/")) == 0
    _, report, _ = the_report(aws["s3"])
    cloudwatch = aws["cloudwatch"]
    assert metric_sum(cloudwatch, "RecordsAnalyzed") == report["records"]
    assert metric_sum(cloudwatch, "MalformedRecords") == 0
    assert metric_sum(cloudwatch, "DriftedFeatures") == len(report["drifted"])
    for feature, verdict in report["features"].items():
        where = {"Name": "Feature", "Value": feature}
        assert metric_sum(cloudwatch, "FeatureDriftScore", where) == pytest.approx(verdict["score"])
        assert metric_sum(cloudwatch, "FeatureDriftRatio", where) == pytest.approx(
            verdict["score"] / verdict["threshold"]
        )
    assert metric_sum(cloudwatch, "PositiveRate") == pytest.approx(report["predictions"]["positive_rate"])
    assert metric_sum(cloudwatch, "GroundTruthMatched") == report["ground_truth"]["matched"]
    for name, value in report["ground_truth"]["metrics"].items():
        assert metric_sum(cloudwatch, "ModelQuality", {"Name": "Metric", "Value": name}) == pytest.approx(value)
    segment = [{"Name": "Segment", "Value": "plan"}, {"Name": "SegmentValue", "Value": "basic"}]
    basic = report["segments"]["plan"]["values"]["basic"]
    assert metric_sum(cloudwatch, "PositiveRate", *segment) == pytest.approx(basic["positive_rate"])
    assert metric_sum(cloudwatch, "ModelQuality", *segment, {"Name": "Metric", "Value": "accuracy"}) == pytest.approx(
        basic["metrics"]["accuracy"]
    )


def test_an_empty_window_still_publishes_the_heartbeat(aws: dict[str, Any]) -> None:
    assert main(aws_args(window_end=datetime(2024, 6, 1, tzinfo=UTC))) == 0
    _, report, _ = the_report(aws["s3"])
    assert (report["records"], report["features"], report["drifted"]) == (0, {}, [])
    assert metric_sum(aws["cloudwatch"], "RecordsAnalyzed") == 0
    assert metric_sum(aws["cloudwatch"], "FeatureDriftRatio", {"Name": "Feature", "Value": "sessions"}) is None


def test_an_unlistable_capture_prefix_is_unusable_input(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    args = aws_args()
    args[args.index("--capture") + 1] = "s3://no-such-bucket/capture/"
    assert main(args) == 2
    assert "--capture s3://no-such-bucket/capture/: cannot list it (NoSuchBucket" in capsys.readouterr().err
