"""Least-privilege IAM, by construction: one small function per statement, scoped by ARN.

Each function returns one IAM statement whose resources may be Pulumi ``Output`` values;
:func:`policy_document` serialises statements with ``Output.json_dumps`` (never an f-string).
A wildcard resource appears only where the service offers no resource-level permission, with
the reason beside it. Actions are always listed explicitly (no ``service:*`` on data services);
the policy pack checks the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.naming import Kind, Naming

Statement = dict[str, Any]


def statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    *,
    effect: str = "Allow",
    conditions: dict[str, Any] | None = None,
) -> Statement:
    """One IAM statement. ``sid`` must be alphanumeric (IAM's rule)."""
    if not sid.isalnum():
        raise ValueError(f"statement id {sid!r} must be alphanumeric")
    if not actions or not resources:
        raise ValueError(f"statement {sid} needs at least one action and one resource")
    body: Statement = {"Sid": sid, "Effect": effect, "Action": sorted(set(actions)), "Resource": list(resources)}
    if conditions:
        body["Condition"] = conditions
    return body


def policy_document(*statements: Statement) -> pulumi.Output[str]:
    """A policy document (JSON string output) from statements that may hold outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role_policy(*services: str, source_account: pulumi.Input[str] | None = None) -> pulumi.Output[str]:
    """Trust policy letting the given AWS service principals assume a role.

    With ``source_account`` the services may assume it only on behalf of that account (the
    confused-deputy guard AWS recommends for service roles).
    """
    trust: Statement = {
        "Effect": "Allow",
        "Principal": {"Service": sorted(services)},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [trust]})


def _objects(bucket_arns: Sequence[pulumi.Input[str]], prefix: str = "") -> list[pulumi.Output[str]]:
    return [pulumi.Output.concat(arn, "/", prefix, "*") for arn in bucket_arns]


# --- S3 ---------------------------------------------------------------------------------------


def s3_read(sid: str, bucket_arns: Sequence[pulumi.Input[str]], prefix: str = "") -> list[Statement]:
    """List the buckets and read their objects (optionally under ``prefix``)."""
    listing = statement(f"{sid}List", ["s3:ListBucket", "s3:GetBucketLocation"], list(bucket_arns))
    reading = statement(f"{sid}Read", ["s3:GetObject", "s3:GetObjectVersion"], _objects(bucket_arns, prefix))
    return [listing, reading]


def s3_write(sid: str, bucket_arns: Sequence[pulumi.Input[str]], prefix: str = "") -> Statement:
    """Write and delete objects (optionally under ``prefix``); no bucket-level changes."""
    return statement(
        sid,
        ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        _objects(bucket_arns, prefix),
    )


def s3_list_prefix(sid: str, bucket_arns: Sequence[pulumi.Input[str]], prefix: str) -> Statement:
    """List the buckets' keys under ``prefix`` only (the ``s3:prefix`` condition)."""
    if not prefix:
        raise ValueError(f"statement {sid}: a prefix is required (use s3_read to list whole buckets)")
    return statement(
        sid,
        ["s3:ListBucket"],
        list(bucket_arns),
        conditions={"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
    )


def s3_read_objects(sid: str, bucket_arns: Sequence[pulumi.Input[str]], prefix: str = "") -> Statement:
    """Read objects (optionally under ``prefix``), without listing the buckets."""
    return statement(sid, ["s3:GetObject", "s3:GetObjectVersion"], _objects(bucket_arns, prefix))


def s3_offline_store_acl(sid: str, bucket_arns: Sequence[pulumi.Input[str]], prefix: str) -> list[Statement]:
    """The ACL calls Feature Store makes when it writes an offline store under ``prefix``.

    It reads the bucket's ACL and sets bucket-owner-full-control on the objects it writes (what
    AWS's AmazonSageMakerFeatureStoreAccess policy grants, here scoped to one bucket and prefix).
    """
    return [
        statement(f"{sid}Bucket", ["s3:GetBucketAcl"], list(bucket_arns)),
        statement(f"{sid}Objects", ["s3:PutObjectAcl"], _objects(bucket_arns, prefix)),
    ]


# --- KMS --------------------------------------------------------------------------------------


def kms_use(sid: str, key_arns: Sequence[pulumi.Input[str]]) -> Statement:
    """Encrypt and decrypt with the platform's keys (no administration)."""
    return statement(
        sid,
        [
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:Encrypt",
            "kms:GenerateDataKey",
            "kms:GenerateDataKeyWithoutPlaintext",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
        ],
        list(key_arns),
    )


def kms_grant_for_aws_services(sid: str, key_arns: Sequence[pulumi.Input[str]]) -> Statement:
    """Let services acting for the role (SageMaker, Feature Store) create grants on the key."""
    return statement(
        sid,
        ["kms:CreateGrant"],
        list(key_arns),
        conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
    )


# --- Glue -------------------------------------------------------------------------------------


def glue_arns(region: str, account: pulumi.Input[str], database: pulumi.Input[str]) -> list[pulumi.Output[str]]:
    """The catalog, a database and its tables: Glue authorises each level separately."""
    base = pulumi.Output.concat("arn:aws:glue:", region, ":", account)
    return [
        pulumi.Output.concat(base, ":catalog"),
        pulumi.Output.concat(base, ":database/", database),
        pulumi.Output.concat(base, ":table/", database, "/*"),
    ]


def glue_catalog_read(sid: str, resources: Sequence[pulumi.Input[str]]) -> Statement:
    """Read databases, tables and partitions."""
    return statement(
        sid,
        [
            "glue:GetDatabase",
            "glue:GetDatabases",
            "glue:GetPartition",
            "glue:GetPartitions",
            "glue:GetTable",
            "glue:GetTables",
            "glue:BatchGetPartition",
        ],
        list(resources),
    )


def glue_catalog_write(sid: str, resources: Sequence[pulumi.Input[str]]) -> Statement:
    """Create and update tables and partitions (what a crawler or an ingestion job needs)."""
    return statement(
        sid,
        [
            "glue:BatchCreatePartition",
            "glue:BatchUpdatePartition",
            "glue:CreatePartition",
            "glue:CreateTable",
            "glue:UpdatePartition",
            "glue:UpdateTable",
        ],
        list(resources),
    )


# --- CloudWatch Logs --------------------------------------------------------------------------


def logs_write(sid: str, log_group_arn_prefixes: Sequence[pulumi.Input[str]]) -> Statement:
    """Create streams and put events under the given log group ARN prefixes (each ending in ``*``)."""
    return statement(
        sid,
        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        list(log_group_arn_prefixes),
    )


# --- Roles ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceRole:
    """A service role and its inline policy (depend on ``policy`` before the service first uses the role)."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy

    @property
    def arn(self) -> pulumi.Output[str]:
        return self.role.arn


def service_role(
    resource_name: str,
    *,
    naming: Naming,
    thing: str,
    services: Sequence[str],
    statements: Sequence[Statement],
    tags: dict[str, str],
    parent: pulumi.Resource,
    source_account: pulumi.Input[str] | None = None,
    description: str | None = None,
) -> ServiceRole:
    """A role for AWS services with one inline least-privilege policy and no managed policies."""
    role = aws.iam.Role(
        resource_name,
        name=naming.name(thing, Kind.IAM_ROLE),
        assume_role_policy=assume_role_policy(*services, source_account=source_account),
        description=description or f"{naming.prefix} {thing}: least-privilege service role",
        max_session_duration=3600,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    policy = aws.iam.RolePolicy(
        f"{resource_name}-policy",
        role=role.id,
        name=naming.name(f"{thing}-inline", Kind.IAM_POLICY),
        policy=policy_document(*statements),
        opts=pulumi.ResourceOptions(parent=role),
    )
    return ServiceRole(role=role, policy=policy)
