"""tools/check_rollout.py against moto's SageMaker: a silent rollback (the endpoint still on its previous
configuration while the stack recorded the new one) fails the deploy job with a message naming both."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tests.support.functional_moto import empty_backends
from tests.support.types import ENDPOINT as ENDPOINT_TYPE
from tools import check_rollout
from verify.mock_engine import OfflinePlan

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/acme-dev-serving"
ENDPOINT = "acme-dev-customer-churn"
OLD_CONFIG = "acme-dev-customer-churn-1a2b3c4d5e"
NEW_CONFIG = "acme-dev-customer-churn-6f7a8b9c0d"


@pytest.fixture(scope="module")
def moto_sagemaker() -> Iterator[Any]:
    """One moto mock and one SageMaker client for the module (tests/support/functional_moto.py: entering the
    mock and a new client cost ~20 ms a test); :func:`sagemaker` empties the backends before each test."""
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


@pytest.fixture
def sagemaker(moto_sagemaker: Any) -> Any:
    empty_backends()  # nothing the test before created survives
    client = moto_sagemaker
    client.create_model(
        ModelName="acme-dev-customer-churn-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "image"}
    )
    for config in (OLD_CONFIG, NEW_CONFIG):
        client.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[
                {
                    "VariantName": "primary",
                    "ModelName": "acme-dev-customer-churn-model",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
    return client


def outputs(config: str = NEW_CONFIG, endpoint: str = ENDPOINT) -> dict[str, Any]:
    """The stack outputs the program exports (`pulumi stack output --json`), trimmed to what the check reads."""
    return {
        "endpoints": {"customer-churn": endpoint},
        "endpointConfigs": {"customer-churn": config},
        "kmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/abc",
    }


def run(sagemaker: Any, document: Any, *argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    stdin = io.StringIO(document if isinstance(document, str) else json.dumps(document))
    status = check_rollout.main(list(argv), sagemaker=sagemaker, stdin=stdin, stdout=stdout, stderr=stderr)
    return status, stdout.getvalue(), stderr.getvalue()


def test_the_program_exports_what_the_check_reads(stack_plans: dict[str, OfflinePlan]) -> None:
    """Every stack's outputs name each endpoint and the configuration its Endpoint resource is given."""
    checked = 0
    for stack, plan in stack_plans.items():
        recorded = {e.endpoint: e.endpoint_config for e in check_rollout.expected_endpoints(plan.outputs)}
        planned = {r.inputs["name"]: r.inputs["endpointConfigName"] for r in plan.of_type(ENDPOINT_TYPE)}
        assert recorded == planned, stack
        checked += len(recorded)
    assert checked, "no stack has an endpoint"


def test_endpoint_on_the_recorded_configuration_passes(sagemaker: Any) -> None:
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=NEW_CONFIG)
    status, out, err = run(sagemaker, outputs())
    assert (status, err) == (0, "")
    assert out == f"ok: endpoint {ENDPOINT} (model customer-churn) runs {NEW_CONFIG}\n"


def test_endpoint_still_on_its_previous_configuration_fails_naming_both(sagemaker: Any) -> None:
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=OLD_CONFIG)  # rolled back: InService
    status, _, err = run(sagemaker, outputs())
    assert status == 1
    assert (
        f"error: endpoint {ENDPOINT} (model customer-churn) runs endpoint configuration {OLD_CONFIG}, "
        f"expected {NEW_CONFIG}: SageMaker rolled the update back or it never applied (status InService)."
    ) in err
    assert err.endswith("rollout check failed: 1 of 1 endpoint(s)\n")


def test_previous_configuration_deleted_after_the_reported_success_is_named(sagemaker: Any) -> None:
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=OLD_CONFIG)
    sagemaker.delete_endpoint_config(EndpointConfigName=OLD_CONFIG)  # what Pulumi does after the replacement
    status, _, err = run(sagemaker, outputs())
    assert status == 1
    assert f"configuration {OLD_CONFIG} no longer exists" in err


def test_missing_endpoint_fails(sagemaker: Any) -> None:
    status, _, err = run(sagemaker, outputs())
    assert status == 1
    assert err.startswith(
        f"error: endpoint {ENDPOINT} (model customer-churn) does not exist; "
        f"the stack expects it to run endpoint configuration {NEW_CONFIG}\n"
    )


def test_endpoint_not_in_service_fails_with_its_failure_reason() -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    stubber = Stubber(client)  # moto cannot put an endpoint in UpdateRollbackFailed
    stubber.add_response(
        "describe_endpoint",
        {
            "EndpointName": ENDPOINT,
            "EndpointArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{ENDPOINT}",
            "EndpointConfigName": NEW_CONFIG,
            "EndpointStatus": "UpdateRollbackFailed",
            "FailureReason": "rollback could not restore capacity",
            "CreationTime": "2024-05-01T12:00:00Z",
            "LastModifiedTime": "2024-05-01T13:00:00Z",
        },
    )
    with stubber:
        status, _, err = run(client, outputs())
    assert status == 1
    assert (
        f"error: endpoint {ENDPOINT} (model customer-churn) runs endpoint configuration {NEW_CONFIG} but is "
        "UpdateRollbackFailed (FailureReason: rollback could not restore capacity)\n"
    ) in err


def test_stack_without_endpoints_passes(sagemaker: Any) -> None:
    status, out, _ = run(sagemaker, {"endpoints": {}, "endpointConfigs": {}})
    assert (status, out) == (0, "rollout check: the stack has no endpoint\n")


def test_outputs_without_endpoint_configs_cannot_be_checked(sagemaker: Any) -> None:
    status, _, err = run(sagemaker, {"endpoints": {"customer-churn": ENDPOINT}})
    assert status == 2
    assert "endpointConfigs['customer-churn'] is missing or empty" in err


def test_outputs_that_are_not_json_cannot_be_checked(sagemaker: Any) -> None:
    status, _, err = run(sagemaker, "error: no stack named 'prod' found")
    assert status == 2
    assert err.startswith("rollout check could not run: the stack outputs are not JSON")


def test_other_sagemaker_errors_stop_the_check_with_their_code() -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error("describe_endpoint", service_error_code="AccessDeniedException", http_status_code=400)
    with stubber:
        status, _, err = run(client, outputs())
    assert status == 2
    assert err == f"rollout check could not run: DescribeEndpoint of {ENDPOINT} failed: AccessDeniedException\n"


def test_outputs_are_read_from_a_file(sagemaker: Any, tmp_path: Path) -> None:
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=NEW_CONFIG)
    path = tmp_path / "stack-outputs.json"
    path.write_text(json.dumps(outputs()))
    status, _, _ = run(sagemaker, "not read", str(path))
    assert status == 0


# --- pruning what the program retained ------------------------------------------------------------------

OLD_MODEL = "acme-dev-customer-churn-0a1b2c3d4e"
NEW_MODEL = "acme-dev-customer-churn-5f6a7b8c9d"
OTHER_MODEL_CONFIG = "acme-dev-customer-churn-v2-1a2b3c4d5e"  # another model's endpoint config: never ours


@pytest.fixture
def retained(sagemaker: Any) -> Any:
    """After a rollout: the endpoint on NEW_CONFIG (NEW_MODEL); the retained OLD_CONFIG and OLD_MODEL remain."""
    for model in (OLD_MODEL, NEW_MODEL):
        sagemaker.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "image"})
    sagemaker.delete_endpoint_config(EndpointConfigName=NEW_CONFIG)
    for config, model in ((NEW_CONFIG, NEW_MODEL), (OTHER_MODEL_CONFIG, "acme-dev-customer-churn-model")):
        sagemaker.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[
                {"VariantName": "primary", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
            ],
        )
    return sagemaker


def config_names(sagemaker: Any) -> set[str]:
    return {c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]}


def model_names(sagemaker: Any) -> set[str]:
    return {m["ModelName"] for m in sagemaker.list_models()["Models"]}


def test_a_verified_rollout_prunes_only_this_endpoints_superseded_configs_and_models(retained: Any) -> None:
    retained.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=NEW_CONFIG)
    status, out, err = run(retained, outputs(), "--prune")
    assert (status, err) == (0, "")
    assert f"pruned: endpoint config {OLD_CONFIG}" in out and f"pruned: model {OLD_MODEL}" in out
    # Kept: the live config and its model, another model's config, and names the program did not derive.
    assert config_names(retained) == {NEW_CONFIG, OTHER_MODEL_CONFIG}
    assert model_names(retained) == {NEW_MODEL, "acme-dev-customer-churn-model"}


def test_a_rolled_back_endpoint_prunes_nothing(retained: Any) -> None:
    retained.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=OLD_CONFIG)  # SageMaker rolled it back
    configs, models = config_names(retained), model_names(retained)
    status, _, err = run(retained, outputs(), "--prune")
    assert status == 1 and OLD_CONFIG in err
    assert (config_names(retained), model_names(retained)) == (configs, models)


def test_without_prune_nothing_is_deleted(retained: Any) -> None:
    retained.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=NEW_CONFIG)
    configs, models = config_names(retained), model_names(retained)
    assert run(retained, outputs())[0] == 0
    assert (config_names(retained), model_names(retained)) == (configs, models)
