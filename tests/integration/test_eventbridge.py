"""EventBridge on LocalStack routes SageMaker's model-approval events (and only those) to their target."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tools.loop_harness import model_package_event_pattern, receive_matching, route_rule_to_queue

pytestmark = pytest.mark.integration

PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/acme-it-customer-churn/{version}"


def model_package_entry(version: int, status: str) -> dict[str, Any]:
    """A put_events entry shaped like SageMaker's "SageMaker Model Package State Change" event."""
    arn = PACKAGE.format(version=version)
    detail = {
        "ModelPackageGroupName": "acme-it-customer-churn",
        "ModelPackageVersion": version,
        "ModelPackageArn": arn,
        "ModelPackageName": "acme-it-customer-churn",
        "CreationTime": "2024-05-04T10:00:00.000Z",
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": status,
        "ApprovalDescription": "integration test",
        "CustomerMetadataProperties": {"data_version": "2024-05-04", "code_version": "0123abcd"},
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
                    "ModelDataUrl": f"s3://acme-it-artifacts/models/{version}/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    }
    return {
        "Source": "aws.sagemaker",
        "DetailType": "SageMaker Model Package State Change",
        "Resources": [arn],
        "Detail": json.dumps(detail),
    }


@pytest.fixture
def approval_queue(localstack: Callable[[str], Any], unique: str) -> str:
    """The approval responder's rule on the default bus, with a queue as its target."""
    return route_rule_to_queue(
        localstack("events"),
        localstack("sqs"),
        f"acme-it-model-approved-{unique}",
        model_package_event_pattern(),
        f"acme-it-approved-{unique}",
    )


def test_approved_model_package_event_reaches_the_target(localstack: Callable[[str], Any], approval_queue: str) -> None:
    response = localstack("events").put_events(Entries=[model_package_entry(7, "Approved")])
    assert response["FailedEntryCount"] == 0
    event, _ = receive_matching(localstack("sqs"), approval_queue, lambda body: "detail" in body)
    assert (event["source"], event["detail-type"]) == ("aws.sagemaker", "SageMaker Model Package State Change")
    assert event["detail"]["ModelPackageArn"] == PACKAGE.format(version=7)


def test_delivered_event_has_the_eventbridge_envelope(localstack: Callable[[str], Any], approval_queue: str) -> None:
    localstack("events").put_events(Entries=[model_package_entry(8, "Approved")])
    event, _ = receive_matching(localstack("sqs"), approval_queue, lambda body: "detail" in body)
    assert {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"} <= set(event)
    assert event["resources"] == [PACKAGE.format(version=8)]


def test_pending_model_package_event_is_not_routed(localstack: Callable[[str], Any], approval_queue: str) -> None:
    events = localstack("events")
    events.put_events(Entries=[model_package_entry(1, "PendingManualApproval")])
    events.put_events(Entries=[model_package_entry(2, "Approved")])
    # Delivery is in order here; whatever arrived before the approved event must not be the pending one.
    approved, earlier = receive_matching(localstack("sqs"), approval_queue, lambda body: "detail" in body)
    assert approved["detail"]["ModelPackageVersion"] == 2
    assert [body["detail"]["ModelPackageVersion"] for body in earlier] == []
