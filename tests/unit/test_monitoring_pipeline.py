"""The monitoring pipeline's definition (``pipelines/monitoring.py``): deterministic, a valid CreateProcessingJob
request, laid out like the SDK's processing steps, and the drift job's command line as its contract says."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator
from pydantic import ValidationError

from pipelines.monitoring import (
    MONITOR_STEP,
    WINDOW_END,
    MonitoringPipelineSettings,
    build_definition,
    container_arguments,
    monitoring_pipeline_definition,
    processing_arguments,
)
from tests.support.types import PIPELINE, TRAINING
from verify.mock_engine import OfflinePlan

KEY = "arn:aws:kms:eu-west-1:123456789012:key/k"


def settings(**overrides: Any) -> MonitoringPipelineSettings:
    values: dict[str, Any] = {
        "model_name": "churn",
        "pipeline_name": "acme-dev-churn-monitoring",
        "feature_spec": "customer-churn",
        "endpoint_name": "acme-dev-churn",
        "region": "eu-west-1",
        "role_arn": "arn:aws:iam::123456789012:role/acme-dev-churn-monitoring-job",
        "kms_key_arn": KEY,
        "code_uri": "s3://acme-dev-artifacts/code/churn/0123456789abcdef",
        "baseline_uri": "s3://acme-dev-artifacts/pipelines/p/e/preprocess/baseline/drift-baseline.json",
        "capture_uri": "s3://acme-dev-monitoring/churn/data-capture",
        "reports_uri": "s3://acme-dev-monitoring/drift-reports",
        "ground_truth_uri": "s3://acme-dev-monitoring/churn/ground-truth",
        "window_hours": 2,
        "drift_thresholds": {"sessions": 0.3, "monthly_spend": 0.2},
        "segments": ("plan",),
        "probability_threshold": 0.4,
        "metrics_namespace": "MLOps/ModelMonitoring",
    }
    return MonitoringPipelineSettings(**{**values, **overrides})


def flags(arguments: list[Any]) -> list[tuple[str, Any]]:
    return list(zip(arguments[::2], arguments[1::2], strict=True))


def test_the_same_settings_give_the_same_bytes() -> None:
    first = monitoring_pipeline_definition(settings())
    assert first == monitoring_pipeline_definition(settings())
    assert first == json.dumps(json.loads(first), sort_keys=True, separators=(",", ":"))


def test_a_changed_setting_changes_the_definition() -> None:
    assert monitoring_pipeline_definition(settings()) != monitoring_pipeline_definition(settings(window_hours=3))


def test_the_step_is_a_valid_create_processing_job_request() -> None:
    """botocore's model of CreateProcessingJob (what SageMaker Pipelines sends for the step): member names,
    types, required members, lengths and ranges. The pipeline names the job; the window end is resolved at run
    time."""
    request = json.loads(json.dumps(processing_arguments(settings())).replace(json.dumps(WINDOW_END), '"2024"'))
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateProcessingJob").input_shape
    errors = ParamValidator().validate({**request, "ProcessingJobName": "pipelines-abc-MonitorDrift"}, shape)
    assert not errors.has_errors(), errors.generate_report()


def test_the_window_ends_when_the_execution_starts() -> None:
    assert ("--window-end", {"Get": "Execution.StartDateTime"}) in flags(container_arguments(settings()))


def test_the_command_line_follows_the_drift_jobs_contract() -> None:
    assert flags(container_arguments(settings())) == [
        ("--model", "customer-churn"),
        ("--reference", "s3://acme-dev-artifacts/pipelines/p/e/preprocess/baseline/drift-baseline.json"),
        ("--capture", "s3://acme-dev-monitoring/churn/data-capture/"),
        ("--window-end", WINDOW_END),
        ("--window-hours", "2"),
        ("--ground-truth", "s3://acme-dev-monitoring/churn/ground-truth/"),
        ("--out", "s3://acme-dev-monitoring/drift-reports/"),
        ("--thresholds", '{"monthly_spend":0.2,"sessions":0.3}'),
        ("--segments", "plan"),
        ("--probability-threshold", "0.4"),
        ("--metrics-namespace", "MLOps/ModelMonitoring"),
        ("--dimension", "Model=churn"),
        ("--dimension", "Endpoint=acme-dev-churn"),
    ]


def test_optional_arguments_are_left_out_when_unset() -> None:
    arguments = dict(flags(container_arguments(settings(ground_truth_uri=None, segments=(), drift_thresholds={}))))
    assert "--ground-truth" not in arguments and "--segments" not in arguments
    assert arguments["--thresholds"] == "{}"


def test_the_job_runs_monitor_py_with_the_bundles_mlops_package() -> None:
    arguments = processing_arguments(settings())
    assert arguments["AppSpecification"]["ContainerEntrypoint"] == [
        "python3",
        "/opt/ml/processing/input/code/monitor.py",
    ]
    inputs = {i["InputName"]: (i["S3Input"]["S3Uri"], i["S3Input"]["LocalPath"]) for i in arguments["ProcessingInputs"]}
    assert inputs == {
        "code": ("s3://acme-dev-artifacts/code/churn/0123456789abcdef/monitor.py", "/opt/ml/processing/input/code"),
        "code-lib": (
            "s3://acme-dev-artifacts/code/churn/0123456789abcdef/mlops/",
            "/opt/ml/processing/input/code_lib/mlops",
        ),
    }
    assert arguments["Environment"]["MLOPS_CODE_DIR"] == "/opt/ml/processing/input/code_lib"


def test_the_job_reaches_s3_and_cloudwatch_but_encrypts_its_volume() -> None:
    arguments = processing_arguments(settings())
    assert arguments["NetworkConfig"] == {
        "EnableInterContainerTrafficEncryption": True,
        "EnableNetworkIsolation": False,
    }
    assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KEY


def test_the_pipeline_creates_no_experiment_per_run() -> None:
    definition = build_definition(settings())
    assert definition["PipelineExperimentConfig"] is None
    assert [step["Name"] for step in definition["Steps"]] == [MONITOR_STEP]


def test_a_bad_setting_is_refused_before_building() -> None:
    with pytest.raises(ValidationError) as error:
        settings(window_hours=0)
    assert error.value.errors()[0]["loc"] == ("window_hours",)


def test_the_step_is_laid_out_like_the_sdks_processing_steps(stack_plans: dict[str, OfflinePlan]) -> None:
    """Same argument keys, input and cluster layout as the training pipeline's Preprocess step, which the
    SageMaker SDK serialised (the monitoring step has no ProcessingOutputConfig: the job writes its reports)."""
    plan = stack_plans["staging"]
    (training,) = [p for p in plan.of_type(PIPELINE) if p.component == TRAINING]
    sdk_step = json.loads(training.inputs["pipelineDefinition"])["Steps"][0]["Arguments"]
    ours = processing_arguments(settings())
    assert set(ours) == set(sdk_step) - {"ProcessingOutputConfig"}
    assert set(ours["AppSpecification"]) == set(sdk_step["AppSpecification"])
    assert set(ours["ProcessingResources"]["ClusterConfig"]) == set(sdk_step["ProcessingResources"]["ClusterConfig"])
    sdk_input = sdk_step["ProcessingInputs"][0]["S3Input"]
    assert all(set(i["S3Input"]) == set(sdk_input) for i in ours["ProcessingInputs"])
    assert ours["AppSpecification"]["ImageUri"] == sdk_step["AppSpecification"]["ImageUri"]
