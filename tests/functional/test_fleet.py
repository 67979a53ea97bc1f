"""What an endpoint runs now, read at `pulumi up` so a rollout keeps an autoscaled fleet's size (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.serving.fleet import LiveEndpoint, NoFleet, SageMakerFleet, rollout_instance_count
from infra.serving.settings import AutoscalingSettings

REGION = "eu-west-1"
SCALING = AutoscalingSettings(min_capacity=2, max_capacity=8)


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        client.create_model(
            ModelName="m",
            ExecutionRoleArn="arn:aws:iam::246813579135:role/serving",
            PrimaryContainer={"Image": "246813579135.dkr.ecr.eu-west-1.amazonaws.com/inference:1"},
        )
        client.create_endpoint_config(
            EndpointConfigName="churn-abc",
            ProductionVariants=[
                {"VariantName": "champion", "ModelName": "m", "InitialInstanceCount": 2, "InstanceType": "ml.m5.large"}
            ],
        )
        client.create_endpoint(EndpointName="churn", EndpointConfigName="churn-abc")
        yield client


def test_the_live_config_and_counts_are_read(sagemaker: Any) -> None:
    fleet = SageMakerFleet(lambda: sagemaker)
    assert fleet.live("churn") == LiveEndpoint(config_name="churn-abc", desired_counts={"champion": 2})
    assert fleet.config_counts("churn-abc") == {"champion": 2}


def test_a_missing_endpoint_or_config_reads_as_none(sagemaker: Any) -> None:
    fleet = SageMakerFleet(lambda: sagemaker)
    assert fleet.live("not-there") is None
    assert fleet.config_counts("not-there") is None


def test_the_endpoint_is_read_once_per_run(sagemaker: Any) -> None:
    calls: list[int] = []

    def factory() -> Any:
        calls.append(1)
        return sagemaker

    fleet = SageMakerFleet(factory)
    assert fleet.live("churn") == fleet.live("churn")
    assert fleet.config_counts("churn-abc") == fleet.config_counts("churn-abc")
    assert len(calls) == 2  # one DescribeEndpoint, one DescribeEndpointConfig


LIVE = LiveEndpoint(config_name="churn-abc", desired_counts={"champion": 6})


def test_without_an_endpoint_the_configured_count_is_used() -> None:
    assert rollout_instance_count("champion", 2, SCALING, NoFleet().live("churn"), None) == 2


def test_an_existing_config_keeps_its_own_count_so_the_preview_shows_no_change() -> None:
    """The live config unchanged, or one Pulumi recorded but SageMaker rolled back: same name, same counts."""
    assert rollout_instance_count("champion", 2, SCALING, LIVE, {"champion": 2}) == 2


def test_a_rollout_starts_the_new_fleet_at_the_current_desired_count() -> None:
    assert rollout_instance_count("champion", 2, SCALING, LIVE, None) == 6


def test_the_current_count_is_kept_within_the_autoscaling_bounds() -> None:
    grown = LiveEndpoint(config_name="churn-abc", desired_counts={"champion": 20})
    shrunk = LiveEndpoint(config_name="churn-abc", desired_counts={"champion": 1})
    assert rollout_instance_count("champion", 2, SCALING, grown, None) == 8
    assert rollout_instance_count("champion", 2, SCALING, shrunk, None) == 2


def test_a_new_variant_starts_at_its_configured_count() -> None:
    assert rollout_instance_count("challenger", 3, SCALING, LIVE, None) == 3


def test_another_refusal_is_an_error_not_a_missing_endpoint() -> None:
    """Only SageMaker's "Could not find" means absent; a malformed name or a denied call must stop `pulumi up`."""
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("describe_endpoint", "ValidationException", "1 validation error detected")
        with pytest.raises(ClientError):
            SageMakerFleet(lambda: client).live("churn")
