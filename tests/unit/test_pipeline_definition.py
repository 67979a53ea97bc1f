"""The training pipeline's definition: structure, parameters, lineage, determinism, offline build."""

from __future__ import annotations

import json
import socket
import tarfile
from io import BytesIO
from typing import Any

import pytest
from pydantic import ValidationError

from pipelines import bundle, factory
from pipelines.factory import SERVED_MEDIA_TYPES
from pipelines.settings import DEFAULT_HYPERPARAMETERS, PipelineSettings
from pipelines.steps import train as train_script

ACCOUNT = "123456789012"
KMS_KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


INFERENCE_IMAGE = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/acme-dev-inference@sha256:{'ab' * 32}"


def make_settings(**overrides: Any) -> PipelineSettings:
    values: dict[str, Any] = {
        "model_name": "customer-churn",
        "pipeline_name": "acme-dev-customer-churn",
        "model_package_group_name": "acme-dev-customer-churn",
        "feature_spec": "customer-churn",
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/acme-dev-pipeline",
        "region": "eu-west-1",
        "default_bucket": "acme-dev-artifacts",
        "code_uri": "s3://acme-dev-artifacts/code/customer-churn/0123abcd",
        "input_data_uri": "s3://acme-dev-curated/customer_activity",
        "data_version": "2024-05-01",
        "code_version": "0123abcd",
        "kms_key_arn": KMS_KEY,
        "inference_image_uri": INFERENCE_IMAGE,
    }
    values.update(overrides)
    return PipelineSettings(**values)


@pytest.fixture(scope="module")
def settings() -> PipelineSettings:
    return make_settings()


@pytest.fixture(scope="module")
def definition(settings: PipelineSettings) -> dict[str, Any]:
    return json.loads(factory.pipeline_definition(settings))


def steps_by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for step in definition["Steps"]:
        found[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for inner in step.get("Arguments", {}).get(branch, []):
                found[inner["Name"]] = inner
    return found


def get(name: str) -> dict[str, str]:
    return {"Get": name}


def join(*values: Any, on: str = "/") -> dict[str, Any]:
    return {"Std:Join": {"On": on, "Values": list(values)}}


def output_uri(step: str, output: str) -> dict[str, str]:
    return get(f"Steps.{step}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri")


def test_steps_run_in_order_with_their_types(definition: dict[str, Any]) -> None:
    top = [(s["Name"], s["Type"]) for s in definition["Steps"]]
    assert top == [("Preprocess", "Processing"), ("Train", "Training"), ("Evaluate", "Processing"),
                   ("CheckMetric", "Condition")]  # fmt: skip
    condition = definition["Steps"][3]["Arguments"]
    assert [(s["Name"], s["Type"]) for s in condition["IfSteps"]] == [("RegisterModel", "RegisterModel")]
    assert [(s["Name"], s["Type"]) for s in condition["ElseSteps"]] == [("MetricBelowThreshold", "Fail")]


def test_steps_consume_their_predecessors_outputs(definition: dict[str, Any]) -> None:
    steps = steps_by_name(definition)
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in
                steps["Train"]["Arguments"]["InputDataConfig"]}  # fmt: skip
    assert channels["train"] == output_uri("Preprocess", "train")
    assert channels["validation"] == output_uri("Preprocess", "validation")
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in steps["Evaluate"]["Arguments"]["ProcessingInputs"]}
    assert inputs["model"] == get("Steps.Train.ModelArtifacts.S3ModelArtifacts")
    assert inputs["test"] == output_uri("Preprocess", "test")


def test_condition_compares_the_evaluation_metric_with_the_threshold_parameter(definition: dict[str, Any]) -> None:
    (condition,) = steps_by_name(definition)["CheckMetric"]["Arguments"]["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"] == {
        "Std:JsonGet": {
            "Path": "binary_classification_metrics.auc.value",
            "PropertyFile": get("Steps.Evaluate.PropertyFiles.EvaluationReport"),
        }
    }
    assert condition["RightValue"] == get("Parameters.MetricThreshold")


def test_evaluation_report_is_a_property_file_of_the_evaluate_step(definition: dict[str, Any]) -> None:
    evaluate = steps_by_name(definition)["Evaluate"]
    assert evaluate["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]
    outputs = [o["OutputName"] for o in evaluate["Arguments"]["ProcessingOutputConfig"]["Outputs"]]
    assert outputs == ["evaluation"]


def test_register_step_targets_the_group_with_the_approval_parameter(
    definition: dict[str, Any], settings: PipelineSettings
) -> None:
    register = steps_by_name(definition)["RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == settings.model_package_group_name
    assert register["ModelApprovalStatus"] == get("Parameters.ModelApprovalStatus")
    (container,) = register["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == get("Steps.Train.ModelArtifacts.S3ModelArtifacts")
    assert "SAGEMAKER_PROGRAM" not in container["Environment"]


def test_register_step_names_the_platform_image_by_digest_and_what_it_serves(
    definition: dict[str, Any], settings: PipelineSettings
) -> None:
    spec = steps_by_name(definition)["RegisterModel"]["Arguments"]["InferenceSpecification"]
    (container,) = spec["Containers"]
    assert container["Image"] == settings.inference_image_uri
    assert "@sha256:" in container["Image"]
    # The server parses JSON and CSV bodies and answers in either (its Accept negotiation).
    assert sorted(spec["SupportedContentTypes"]) == sorted(SERVED_MEDIA_TYPES)
    assert sorted(spec["SupportedResponseMIMETypes"]) == sorted(SERVED_MEDIA_TYPES)


@pytest.mark.parametrize(
    "uri",
    [
        "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",  # a stock image, by tag
        f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/acme-dev-inference:latest",  # a tag moves
        f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/acme-dev-inference@sha256:abc",  # not a digest
    ],
)
def test_the_inference_image_must_be_pinned_by_digest(uri: str) -> None:
    with pytest.raises(ValidationError, match="inference_image_uri"):
        make_settings(inference_image_uri=uri)


def test_register_step_records_the_platform_drift_baseline(definition: dict[str, Any]) -> None:
    """The default engine: the version carries the baseline the platform drift job compares live data with."""
    register = steps_by_name(definition)["RegisterModel"]["Arguments"]
    drift = join(output_uri("Preprocess", "baseline"), factory.DRIFT_BASELINE_FILE)
    assert register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == join(
        output_uri("Evaluate", "evaluation"), "evaluation.json"
    )
    assert register["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"] == drift
    assert register["DriftCheckBaselines"]["ModelDataQuality"] == {
        "Statistics": {"ContentType": "application/json", "S3Uri": drift}
    }


def test_the_baseline_file_is_the_one_the_drift_job_writes_and_reads() -> None:
    from mlops.monitoring.drift.baseline import BASELINE_FILE

    assert factory.DRIFT_BASELINE_FILE == BASELINE_FILE


def test_register_step_records_model_monitor_baselines_for_that_engine() -> None:
    definition = json.loads(factory.pipeline_definition(make_settings(monitoring_engine="model-monitor")))
    register = steps_by_name(definition)["RegisterModel"]["Arguments"]
    statistics = join(output_uri("Preprocess", "baseline"), "statistics.json")
    constraints = join(output_uri("Preprocess", "baseline"), "constraints.json")
    assert register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == join(
        output_uri("Evaluate", "evaluation"), "evaluation.json"
    )
    assert register["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"] == statistics
    baselines = register["DriftCheckBaselines"]["ModelDataQuality"]
    assert baselines["Statistics"]["S3Uri"] == statistics
    assert baselines["Constraints"]["S3Uri"] == constraints


def test_register_step_records_data_and_code_versions(definition: dict[str, Any]) -> None:
    metadata = steps_by_name(definition)["RegisterModel"]["Arguments"]["CustomerMetadataProperties"]
    assert metadata["data_version"] == get("Parameters.DataVersion")
    assert metadata["code_version"] == get("Parameters.CodeVersion")
    assert metadata["input_data_uri"] == get("Parameters.InputDataUri")
    assert metadata["feature_spec"] == "customer-churn"


def test_fail_message_names_metric_and_threshold_with_their_values(definition: dict[str, Any]) -> None:
    message = steps_by_name(definition)["MetricBelowThreshold"]["Arguments"]["ErrorMessage"]["Std:Join"]
    values = message["Values"]
    assert any(isinstance(v, str) and "auc" in v for v in values)
    assert any(isinstance(v, str) and "MetricThreshold" in v for v in values)
    assert {"Std:JsonGet": {"Path": "binary_classification_metrics.auc.value",
                            "PropertyFile": get("Steps.Evaluate.PropertyFiles.EvaluationReport")}} in values  # fmt: skip
    assert get("Parameters.MetricThreshold") in values


def test_parameters_record_data_code_threshold_approval_and_hyperparameters(
    definition: dict[str, Any], settings: PipelineSettings
) -> None:
    parameters = {p["Name"]: p for p in definition["Parameters"]}
    assert parameters["InputDataUri"]["DefaultValue"] == settings.input_data_uri
    assert parameters["DataVersion"]["DefaultValue"] == "2024-05-01"
    assert parameters["CodeVersion"]["DefaultValue"] == "0123abcd"
    assert parameters["MetricThreshold"] == {"Name": "MetricThreshold", "Type": "Float", "DefaultValue": 0.75}
    assert parameters["ModelApprovalStatus"]["DefaultValue"] == "PendingManualApproval"
    assert parameters["ModelApprovalStatus"]["EnumValues"] == ["PendingManualApproval", "Approved"]
    assert parameters["MaxIter"]["Type"] == "Integer"
    assert parameters["LearningRate"]["Type"] == "Float"
    for key, value in DEFAULT_HYPERPARAMETERS.items():
        assert parameters[factory.hyperparameter_parameter_name(key)]["DefaultValue"] == value


def test_training_job_receives_hyperparameters_and_versions_as_parameters(definition: dict[str, Any]) -> None:
    hyperparameters = steps_by_name(definition)["Train"]["Arguments"]["HyperParameters"]
    for key in DEFAULT_HYPERPARAMETERS:
        # Numeric parameters arrive converted to text (see the next test), still overridable per execution.
        assert hyperparameters[key] == join(get(f"Parameters.{factory.hyperparameter_parameter_name(key)}"), on="")
    assert hyperparameters["data_version"] == get("Parameters.DataVersion")
    assert hyperparameters["code_version"] == get("Parameters.CodeVersion")
    assert hyperparameters["feature_spec"] == "customer-churn"


def is_string_expression(value: Any, parameter_types: dict[str, str]) -> bool:
    """A literal string, a string-producing function, or a reference to a String parameter."""
    if isinstance(value, str):
        return True
    if isinstance(value, dict) and set(value) == {"Std:Join"}:
        return True
    if isinstance(value, dict) and set(value) == {"Get"} and value["Get"].startswith("Parameters."):
        return parameter_types[value["Get"].removeprefix("Parameters.")] == "String"
    return False


def test_every_training_hyperparameter_is_a_string(definition: dict[str, Any]) -> None:
    # CreateTrainingJob's HyperParameters is a string-to-string map; CreatePipeline refuses a raw reference to
    # an Integer or Float parameter there ("Cannot assign property reference ... to argument of type [String]").
    parameter_types = {p["Name"]: p["Type"] for p in definition["Parameters"]}
    hyperparameters = steps_by_name(definition)["Train"]["Arguments"]["HyperParameters"]
    assert {k: v for k, v in hyperparameters.items() if not is_string_expression(v, parameter_types)} == {}
    # Not vacuous: the hyperparameters' own parameters stay typed, so executions can override them.
    numeric = {factory.hyperparameter_parameter_name(k) for k in DEFAULT_HYPERPARAMETERS}
    assert {parameter_types[name] for name in numeric} == {"Integer", "Float"}


def test_train_script_reads_numeric_hyperparameters_given_as_strings(tmp_path: Any) -> None:
    # What the joined parameters become in hyperparameters.json (and in the toolkit's --name value arguments).
    config = tmp_path / "hyperparameters.json"
    config.write_text(json.dumps({"max_iter": "100", "learning_rate": "0.05", "l2_regularization": "1.0"}))
    values = train_script.read_hyperparameters(config, ["--min_samples_leaf", "20", "--max_leaf_nodes", "15"])
    parameters = train_script.estimator_parameters(values)
    assert parameters == {**train_script.DEFAULTS, "max_iter": 100, "learning_rate": 0.05, "l2_regularization": 1.0,
                          "min_samples_leaf": 20, "max_leaf_nodes": 15}  # fmt: skip
    assert [type(parameters[k]) for k in ("max_iter", "learning_rate", "min_samples_leaf")] == [int, float, int]


def test_preprocess_reads_the_input_data_parameter_and_the_feature_code(
    definition: dict[str, Any], settings: PipelineSettings
) -> None:
    inputs = {i["InputName"]: i["S3Input"] for i in steps_by_name(definition)["Preprocess"]["Arguments"][
        "ProcessingInputs"]}  # fmt: skip
    assert inputs["raw"]["S3Uri"] == get("Parameters.InputDataUri")
    assert inputs["code-lib"]["S3Uri"] == f"{settings.code_uri}/mlops/"
    assert inputs["code-lib"]["LocalPath"] == "/opt/ml/processing/input/code_lib/mlops"
    assert inputs["code"]["S3Uri"] == f"{settings.code_uri}/preprocess.py"


def test_every_job_is_bounded_encrypted_and_runs_as_the_role(
    definition: dict[str, Any], settings: PipelineSettings
) -> None:
    steps = steps_by_name(definition)
    for name in ("Preprocess", "Evaluate"):
        arguments = steps[name]["Arguments"]
        assert arguments["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
        assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KMS_KEY
        assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == KMS_KEY
        assert arguments["RoleArn"] == settings.role_arn
        assert arguments["NetworkConfig"]["EnableNetworkIsolation"] is True
    train = steps["Train"]["Arguments"]
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert train["ResourceConfig"]["VolumeKmsKeyId"] == KMS_KEY
    assert train["OutputDataConfig"]["KmsKeyId"] == KMS_KEY
    assert train["RoleArn"] == settings.role_arn
    assert train["EnableNetworkIsolation"] is True


def test_vpc_settings_reach_every_job() -> None:
    settings = make_settings(subnets=("subnet-0123456789abcdef0",), security_group_ids=("sg-0123456789abcdef0",))
    steps = steps_by_name(json.loads(factory.pipeline_definition(settings)))
    vpc = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0"]}
    assert steps["Preprocess"]["Arguments"]["NetworkConfig"]["VpcConfig"] == vpc
    assert steps["Evaluate"]["Arguments"]["NetworkConfig"]["VpcConfig"] == vpc
    assert steps["Train"]["Arguments"]["VpcConfig"] == vpc


def test_two_builds_give_identical_bytes(settings: PipelineSettings, definition: dict[str, Any]) -> None:
    first = factory.pipeline_definition(settings)
    second = factory.pipeline_definition(settings)
    assert first == second
    assert json.loads(first) == definition


def test_building_makes_no_network_call(settings: PipelineSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError(f"network access attempted: {args[1:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    pipeline = factory.build_pipeline(settings)
    text = pipeline.definition()
    assert json.loads(text)["Steps"]
    assert attempts == []


def test_unknown_feature_spec_is_refused_before_building() -> None:
    from mlops.features import FeatureSpecError

    with pytest.raises(FeatureSpecError, match="unknown feature spec 'no-such-model'"):
        factory.build_pipeline(make_settings(feature_spec="no-such-model"))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"role_arn": "acme-dev-pipeline"}, "role_arn"),
        ({"approval_status": "Rejected"}, "approval_status"),
        ({"metric_threshold": 1.5}, "metric_threshold"),
        ({"code_uri": "/local/code"}, "code_uri"),
        ({"pipeline_name": "x" * 64}, "pipeline_name"),
        ({"max_runtime_seconds": 10}, "max_runtime_seconds"),
        ({"hyperparameters": {"Max-Iter": 3}}, "hyperparameters"),
    ],
)
def test_invalid_settings_are_refused_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        make_settings(**overrides)


def test_subnets_without_security_groups_are_refused() -> None:
    with pytest.raises(ValidationError, match="subnets and security_group_ids must be set together"):
        make_settings(subnets=("subnet-0123456789abcdef0",))


def test_train_script_defaults_match_the_pipeline_defaults() -> None:
    assert {k: train_script.DEFAULTS[k] for k in DEFAULT_HYPERPARAMETERS} == DEFAULT_HYPERPARAMETERS
    assert set(train_script.HYPERPARAMETERS) == set(DEFAULT_HYPERPARAMETERS)


def test_code_bundle_is_deterministic_and_self_contained() -> None:
    first, second = bundle.code_bundle(), bundle.code_bundle()
    assert first == second
    assert {"preprocess.py", "train.py", "evaluate.py", "mlops/__init__.py", "mlops/features/spec.py",
            "mlops/features/customer_churn.py", "sourcedir.tar.gz"} <= set(first)  # fmt: skip
    with tarfile.open(fileobj=BytesIO(first["sourcedir.tar.gz"]), mode="r:gz") as tar:
        names = tar.getnames()
        assert all(member.mtime == 0 for member in tar.getmembers())
    assert "train.py" in names
    assert "mlops/features/customer_churn.py" in names
