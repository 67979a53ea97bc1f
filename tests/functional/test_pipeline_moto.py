"""The pipeline definition and the registry helpers against moto's SageMaker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.aws_session import AwsClients, provider_settings
from infra.model_versions import RegistryVersions
from pipelines import registry
from pipelines.factory import pipeline_definition
from pipelines.settings import PipelineSettings

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/acme-dev-pipeline"
GROUP = "acme-dev-customer-churn"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/acme-dev-inference@sha256:{'cd' * 32}"


@pytest.fixture(scope="module")
def definition() -> str:
    settings = PipelineSettings(
        model_name="customer-churn",
        pipeline_name="acme-dev-customer-churn",
        model_package_group_name=GROUP,
        feature_spec="customer-churn",
        role_arn=ROLE_ARN,
        region=REGION,
        default_bucket="acme-dev-artifacts",
        code_uri="s3://acme-dev-artifacts/code/customer-churn/0123abcd",
        input_data_uri="s3://acme-dev-curated/customer_activity",
        inference_image_uri=IMAGE,
    )
    return pipeline_definition(settings)


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


@pytest.fixture
def group(sagemaker: Any) -> str:
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP, ModelPackageGroupDescription="churn")
    return GROUP


def register_version(client: Any, group: str, model_data: str) -> str:
    response = client.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": model_data}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={"data_version": "2024-05-01", "code_version": "0123abcd"},
    )
    return response["ModelPackageArn"]


def test_create_pipeline_accepts_the_definition(sagemaker: Any, definition: str) -> None:
    arn = sagemaker.create_pipeline(
        PipelineName="acme-dev-customer-churn", PipelineDefinition=definition, RoleArn=ROLE_ARN
    )["PipelineArn"]
    described = sagemaker.describe_pipeline(PipelineName="acme-dev-customer-churn")
    assert described["PipelineArn"] == arn
    assert json.loads(described["PipelineDefinition"]) == json.loads(definition)


def test_execution_starts_with_parameter_overrides(sagemaker: Any, definition: str) -> None:
    sagemaker.create_pipeline(PipelineName="acme-dev-customer-churn", PipelineDefinition=definition, RoleArn=ROLE_ARN)
    overrides = [
        {"Name": "DataVersion", "Value": "2024-06-01"},
        {"Name": "CodeVersion", "Value": "89abcdef"},
        {"Name": "MetricThreshold", "Value": "0.8"},
        {"Name": "MaxIter", "Value": "50"},
        {"Name": "ModelApprovalStatus", "Value": "Approved"},
    ]
    execution = sagemaker.start_pipeline_execution(
        PipelineName="acme-dev-customer-churn",
        PipelineParameters=overrides,
        ClientRequestToken="retrain-customer-churn-2024-06-01-0001",
    )["PipelineExecutionArn"]
    described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution)
    assert described["PipelineExecutionStatus"] in ("Executing", "Succeeded")
    recorded = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in recorded} == {o["Name"]: o["Value"] for o in overrides}


def test_latest_approved_is_the_approved_version(sagemaker: Any, group: str) -> None:
    first = register_version(sagemaker, group, "s3://acme-dev-artifacts/models/1/model.tar.gz")
    register_version(sagemaker, group, "s3://acme-dev-artifacts/models/2/model.tar.gz")
    registry.approve(sagemaker, first, "auc 0.86 on 2024-05-01; approved by on-call")
    latest = registry.latest_approved(sagemaker, group)
    assert (latest.arn, latest.version, latest.approval_status) == (first, 1, "Approved")


def test_latest_approved_prefers_the_newest_approved_version(sagemaker: Any, group: str) -> None:
    first = register_version(sagemaker, group, "s3://acme-dev-artifacts/models/1/model.tar.gz")
    second = register_version(sagemaker, group, "s3://acme-dev-artifacts/models/2/model.tar.gz")
    registry.approve(sagemaker, first, "first")
    registry.approve(sagemaker, second, "second")
    assert registry.latest_approved(sagemaker, group).arn == second


def test_rejecting_the_latest_falls_back_to_the_previous_approved(sagemaker: Any, group: str) -> None:
    first = register_version(sagemaker, group, "s3://acme-dev-artifacts/models/1/model.tar.gz")
    second = register_version(sagemaker, group, "s3://acme-dev-artifacts/models/2/model.tar.gz")
    registry.approve(sagemaker, first, "first")
    registry.approve(sagemaker, second, "second")
    registry.reject(sagemaker, second, "canary rolled back: p99 latency alarm")
    assert registry.latest_approved(sagemaker, group).arn == first
    described = sagemaker.describe_model_package(ModelPackageName=second)
    assert described["ModelApprovalStatus"] == "Rejected"
    assert described["ApprovalDescription"] == "canary rolled back: p99 latency alarm"


def test_no_approved_version_is_an_error_naming_the_group(sagemaker: Any, group: str) -> None:
    register_version(sagemaker, group, "s3://acme-dev-artifacts/models/1/model.tar.gz")
    with pytest.raises(registry.NoApprovedModelVersionError, match=f"'{GROUP}' has no approved version"):
        registry.latest_approved(sagemaker, group)


def test_unknown_group_is_an_error_naming_it(sagemaker: Any) -> None:
    with pytest.raises(registry.ModelPackageGroupNotFoundError, match="'no-such-group' does not exist"):
        registry.latest_approved(sagemaker, "no-such-group")


def test_list_versions_newest_first_and_by_status(sagemaker: Any, group: str) -> None:
    first = register_version(sagemaker, group, "s3://acme-dev-artifacts/models/1/model.tar.gz")
    second = register_version(sagemaker, group, "s3://acme-dev-artifacts/models/2/model.tar.gz")
    registry.reject(sagemaker, first, "below business KPI")
    assert [v.arn for v in registry.list_versions(sagemaker, group)] == [second, first]
    assert [v.arn for v in registry.list_versions(sagemaker, group, status="Rejected")] == [first]
    assert [v.arn for v in registry.list_versions(sagemaker, group, status="PendingManualApproval")] == [second]


def test_describe_version_returns_what_a_deployment_needs(sagemaker: Any, group: str) -> None:
    arn = register_version(sagemaker, group, "s3://acme-dev-artifacts/models/1/model.tar.gz")
    details = registry.describe_version(sagemaker, arn)
    assert details.image_uri == IMAGE
    assert details.model_data_url == "s3://acme-dev-artifacts/models/1/model.tar.gz"
    assert details.customer_metadata["code_version"] == "0123abcd"
    assert (details.version.group, details.version.version) == (GROUP, 1)


def test_describe_version_of_an_unknown_arn_is_an_error(sagemaker: Any, group: str) -> None:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/9"
    with pytest.raises(registry.ModelVersionNotFoundError, match="does not exist"):
        registry.describe_version(sagemaker, arn)


def test_a_decision_without_description_is_refused(sagemaker: Any, group: str) -> None:
    arn = register_version(sagemaker, group, "s3://acme-dev-artifacts/models/1/model.tar.gz")
    with pytest.raises(ValueError, match="needs a description"):
        registry.approve(sagemaker, arn, "  ")
    assert sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "PendingManualApproval"


# --- what an endpoint serves, resolved at `pulumi up` (infra.model_versions.RegistryVersions) -------------

BASELINE = "s3://acme-dev-artifacts/pipelines/acme-dev-customer-churn/run-1/baseline"


def register_with_baselines(client: Any, group: str) -> str:
    response = client.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://acme-dev-artifacts/models/1/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        DriftCheckBaselines={
            "ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"{BASELINE}/statistics.json"},
                "Constraints": {"ContentType": "application/json", "S3Uri": f"{BASELINE}/constraints.json"},
            }
        },
    )
    return response["ModelPackageArn"]


def test_registry_versions_serve_the_latest_approved_with_its_baselines(sagemaker: Any, group: str) -> None:
    arn = register_with_baselines(sagemaker, group)
    registry.approve(sagemaker, arn, "first")
    served = RegistryVersions(region=REGION, client=sagemaker).resolve(group, None)
    assert served is not None
    assert (served.arn, served.group, served.version) == (arn, GROUP, 1)
    assert served.data_statistics_uri == f"{BASELINE}/statistics.json"
    assert served.data_constraints_uri == f"{BASELINE}/constraints.json"


def test_registry_versions_without_an_approved_version_serve_nothing(sagemaker: Any, group: str) -> None:
    register_with_baselines(sagemaker, group)  # pending: not servable
    versions = RegistryVersions(region=REGION, client=sagemaker)
    assert versions.resolve(group, None) is None
    assert versions.resolve("no-such-group", None) is None


def test_registry_versions_refuse_a_pinned_version_that_does_not_exist(sagemaker: Any, group: str) -> None:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/9"
    with pytest.raises(registry.ModelVersionNotFoundError, match="does not exist"):
        RegistryVersions(region=REGION, client=sagemaker).resolve(group, arn)


def test_registry_versions_read_the_account_of_the_stacks_assumed_role(sagemaker: Any) -> None:
    # A stack deploying through aws:assumeRoles must read that account's registry, not the caller's.
    stack = {
        "aws:region": REGION,
        "aws:assumeRoles": json.dumps([{"roleArn": "arn:aws:iam::222222222222:role/deploy"}]),
    }
    clients = AwsClients(provider_settings(stack), region=REGION)
    workload = clients.client("sagemaker")
    workload.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = register_with_baselines(workload, GROUP)
    registry.approve(workload, arn, "approved in the workload account")
    served = RegistryVersions(region=REGION, clients=clients).resolve(GROUP, None)
    assert served is not None
    assert served.arn == arn
    assert arn.startswith(f"arn:aws:sagemaker:{REGION}:222222222222:")
    assert RegistryVersions(region=REGION, client=sagemaker).resolve(GROUP, None) is None  # the caller's account
