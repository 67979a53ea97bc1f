"""The CrossGuard policy pack (``policies/rules.py``): each rule on tiny synthetic stacks, then every mocked stack.

Synthetic resources are :class:`PlannedResource` values, run through ``verify.policy_check`` exactly
as a plan is (resource policies see inputs, stack policies see outputs, both behind pulumi_policy's
unknown-checking proxies).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
from typing import Any

import pulumi
import pulumi_aws  # noqa: F401  (importing it registers the aws resource modules used below)
import pulumi_aws_native.sagemaker  # noqa: F401  (registers the aws-native sagemaker resource module)
import pytest
from google.protobuf import struct_pb2
from pulumi.runtime import proto, rpc
from pulumi_policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions, StackValidationArgs
from pulumi_policy.policy import _PolicyAnalyzerServicer  # the engine-facing servicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from infra.naming import REQUIRED_TAG_KEYS
from policies import rules
from tests.support.plans import synthetic_resource
from verify.mock_engine import OfflinePlan, PlannedResource
from verify.policy_check import PolicyResult, check_plan, check_resources

ACCOUNT = "123456789012"
KEY_ARN = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/platform"
TAGS = {"Project": "acme", "Environment": "test", "Owner": "ml", "CostCenter": "cc-1", "ManagedBy": "pulumi"}


# ---------------------------------------------------------------------------------------------
# Synthetic resources


def bucket(name: str, tags: dict[str, str] | None = None) -> PlannedResource:
    return synthetic_resource(
        rules.BUCKET, name, {"bucket": name, "tags": dict(TAGS) if tags is None else tags}, arn=f"arn:aws:s3:::{name}"
    )


def sse(bucket_name: str, algorithm: str = "aws:kms", key: str | None = KEY_ARN) -> PlannedResource:
    default: dict[str, Any] = {"sseAlgorithm": algorithm}
    if key is not None:
        default["kmsMasterKeyId"] = key
    rule = {"applyServerSideEncryptionByDefault": default, "bucketKeyEnabled": True}
    return synthetic_resource(rules.BUCKET_SSE, f"{bucket_name}-sse", {"bucket": bucket_name, "rules": [rule]})


def public_access_block(bucket_name: str, **flags: bool) -> PlannedResource:
    inputs: dict[str, Any] = {"bucket": bucket_name, **dict.fromkeys(rules.PUBLIC_ACCESS_FLAGS, True), **flags}
    return synthetic_resource(rules.BUCKET_PAB, f"{bucket_name}-pab", inputs)


def tls_deny(bucket_name: str, **overrides: Any) -> dict[str, Any]:
    arn = f"arn:aws:s3:::{bucket_name}"
    statement: dict[str, Any] = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    statement.update(overrides)
    return statement


def bucket_policy(bucket_name: str, *statements: dict[str, Any]) -> PlannedResource:
    document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return synthetic_resource(rules.BUCKET_POLICY, f"{bucket_name}-policy", {"bucket": bucket_name, "policy": document})


def secure_bucket(name: str) -> list[PlannedResource]:
    """A bucket with everything the S3 rules require."""
    return [bucket(name), sse(name), public_access_block(name), bucket_policy(name, tls_deny(name))]


def iam_document(*actions: str, effect: str = "Allow", sid: str = "Data") -> str:
    statement = {"Sid": sid, "Effect": effect, "Action": list(actions), "Resource": "arn:aws:s3:::b/*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def role_policy(name: str, *actions: str) -> PlannedResource:
    return synthetic_resource(rules.IAM_ROLE_POLICY, name, {"role": "r", "policy": iam_document(*actions)})


def result(policy: str, resources: list[PlannedResource]) -> PolicyResult:
    [found] = [r for r in check_resources(resources) if r.policy == policy]
    return found


def violations(policy: str, resources: list[PlannedResource]) -> list[str]:
    return result(policy, resources).violations


# ---------------------------------------------------------------------------------------------
# kms-encryption-at-rest


def test_kms_encrypted_bucket_passes() -> None:
    assert result("kms-encryption-at-rest", secure_bucket("b")).passed


def test_dsse_kms_bucket_passes() -> None:
    assert violations("kms-encryption-at-rest", [bucket("b"), sse("b", algorithm="aws:kms:dsse")]) == []


def test_bucket_without_encryption_configuration_fails() -> None:
    assert violations("kms-encryption-at-rest", [bucket("b")]) == [
        "bucket 'b' has no BucketServerSideEncryptionConfiguration"
    ]


def test_sse_s3_bucket_fails() -> None:
    assert violations("kms-encryption-at-rest", [bucket("b"), sse("b", algorithm="AES256", key=None)]) == [
        "bucket 'b' default encryption is 'AES256'; it must be 'aws:kms' or 'aws:kms:dsse' with a customer-managed key"
    ]


def test_kms_without_key_id_fails() -> None:
    assert violations("kms-encryption-at-rest", [bucket("b"), sse("b", key=None)]) == [
        "bucket 'b' default encryption is 'aws:kms' without kmsMasterKeyId (the AWS-managed key); "
        "it must name the platform's customer-managed key"
    ]


def test_kms_key_without_rotation_fails() -> None:
    key = synthetic_resource(rules.KMS_KEY, "platform-key", {"enableKeyRotation": False, "tags": TAGS})
    assert violations("kms-encryption-at-rest", [key]) == [
        "KMS key 'platform-key' has enableKeyRotation=False; it must be true"
    ]


def test_kms_key_with_rotation_passes() -> None:
    key = synthetic_resource(rules.KMS_KEY, "platform-key", {"enableKeyRotation": True, "tags": TAGS})
    assert violations("kms-encryption-at-rest", [key]) == []


def test_encryption_is_matched_to_its_own_bucket() -> None:
    # One bucket's configuration does not cover another bucket.
    assert violations("kms-encryption-at-rest", [bucket("a"), bucket("b"), sse("a")]) == [
        "bucket 'b' has no BucketServerSideEncryptionConfiguration"
    ]


# ---------------------------------------------------------------------------------------------
# s3-public-access-blocked


def test_public_access_block_with_all_flags_passes() -> None:
    assert result("s3-public-access-blocked", secure_bucket("b")).passed


def test_public_access_block_with_one_flag_false_fails() -> None:
    resources = [bucket("b"), public_access_block("b", restrictPublicBuckets=False)]
    assert violations("s3-public-access-blocked", resources) == [
        "bucket 'b': public access block 'b-pab' does not set restrictPublicBuckets to true "
        "(all four flags must be true)"
    ]


def test_bucket_without_public_access_block_fails() -> None:
    assert violations("s3-public-access-blocked", [bucket("b")]) == ["bucket 'b' has no BucketPublicAccessBlock"]


# ---------------------------------------------------------------------------------------------
# s3-tls-only


def test_tls_deny_policy_passes() -> None:
    assert result("s3-tls-only", secure_bucket("b")).passed


def test_bucket_policy_without_tls_deny_fails() -> None:
    allow = {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject"}
    assert violations("s3-tls-only", [bucket("b"), bucket_policy("b", allow)]) == [
        "bucket 'b': bucket policy 'b-policy' has no Deny statement on aws:SecureTransport=false "
        "covering arn:aws:s3:::b and arn:aws:s3:::b/*"
    ]


def test_tls_deny_on_the_objects_only_fails() -> None:
    objects_only = tls_deny("b", Resource="arn:aws:s3:::b/*")
    assert violations("s3-tls-only", [bucket("b"), bucket_policy("b", objects_only)]) == [
        "bucket 'b': bucket policy 'b-policy' has no Deny statement on aws:SecureTransport=false "
        "covering arn:aws:s3:::b and arn:aws:s3:::b/*"
    ]


def test_bucket_without_policy_fails() -> None:
    assert violations("s3-tls-only", [bucket("b")]) == [
        "bucket 'b' has no BucketPolicy (a Deny on aws:SecureTransport=false is required)"
    ]


# ---------------------------------------------------------------------------------------------
# required-tags


def test_fully_tagged_resource_passes() -> None:
    assert result("required-tags", [bucket("b")]).passed


def test_resource_missing_a_tag_fails() -> None:
    untagged = {k: v for k, v in TAGS.items() if k != "CostCenter"}
    assert violations("required-tags", [bucket("b", tags=untagged)]) == [
        "aws:s3/bucket:Bucket 'b' is missing required tag(s) CostCenter (or they are empty)"
    ]


def test_empty_tag_value_fails() -> None:
    assert violations("required-tags", [bucket("b", tags={**TAGS, "Owner": " "})]) == [
        "aws:s3/bucket:Bucket 'b' is missing required tag(s) Owner (or they are empty)"
    ]


def test_taggable_resource_without_tags_fails() -> None:
    queue = synthetic_resource("aws:sqs/queue:Queue", "q", {"name": "q"})
    assert violations("required-tags", [queue]) == [
        "aws:sqs/queue:Queue 'q' has no tags; required: Project, Environment, Owner, CostCenter, ManagedBy"
    ]


def test_untaggable_resource_is_not_checked() -> None:
    alias = synthetic_resource("aws:kms/alias:Alias", "alias", {"name": "alias/x", "targetKeyId": "k"})
    assert result("required-tags", [alias]).passed


def test_any_resource_with_tags_is_checked() -> None:
    unknown_type = synthetic_resource("aws:newservice/thing:Thing", "t", {"tags": {"Project": "acme"}})
    assert violations("required-tags", [unknown_type]) == [
        "aws:newservice/thing:Thing 't' is missing required tag(s) Environment, Owner, CostCenter, ManagedBy "
        "(or they are empty)"
    ]


def test_required_tags_match_the_naming_helper() -> None:
    assert rules.REQUIRED_TAGS == REQUIRED_TAG_KEYS


# ---------------------------------------------------------------------------------------------
# iam-no-wildcard-data-actions


def test_explicit_actions_pass() -> None:
    policy = role_policy("p", "s3:GetObject", "s3:PutObject", "kms:Decrypt", "sagemaker:StartPipelineExecution")
    assert result("iam-no-wildcard-data-actions", [policy]).passed


def test_service_wildcard_fails() -> None:
    assert violations("iam-no-wildcard-data-actions", [role_policy("p", "s3:*")]) == [
        "IAM role policy 'p': statement 'Data' allows 's3:*' (every s3 action); list the actions explicitly"
    ]


def test_partial_wildcard_on_a_data_service_fails() -> None:
    assert violations("iam-no-wildcard-data-actions", [role_policy("p", "kms:Get*")]) == [
        "IAM role policy 'p': statement 'Data' allows 'kms:Get*' (a wildcard in a kms (data service) action); "
        "list the actions explicitly"
    ]


def test_partial_wildcard_on_another_service_passes() -> None:
    # Read-only describe calls of non-data services (CloudWatch metrics here) are not data access.
    assert violations("iam-no-wildcard-data-actions", [role_policy("p", "cloudwatch:Describe*")]) == []


def test_star_action_fails() -> None:
    assert violations("iam-no-wildcard-data-actions", [role_policy("p", "*")]) == [
        "IAM role policy 'p': statement 'Data' allows '*' (every action of every service); list the actions explicitly"
    ]


def test_deny_with_wildcards_passes() -> None:
    document = iam_document("s3:*", effect="Deny")
    policy = synthetic_resource(rules.IAM_POLICY, "guard", {"policy": document, "tags": TAGS})
    assert violations("iam-no-wildcard-data-actions", [policy]) == []


def test_role_inline_policy_is_checked() -> None:
    inline = [{"name": "data", "policy": iam_document("glue:*")}]
    role = synthetic_resource(
        rules.IAM_ROLE, "role", {"assumeRolePolicy": "{}", "inlinePolicies": inline, "tags": TAGS}
    )
    assert violations("iam-no-wildcard-data-actions", [role]) == [
        "IAM role 'role' inline policy 'data': statement 'Data' allows 'glue:*' (every glue action); "
        "list the actions explicitly"
    ]


def test_policy_document_as_a_map_is_read() -> None:
    document = json.loads(iam_document("dynamodb:Query", "sqs:Send*"))
    policy = synthetic_resource(rules.IAM_POLICY, "p", {"policy": document, "tags": TAGS})
    assert violations("iam-no-wildcard-data-actions", [policy]) == [
        "IAM policy 'p': statement 'Data' allows 'sqs:Send*' (a wildcard in a sqs (data service) action); "
        "list the actions explicitly"
    ]


def test_allow_with_not_action_fails() -> None:
    document = json.dumps({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]})
    policy = synthetic_resource(rules.IAM_ROLE_POLICY, "p", {"role": "r", "policy": document})
    assert violations("iam-no-wildcard-data-actions", [policy]) == [
        "IAM role policy 'p': statement #0 allows NotAction (every other action); list the actions"
    ]


def test_invalid_policy_json_fails() -> None:
    policy = synthetic_resource(rules.IAM_ROLE_POLICY, "p", {"role": "r", "policy": "{not json"})
    assert violations("iam-no-wildcard-data-actions", [policy]) == [
        "IAM role policy 'p' is not a valid JSON policy document"
    ]


# ---------------------------------------------------------------------------------------------
# What only the real engine provides: property dependencies and values unknown at preview


def policy_resource(planned: PlannedResource, props: dict[str, Any]) -> PolicyResource:
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    return PolicyResource(
        planned.type, unknown_checking_proxy(props), planned.urn, planned.name, options, None, None, [], {}
    )


def test_preview_ties_resources_to_buckets_by_property_dependency() -> None:
    # In a preview of a new stack the bucket's id (and so the PAB's `bucket`) is unknown; the engine's
    # propertyDependencies still say which bucket the block belongs to.
    the_bucket = policy_resource(bucket("b"), {"bucket": "b", "id": UNKNOWN_STRING_VALUE, "tags": TAGS})
    pab_props: dict[str, Any] = {"bucket": UNKNOWN_STRING_VALUE, **dict.fromkeys(rules.PUBLIC_ACCESS_FLAGS, True)}
    block = policy_resource(public_access_block("b"), pab_props)
    block.property_dependencies["bucket"] = [the_bucket]
    reported: list[str] = []
    rules.validate_public_access_blocked(
        StackValidationArgs([the_bucket, block]), lambda m, _u=None: reported.append(m)
    )
    assert reported == []


def test_preview_reports_what_it_can_then_the_unknown() -> None:
    # One bucket's policy is unknown at preview; the other bucket's missing policy is still reported,
    # then the unknown is raised so the engine says the check could not finish.
    known = policy_resource(bucket("a"), {"bucket": "a", "id": "a", "arn": "arn:aws:s3:::a", "tags": TAGS})
    pending = policy_resource(bucket("b"), {"bucket": "b", "id": "b", "arn": "arn:aws:s3:::b", "tags": TAGS})
    pending_policy = policy_resource(bucket_policy("b"), {"bucket": "b", "policy": UNKNOWN_STRING_VALUE})
    reported: list[str] = []
    with pytest.raises(UnknownValueError):
        rules.validate_tls_only(
            StackValidationArgs([known, pending, pending_policy]), lambda m, _u=None: reported.append(m)
        )
    assert reported == ["bucket 'a' has no BucketPolicy (a Deny on aws:SecureTransport=false is required)"]


# ---------------------------------------------------------------------------------------------
# Every mocked stack


def test_every_stack_passes_every_policy(plan: OfflinePlan) -> None:
    results = check_plan(plan)
    assert [r.policy for r in results] == [p.name for p in rules.POLICIES]
    failed = {r.policy: r.violations for r in results if not r.passed}
    assert failed == {}, f"stack {plan.stack} violates the policy pack: {failed}"


def test_every_policy_is_mandatory(plan: OfflinePlan) -> None:
    assert {r.enforcement for r in check_plan(plan)} == {"mandatory"}


def test_dropping_a_public_access_block_is_reported_for_exactly_that_bucket(
    stack_plans: dict[str, OfflinePlan],
) -> None:
    plan = stack_plans["dev"]
    [raw] = [b for b in plan.of_type(rules.BUCKET) if b.state["bucket"].endswith("-raw")]
    mutated = dataclasses.replace(
        plan,
        resources=tuple(
            r for r in plan.resources if not (r.type == rules.BUCKET_PAB and r.inputs["bucket"] == raw.state["id"])
        ),
    )
    results = {r.policy: r for r in check_plan(mutated)}
    assert results["s3-public-access-blocked"].violations == [f"bucket '{raw.name}' has no BucketPublicAccessBlock"]
    assert [name for name, r in results.items() if not r.passed] == ["s3-public-access-blocked"]


def test_a_wildcard_added_to_a_real_role_policy_is_reported(stack_plans: dict[str, OfflinePlan]) -> None:
    plan = stack_plans["dev"]
    target = plan.of_type(rules.IAM_ROLE_POLICY)[0]
    document = json.loads(target.inputs["policy"])
    document["Statement"][0]["Action"] = ["s3:Get*"]
    widened = dataclasses.replace(target, inputs={**target.inputs, "policy": json.dumps(document)})
    mutated = dataclasses.replace(plan, resources=tuple(widened if r is target else r for r in plan.resources))
    sid = document["Statement"][0].get("Sid")
    assert result_of(mutated, "iam-no-wildcard-data-actions").violations == [
        f"IAM role policy '{target.name}': statement '{sid}' allows 's3:Get*' "
        "(a wildcard in a s3 (data service) action); list the actions explicitly"
    ]


def result_of(plan: OfflinePlan, policy: str) -> PolicyResult:
    [found] = [r for r in check_plan(plan) if r.policy == policy]
    return found


# ---------------------------------------------------------------------------------------------
# TAGGABLE_TYPES stays complete as layers add resource types


def provider_class(type_token: str) -> type[pulumi.CustomResource]:
    """The Python class of a provider resource type, from the provider's own type registry."""
    package, module, _ = type_token.split(":")
    registered = rpc.get_resource_module(package, module, "")
    info = getattr(registered, "mod_info", None)
    assert info is not None, f"resource type {type_token} is not registered by any imported provider package"
    cls = getattr(importlib.import_module(info["fqn"]), info["classes"][type_token])
    assert issubclass(cls, pulumi.CustomResource)
    return cls


def accepts_tags(type_token: str) -> bool:
    return "tags" in inspect.signature(provider_class(type_token)._internal_init).parameters


def test_taggable_types_cover_every_taggable_type_the_program_creates(plan: OfflinePlan) -> None:
    created = sorted({r.type for r in plan.custom() if not r.type.startswith("pulumi:providers:")})
    missing = [
        t
        for t in created
        if accepts_tags(t) and t not in rules.TAGGABLE_TYPES and t not in rules.IMAGE_REFERENCE_TAG_TYPES
    ]
    assert missing == [], f"add these taggable types to policies.rules.TAGGABLE_TYPES: {missing}"


def test_taggable_types_are_all_taggable() -> None:
    not_taggable = sorted(t for t in rules.TAGGABLE_TYPES if not accepts_tags(t))
    assert not_taggable == [], f"these TAGGABLE_TYPES take no tags in pulumi-aws: {not_taggable}"


@pytest.mark.parametrize(
    "type_token",
    [
        "aws:kms/alias:Alias",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:glue/catalogTable:CatalogTable",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:cloudwatch/eventTarget:EventTarget",
    ],
)
def test_untaggable_types_are_recognised(type_token: str) -> None:
    assert not accepts_tags(type_token)


def test_resources_undecided_at_preview_are_not_reported_missing() -> None:
    # Without property dependencies, a block whose `bucket` is unknown cannot be tied to a bucket: the rule
    # must not claim the bucket has none, and raises the unknown so the engine says the check did not finish.
    the_bucket = policy_resource(bucket("b"), {"bucket": "b", "id": UNKNOWN_STRING_VALUE, "tags": TAGS})
    block = policy_resource(public_access_block("b"), {"bucket": UNKNOWN_STRING_VALUE})
    reported: list[str] = []
    with pytest.raises(UnknownValueError):
        rules.validate_public_access_blocked(
            StackValidationArgs([the_bucket, block]), lambda m, _u=None: reported.append(m)
        )
    assert reported == []


# ---------------------------------------------------------------------------------------------
# The offline adapter agrees with pulumi_policy's own analyzer servicer (what the engine calls over gRPC)


def engine_diagnostics(resources: tuple[PlannedResource, ...]) -> set[tuple[str, str]]:
    """(policy, message) of every diagnostic pulumi_policy's servicer returns for Analyze + AnalyzeStack."""
    servicer = _PolicyAnalyzerServicer(
        rules.PACK_NAME, "0.0.1", rules.POLICIES, rules.PACK_ENFORCEMENT, None, None, None, None, None, None, None
    )

    def struct(values: dict[str, Any]) -> struct_pb2.Struct:
        message = struct_pb2.Struct()
        # assets and archives (Lambda code) travel to the engine as their own messages: a string stands in here
        message.update(json.loads(json.dumps(values, default=str)))
        return message

    def options(r: PlannedResource) -> Any:
        return proto.AnalyzerResourceOptions(protect=r.protect, parent=r.parent)

    found: set[tuple[str, str]] = set()
    for r in resources:
        request = proto.AnalyzeRequest(
            urn=r.urn, type=r.type, name=r.name, properties=struct(r.inputs), options=options(r)
        )
        for d in servicer.Analyze(request, None).diagnostics:
            found.add((d.policyName, d.message.split("\n", 1)[1]))
    stack = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(
                urn=r.urn, type=r.type, name=r.name, properties=struct(r.state), options=options(r), parent=r.parent
            )
            for r in resources
        ]
    )
    for d in servicer.AnalyzeStack(stack, None).diagnostics:
        found.add((d.policyName, d.message.split("\n", 1)[1]))
    return found


def test_adapter_matches_the_engine_servicer_on_a_broken_stack(stack_plans: dict[str, OfflinePlan]) -> None:
    plan = stack_plans["dev"]
    [raw] = [b for b in plan.of_type(rules.BUCKET) if b.state["bucket"].endswith("-raw")]
    untagged = {k: v for k, v in raw.inputs["tags"].items() if k != "Owner"}
    broken = tuple(
        dataclasses.replace(r, inputs={**r.inputs, "tags": untagged}, state={**r.state, "tags": untagged})
        if r is raw
        else r
        for r in plan.resources
        if not (r.type == rules.BUCKET_POLICY and r.inputs["bucket"] == raw.state["id"])
    )
    adapter = {(r.policy, v) for r in check_resources(broken) for v in r.violations}
    assert len(adapter) == 2
    assert engine_diagnostics(broken) == adapter
