"""Properties of the lake and the security base, over every stack file (Pulumi mocks)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ConfigError
from infra.naming import REQUIRED_TAG_KEYS
from infra.types import ZONE_NAMES
from policies.rules import IMAGE_REFERENCE_TAG_TYPES
from tests.support.plans import platform_key_arn
from verify.mock_engine import OfflinePlan, PlannedResource, run_program


def by_bucket(plan: OfflinePlan, type_token: str) -> dict[str, PlannedResource]:
    """Bucket-setting resources keyed by the bucket name they apply to."""
    found: dict[str, PlannedResource] = {}
    for resource in plan.of_type(type_token):
        bucket = resource.inputs["bucket"]
        assert bucket not in found, f"two {type_token} for {bucket}"
        found[bucket] = resource
    return found


def bucket_names(plan: OfflinePlan) -> list[str]:
    return [b.state["bucket"] for b in plan.of_type("aws:s3/bucket:Bucket")]


def test_one_bucket_per_zone_plus_access_logs(plan: OfflinePlan) -> None:
    prefix = f"{plan.config.project}-{plan.config.environment}"
    expected = {f"{prefix}-{zone}" for zone in ZONE_NAMES} | {f"{prefix}-access-logs"}
    assert set(bucket_names(plan)) == expected


def test_every_bucket_is_kms_encrypted_with_the_platform_key(plan: OfflinePlan) -> None:
    sse = by_bucket(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    for name in bucket_names(plan):
        [rule] = sse[name].inputs["rules"]
        default = rule["applyServerSideEncryptionByDefault"]
        assert default["sseAlgorithm"] == "aws:kms", name
        assert default["kmsMasterKeyId"] == platform_key_arn(plan), name
        assert rule["bucketKeyEnabled"] is True, name


def test_every_bucket_blocks_public_access(plan: OfflinePlan) -> None:
    blocks = by_bucket(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for name in bucket_names(plan):
        assert all(blocks[name].inputs[f] is True for f in flags), name


def test_every_bucket_enforces_owner_and_versioning(plan: OfflinePlan) -> None:
    ownership = by_bucket(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    versioning = by_bucket(plan, "aws:s3/bucketVersioning:BucketVersioning")
    for name in bucket_names(plan):
        assert ownership[name].inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
        assert versioning[name].inputs["versioningConfiguration"]["status"] == "Enabled"


def policy_statements(plan: OfflinePlan, bucket: str) -> list[dict[str, Any]]:
    policy = by_bucket(plan, "aws:s3/bucketPolicy:BucketPolicy")[bucket]
    return json.loads(policy.inputs["policy"])["Statement"]


def test_every_bucket_policy_is_tls_only(plan: OfflinePlan) -> None:
    for name in bucket_names(plan):
        denies = [
            s
            for s in policy_statements(plan, name)
            if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        assert len(denies) == 1, name
        assert set(denies[0]["Resource"]) == {f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"}


def test_zone_buckets_refuse_uploads_with_other_keys(plan: OfflinePlan) -> None:
    for zone in ZONE_NAMES:
        name = f"{plan.config.project}-{plan.config.environment}-{zone}"
        sids = {s["Sid"]: s for s in policy_statements(plan, name)}
        key_condition = sids["DenyOtherKmsKeys"]["Condition"]["StringNotEqualsIfExists"]
        assert key_condition["s3:x-amz-server-side-encryption-aws-kms-key-id"] == platform_key_arn(plan)


def test_only_s3_log_delivery_writes_the_log_bucket(plan: OfflinePlan) -> None:
    log_bucket = f"{plan.config.project}-{plan.config.environment}-access-logs"
    [allow] = [s for s in policy_statements(plan, log_bucket) if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Action"] == "s3:PutObject"
    sources = set(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    assert sources == {f"arn:aws:s3:::{n}" for n in bucket_names(plan) if n != log_bucket}


def test_every_zone_logs_to_the_log_bucket(plan: OfflinePlan) -> None:
    logging = by_bucket(plan, "aws:s3/bucketLogging:BucketLogging")
    log_bucket = f"{plan.config.project}-{plan.config.environment}-access-logs"
    assert set(logging) == set(bucket_names(plan)) - {log_bucket}
    assert {r.inputs["targetBucket"] for r in logging.values()} == {log_bucket}


def test_lifecycle_follows_the_stack(plan: OfflinePlan) -> None:
    lifecycle = by_bucket(plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    for zone, settings in plan.config.lake.zones.items():
        rules = {
            r["id"]: r for r in lifecycle[f"{plan.config.project}-{plan.config.environment}-{zone}"].inputs["rules"]
        }
        current = rules[f"{zone}-current-versions"]
        assert current.get("expiration", {}).get("days") == settings.expire_after_days
        days = {t["storageClass"]: t["days"] for t in current.get("transitions", [])}
        assert days.get("STANDARD_IA") == settings.infrequent_access_after_days
        assert days.get("GLACIER_IR") == settings.glacier_after_days
        staging = rules.get(f"{zone}-abandoned-staging")
        assert (staging is not None) is (zone == "curated")
        housekeeping = rules[f"{zone}-housekeeping"]
        assert (
            housekeeping["noncurrentVersionExpiration"]["noncurrentDays"]
            == settings.noncurrent_versions_expire_after_days
        )


def test_stateful_resources_follow_protect_and_retain(plan: OfflinePlan) -> None:
    stateful = [*plan.of_type("aws:s3/bucket:Bucket"), *plan.of_type("aws:kms/key:Key")]
    assert all(r.protect == plan.config.protect_stateful_resources for r in stateful)
    assert all(r.retain_on_delete == plan.config.retain_stateful_on_delete for r in stateful)
    assert all(r.inputs["forceDestroy"] == plan.config.lake.force_destroy for r in plan.of_type("aws:s3/bucket:Bucket"))


def test_bucket_settings_are_not_protected(plan: OfflinePlan) -> None:
    # Protection belongs to the data; settings must stay replaceable.
    settings = plan.of_type("aws:s3/bucketPolicy:BucketPolicy") + plan.of_type(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    assert settings and not any(r.protect for r in settings)


def test_every_taggable_resource_is_tagged(plan: OfflinePlan) -> None:
    # A docker-build image's `tags` are image references (registry/repository:tag), not AWS tags.
    tagged = [r for r in plan.custom() if "tags" in r.inputs and r.type not in IMAGE_REFERENCE_TAG_TYPES]
    assert tagged
    for resource in tagged:
        tags = resource.inputs["tags"]
        if isinstance(tags, list):  # aws-native resources take tags as [{key, value}]
            tags = {t["key"]: t["value"] for t in tags}
        missing = [k for k in REQUIRED_TAG_KEYS if not tags.get(k)]
        assert not missing, f"{resource.name} lacks {missing}"
        assert tags["Environment"] == plan.config.environment


def test_key_rotates_and_has_an_explicit_policy(plan: OfflinePlan) -> None:
    [key] = plan.of_type("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["rotationPeriodInDays"] == plan.config.kms.rotation_period_days
    assert key.inputs["deletionWindowInDays"] == plan.config.kms.deletion_window_days
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    assert statements["AccountRootFullControl"]["Principal"]["AWS"].endswith(":root")
    publishers = statements["AwsServicePublishers"]
    assert publishers["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_key_administrators_manage_but_cannot_use_the_key() -> None:
    admin = "arn:aws:iam::246813579135:role/key-admins"
    plan = run_program("dev", overrides={"kms": {"administratorArns": [admin], "deletionWindowDays": 7}})
    [key] = plan.of_type("aws:kms/key:Key")
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    admins = statements["KeyAdministrators"]
    assert admins["Principal"]["AWS"] == [admin]
    assert "kms:Decrypt" not in admins["Action"] and "kms:PutKeyPolicy" in admins["Action"]


def test_an_example_administrator_from_awss_documentation_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError) as error:
        run_program("dev", overrides={"kms": {"administratorArns": ["arn:aws:iam::111122223333:role/admins"]}})
    [problem] = error.value.problems
    assert problem.startswith('mlops:kms.administratorArns.0: got "arn:aws:iam::111122223333:role/admins";')
    assert "example account ID from AWS's documentation" in problem


def test_eventbridge_gets_awss_documented_statement_for_encrypted_queues(plan: OfflinePlan) -> None:
    """No condition AWS does not document for EventBridge's deliveries: a non-matching one drops dead letters."""
    [key] = plan.of_type("aws:kms/key:Key")
    statements = json.loads(key.inputs["policy"])["Statement"]
    for_events = [st for st in statements if "events.amazonaws.com" in json.dumps(st.get("Principal"))]
    assert [st["Sid"] for st in for_events] == ["EventBridgeDeadLetters"]
    (events,) = for_events
    assert "Condition" not in events
    assert sorted(events["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_no_administrators_statement_without_administrators(stack_plans: dict[str, OfflinePlan]) -> None:
    plan = stack_plans["dev"]
    [key] = plan.of_type("aws:kms/key:Key")
    assert "KeyAdministrators" not in {s["Sid"] for s in json.loads(key.inputs["policy"])["Statement"]}


def test_abandoned_ingestion_batches_expire_where_ingestion_stages_them(plan: OfflinePlan) -> None:
    from mlops.ingestion import STAGING_PREFIX

    lifecycle = by_bucket(plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    rules = {r["id"]: r for r in lifecycle[plan.outputs["lakeBuckets"]["curated"]].inputs["rules"]}
    staging = rules["curated-abandoned-staging"]
    assert staging["filter"]["prefix"] == STAGING_PREFIX
    assert staging["expiration"]["days"] >= 1
