"""``kms-encryption-at-rest`` over Kinesis streams and Firehose delivery streams: synthetic stacks run through
``verify.policy_check`` exactly as a plan is, plus what only the real engine provides (property dependencies, values
unknown at preview), and the real streaming plan broken on purpose."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pulumi_aws  # noqa: F401  (importing it registers the aws resource modules used below)
import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions, StackValidationArgs
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policies import rules
from tests.support.plans import synthetic_resource
from verify.mock_engine import OfflinePlan, PlannedResource, read_stack_values, run_program
from verify.policy_check import check_plan, check_resources

POLICY = "kms-encryption-at-rest"
ACCOUNT = "123456789012"
KEY_ARN = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/platform"
STREAM_ARN = f"arn:aws:kinesis:eu-west-1:{ACCOUNT}:stream/events"
BUCKET_ARN = "arn:aws:s3:::raw"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/firehose"
TAGS = {"Project": "acme", "Environment": "test", "Owner": "ml", "CostCenter": "cc-1", "ManagedBy": "pulumi"}


def stream(name: str = "events", **overrides: Any) -> PlannedResource:
    inputs = {"name": name, "encryptionType": "KMS", "kmsKeyId": KEY_ARN, "tags": TAGS, **overrides}
    return synthetic_resource(
        rules.KINESIS_STREAM, name, inputs, arn=f"arn:aws:kinesis:eu-west-1:{ACCOUNT}:stream/{name}"
    )


def s3_destination(**overrides: Any) -> dict[str, Any]:
    return {"bucketArn": BUCKET_ARN, "roleArn": ROLE_ARN, "kmsKeyArn": KEY_ARN, **overrides}


def delivery(name: str = "events-raw", source: str | None = STREAM_ARN, **overrides: Any) -> PlannedResource:
    inputs: dict[str, Any] = {
        "name": name,
        "destination": "extended_s3",
        "extendedS3Configuration": s3_destination(),
        "tags": TAGS,
    }
    if source is not None:
        inputs["kinesisSourceConfiguration"] = {"kinesisStreamArn": source, "roleArn": ROLE_ARN}
    inputs.update(overrides)
    return synthetic_resource(rules.FIREHOSE_DELIVERY_STREAM, name, inputs)


def violations(resources: list[PlannedResource]) -> list[str]:
    [found] = [r for r in check_resources(resources) if r.policy == POLICY]
    return found.violations


def test_kms_stream_and_its_kinesis_sourced_delivery_pass() -> None:
    assert violations([stream(), delivery()]) == []


def test_an_unencrypted_stream_is_reported() -> None:
    assert violations([stream(encryptionType="NONE", kmsKeyId=None)]) == [
        "Kinesis stream 'events' has encryptionType='NONE'; it must be 'KMS' with a customer-managed key"
    ]


@pytest.mark.parametrize("key", ["alias/aws/kinesis", f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/aws/kinesis", ""])
def test_a_stream_on_the_aws_managed_key_is_reported(key: str) -> None:
    (problem,) = violations([stream(kmsKeyId=key)])
    assert problem.startswith("Kinesis stream 'events' is encrypted with kmsKeyId=")
    assert "customer-managed key" in problem


def test_a_delivery_stream_reading_an_unencrypted_stream_is_reported() -> None:
    found = violations([stream(encryptionType="NONE"), delivery()])
    assert (
        "Firehose delivery stream 'events-raw' reads Kinesis stream 'events', which is not encrypted with a "
        "customer-managed key, so neither are the records it holds"
    ) in found


def test_server_side_encryption_on_a_kinesis_sourced_delivery_stream_is_reported() -> None:
    sse = {"enabled": True, "keyType": "CUSTOMER_MANAGED_CMK", "keyArn": KEY_ARN}
    (problem,) = violations([stream(), delivery(serverSideEncryption=sse)])
    assert "AWS refuses for a Kinesis source" in problem


def test_a_delivery_stream_reading_a_stream_outside_the_stack_is_reported() -> None:
    (problem,) = violations([delivery(source=f"arn:aws:kinesis:eu-west-1:{ACCOUNT}:stream/elsewhere")])
    assert "reads a Kinesis stream this stack does not create" in problem


def test_a_direct_put_delivery_stream_without_encryption_is_reported() -> None:
    (problem,) = violations([delivery(source=None)])
    assert "direct-put delivery stream: set serverSideEncryption enabled=true" in problem


def test_a_direct_put_delivery_stream_on_an_aws_owned_key_is_reported() -> None:
    sse = {"enabled": True, "keyType": "AWS_OWNED_CMK"}
    assert len(violations([delivery(source=None, serverSideEncryption=sse)])) == 1


def test_a_direct_put_delivery_stream_with_a_customer_key_passes() -> None:
    sse = {"enabled": True, "keyType": "CUSTOMER_MANAGED_CMK", "keyArn": KEY_ARN}
    assert violations([delivery(source=None, serverSideEncryption=sse)]) == []


def test_an_s3_destination_without_a_key_is_reported() -> None:
    destination = s3_destination()
    del destination["kmsKeyArn"]
    (problem,) = violations([stream(), delivery(extendedS3Configuration=destination)])
    assert "without extendedS3Configuration.kmsKeyArn" in problem


def test_streams_and_delivery_streams_must_carry_the_required_tags() -> None:
    assert rules.KINESIS_STREAM in rules.TAGGABLE_TYPES
    assert rules.FIREHOSE_DELIVERY_STREAM in rules.TAGGABLE_TYPES


# --- what only the engine provides ------------------------------------------------------------


def policy_resource(planned: PlannedResource, props: dict[str, Any]) -> PolicyResource:
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    return PolicyResource(
        planned.type, unknown_checking_proxy(props), planned.urn, planned.name, options, None, None, [], {}
    )


def test_preview_ties_a_delivery_stream_to_its_source_by_property_dependency() -> None:
    # A new stack's stream ARN is unknown at preview; the engine's propertyDependencies say which stream it reads.
    source = policy_resource(stream(), {"encryptionType": "KMS", "kmsKeyId": UNKNOWN_STRING_VALUE, "tags": TAGS})
    planned = delivery()
    props = {
        **planned.inputs,
        "kinesisSourceConfiguration": {"kinesisStreamArn": UNKNOWN_STRING_VALUE, "roleArn": ROLE_ARN},
    }
    reader = policy_resource(planned, props)
    reader.property_dependencies["kinesisSourceConfiguration"] = [source]
    reported: list[str] = []
    rules.validate_kms_encryption(StackValidationArgs([source, reader]), lambda m, _u=None: reported.append(m))
    assert reported == []


def test_preview_reports_an_unknown_source_without_a_dependency_as_not_run() -> None:
    planned = delivery()
    props = {**planned.inputs, "kinesisSourceConfiguration": {"kinesisStreamArn": UNKNOWN_STRING_VALUE}}
    reported: list[str] = []
    with pytest.raises(UnknownValueError):
        rules.validate_kms_encryption(
            StackValidationArgs([policy_resource(planned, props)]), lambda m, _u=None: reported.append(m)
        )
    assert reported == []


# --- the real streaming plan, broken on purpose --------------------------------------------------


@pytest.fixture(scope="module")
def streaming_plan() -> OfflinePlan:
    catalog = json.loads(read_stack_values("dev")["mlops:catalog"])
    catalog["tables"][0]["streaming"] = {}
    return run_program("dev", overrides={"catalog": catalog})


def test_the_streaming_plan_passes(streaming_plan: OfflinePlan) -> None:
    [result] = [r for r in check_plan(streaming_plan) if r.policy == POLICY]
    assert result.passed, result.violations


def test_dropping_the_streams_key_is_reported_for_the_stream_and_its_delivery(streaming_plan: OfflinePlan) -> None:
    def unencrypted(r: PlannedResource) -> PlannedResource:
        if r.type != rules.KINESIS_STREAM:
            return r
        inputs = {**r.inputs, "encryptionType": "NONE"}
        return dataclasses.replace(r, inputs=inputs, state={**r.state, "encryptionType": "NONE"})

    broken = dataclasses.replace(streaming_plan, resources=tuple(unencrypted(r) for r in streaming_plan.resources))
    [result] = [r for r in check_plan(broken) if r.policy == POLICY]
    assert len(result.violations) == 2
    assert any(v.startswith("Kinesis stream ") for v in result.violations)
    assert any(v.startswith("Firehose delivery stream ") for v in result.violations)
