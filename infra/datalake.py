"""Data lake: one encrypted, versioned, private, TLS-only, logged bucket per zone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from infra.naming import Kind
from infra.types import ZONE_NAMES, Section, Zone

if TYPE_CHECKING:
    from infra.context import StackContext


# --- settings (stack key ``lake``) ------------------------------------------------------------


INGESTION_STAGING_PREFIX = "_staging/"
"""Where ``mlops.ingestion`` stages a curated batch before committing it (its ``STAGING_PREFIX``)."""
INGESTION_STAGING_EXPIRE_DAYS = 7
INGESTION_COMMITS_PREFIX = "_commits/"
"""Where ``mlops.ingestion`` writes one marker per committed batch (its ``COMMITS_PREFIX``): never a table."""
EVENTBRIDGE_ZONES: tuple[Zone, ...] = ("curated",)
"""Zones whose buckets may send their events to EventBridge (new curated data retrains models)."""


class ZoneSettings(Section):
    """Lifecycle of one lake zone. ``None`` switches a transition or expiry off."""

    infrequent_access_after_days: int | None = Field(
        default=None, ge=30, description="Move current objects to STANDARD_IA after this many days (AWS minimum: 30)."
    )
    glacier_after_days: int | None = Field(
        default=None, ge=1, description="Move current objects to GLACIER_IR after this many days."
    )
    expire_after_days: int | None = Field(
        default=None, ge=1, description="Delete current objects after this many days."
    )
    noncurrent_versions_expire_after_days: int = Field(
        default=90, ge=1, le=3650, description="Delete non-current object versions after this many days."
    )
    abort_incomplete_uploads_after_days: int = Field(
        default=7, ge=1, le=365, description="Abort multipart uploads left incomplete for this many days."
    )

    @model_validator(mode="after")
    def _ordered(self) -> ZoneSettings:
        ia, gl, ex = self.infrequent_access_after_days, self.glacier_after_days, self.expire_after_days
        if ia is not None and gl is not None and gl < ia + 30:
            raise ValueError(
                f"glacierAfterDays={gl} must be at least infrequentAccessAfterDays + 30 ({ia + 30}): "
                "S3 keeps objects 30 days in STANDARD_IA"
            )
        last = max((d for d in (ia, gl) if d is not None), default=None)
        if ex is not None and last is not None and ex <= last:
            raise ValueError(f"expireAfterDays={ex} must be greater than the last transition day ({last})")
        return self


def _default_zones() -> dict[Zone, ZoneSettings]:
    return {zone: ZoneSettings() for zone in ZONE_NAMES}


class LakeSettings(Section):
    """The S3 data lake."""

    force_destroy: bool = Field(
        default=False, description="Allow deleting non-empty buckets (disposable environments only)."
    )
    access_log_retention_days: int = Field(
        default=365, ge=1, le=3650, description="Expiry of server access logs in the log bucket."
    )
    zones: dict[Zone, ZoneSettings] = Field(
        default_factory=_default_zones,
        description="Lifecycle per zone; zones left out get the defaults.",
    )

    @field_validator("zones", mode="after")
    @classmethod
    def _all_zones(cls, zones: dict[Zone, ZoneSettings]) -> dict[Zone, ZoneSettings]:
        return {zone: zones.get(zone, ZoneSettings()) for zone in ZONE_NAMES}


@dataclass(frozen=True, kw_only=True)
class DataLakeArgs:
    """Inputs of :class:`DataLake`: the stack context and the platform key."""

    context: StackContext
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    artifact_readers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Key prefix of the artifacts bucket -> accounts that may read the objects under it: the model registry's
    consumers (``training.registryAccountIds``) read the model artifacts their model package versions point to."""


def tls_only_statement(bucket_arn: pulumi.Input[str]) -> dict[str, object]:
    """Deny every request that does not use TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",  # a Deny on every action is the point of this statement
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def lifecycle_rules(zone: str, settings: ZoneSettings) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """The zone's lifecycle as S3 rules: transitions, expiry, old versions, abandoned uploads."""
    transitions = []
    if settings.infrequent_access_after_days is not None:
        transitions.append(
            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                days=settings.infrequent_access_after_days, storage_class="STANDARD_IA"
            )
        )
    if settings.glacier_after_days is not None:
        transitions.append(
            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                days=settings.glacier_after_days, storage_class="GLACIER_IR"
            )
        )
    staging = (
        [
            # mlops.ingestion stages a batch here and deletes it once committed: what stays is an abandoned
            # attempt (its re-run stages anew), never data a table reads.
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=f"{zone}-abandoned-staging",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=INGESTION_STAGING_PREFIX),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=INGESTION_STAGING_EXPIRE_DAYS),
            )
        ]
        if zone == "curated"
        else []
    )
    return [
        *staging,
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id=f"{zone}-current-versions",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            transitions=transitions or None,
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=settings.expire_after_days)
            if settings.expire_after_days is not None
            else None,
        ),
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id=f"{zone}-housekeeping",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=settings.noncurrent_versions_expire_after_days
            ),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=settings.abort_incomplete_uploads_after_days
            ),
        ),
    ]


class DataLake(pulumi.ComponentResource):
    # Bucket settings are children of the component, not of their bucket: a protected bucket would
    # otherwise pass `protect` down and block replacing a lifecycle rule or a policy.
    """S3 zones ``raw``, ``curated``, ``features``, ``artifacts``, ``monitoring`` plus an access-log bucket.

    Every zone bucket: SSE-KMS with the platform key and bucket keys, versioning, config-driven
    lifecycle, all four public-access blocks, bucket-owner-enforced ownership, a TLS-only policy that
    also refuses uploads asking for another encryption, and server access logs to the log bucket.
    The curated bucket also sends its events to EventBridge when a model retrains on new data
    (``models[].training.retrainOnNewData.enabled``): :meth:`_eventbridge_notification`.
    Outputs: ``buckets``, ``bucket_names`` and ``bucket_arns`` keyed by zone, ``log_bucket``,
    ``notifications`` (zone → its bucket's one notification configuration).
    """

    buckets: dict[str, aws.s3.Bucket]
    bucket_names: dict[str, pulumi.Output[str]]
    bucket_arns: dict[str, pulumi.Output[str]]
    log_bucket: aws.s3.Bucket
    notifications: dict[str, aws.s3.BucketNotification]

    def __init__(self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:lake:DataLake", name, None, opts)
        ctx = args.context
        lake = ctx.config.lake

        # Log delivery to an SSE-KMS bucket works with a customer-managed key whose policy lets
        # logging.s3.amazonaws.com generate data keys (see security.key_policy).
        self.log_bucket = self._bucket(f"{name}-access-logs", "access-logs", ctx)
        log_guard = self._guard(f"{name}-access-logs", self.log_bucket, ctx, kms_key_arn=None)
        self._encrypt(f"{name}-access-logs", self.log_bucket, args.kms_key_arn)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-access-logs-lifecycle",
            bucket=self.log_bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=lake.access_log_retention_days
                    ),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=1
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.buckets = {}
        for zone in ZONE_NAMES:
            bucket = self._bucket(f"{name}-{zone}", zone, ctx)
            readers = args.artifact_readers if zone == "artifacts" else {}
            guard = self._guard(f"{name}-{zone}", bucket, ctx, kms_key_arn=args.kms_key_arn, readers=readers)
            self._encrypt(f"{name}-{zone}", bucket, args.kms_key_arn)
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-{zone}-lifecycle",
                bucket=bucket.id,
                rules=lifecycle_rules(zone, lake.zones[zone]),
                opts=pulumi.ResourceOptions(parent=self),
            )
            aws.s3.BucketLogging(
                f"{name}-{zone}-logging",
                bucket=bucket.id,
                target_bucket=self.log_bucket.id,
                target_prefix=f"{zone}/",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[guard, log_guard]),
            )
            self.buckets[zone] = bucket

        self.notifications = {}
        if any(m.training.retrain_on_new_data.enabled for m in ctx.config.models):
            for zone in EVENTBRIDGE_ZONES:
                self._eventbridge_notification(f"{name}-{zone}", zone)
        self._log_delivery_policy(name, args, log_guard)
        self.bucket_names = {zone: b.bucket for zone, b in self.buckets.items()}
        self.bucket_arns = {zone: b.arn for zone, b in self.buckets.items()}
        self.register_outputs(
            {
                "bucket_names": self.bucket_names,
                "bucket_arns": self.bucket_arns,
                "log_bucket": self.log_bucket.bucket,
            }
        )

    def _eventbridge_notification(self, resource_name: str, zone: str) -> aws.s3.BucketNotification:
        """Send every event of the zone's bucket to EventBridge's default bus (rules there pick what they need).

        S3 keeps ONE notification configuration per bucket (PutBucketNotificationConfiguration replaces it
        whole), so a second BucketNotification for the same bucket would overwrite this one at every `up` (the
        terraform provider documents the perpetual diff): this is the only one, and refused twice. A consumer
        that needs the bucket's events adds an EventBridge rule rather than another notification.
        """
        if zone in self.notifications:
            raise ValueError(f"the {zone} bucket already has its notification configuration (S3 keeps one per bucket)")
        self.notifications[zone] = aws.s3.BucketNotification(
            f"{resource_name}-notification",
            bucket=self.buckets[zone].id,
            eventbridge=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return self.notifications[zone]

    def _bucket(self, resource_name: str, thing: str, ctx: StackContext) -> aws.s3.Bucket:
        return aws.s3.Bucket(
            resource_name,
            bucket=ctx.naming.name(thing, Kind.S3_BUCKET),
            force_destroy=ctx.config.lake.force_destroy,
            tags=ctx.naming.tags(Zone=thing),
            opts=ctx.stateful(self),
        )

    def _encrypt(self, resource_name: str, bucket: aws.s3.Bucket, kms_key_arn: pulumi.Input[str]) -> None:
        """Default encryption: SSE-KMS with the platform key, with S3 bucket keys (fewer KMS calls)."""
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{resource_name}-sse",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _guard(
        self,
        resource_name: str,
        bucket: aws.s3.Bucket,
        ctx: StackContext,
        kms_key_arn: pulumi.Input[str] | None,
        readers: Mapping[str, tuple[str, ...]] | None = None,
    ) -> aws.s3.BucketPublicAccessBlock:
        """Public-access blocks, ownership controls, versioning and (for zones) the TLS/KMS policy."""
        block = aws.s3.BucketPublicAccessBlock(
            f"{resource_name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.s3.BucketOwnershipControls(
            f"{resource_name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.s3.BucketVersioning(
            f"{resource_name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        if kms_key_arn is not None:
            statements: list[dict[str, object]] = [
                tls_only_statement(bucket.arn),
                {
                    # Uploads may omit the header (default encryption applies) but never ask for
                    # another algorithm or another key.
                    "Sid": "DenyOtherEncryption",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": pulumi.Output.concat(bucket.arn, "/*"),
                    "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
                },
                {
                    "Sid": "DenyOtherKmsKeys",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": pulumi.Output.concat(bucket.arn, "/*"),
                    "Condition": {
                        "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": kms_key_arn}
                    },
                },
            ]
            for index, (prefix, accounts) in enumerate(sorted((readers or {}).items())):
                statements.append(
                    {
                        "Sid": f"CrossAccountArtifactRead{index}",
                        "Effect": "Allow",
                        "Principal": {"AWS": [f"arn:aws:iam::{account}:root" for account in accounts]},
                        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                        "Resource": pulumi.Output.concat(bucket.arn, "/", prefix, "*"),
                    }
                )
            aws.s3.BucketPolicy(
                f"{resource_name}-policy",
                bucket=bucket.id,
                policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
                # AWS rejects a bucket policy while the public-access block is being applied.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[block]),
            )
        return block

    def _log_delivery_policy(self, name: str, args: DataLakeArgs, log_guard: aws.s3.BucketPublicAccessBlock) -> None:
        """TLS-only, and only S3's log delivery service writes, only for this account's zone buckets."""
        log = self.log_bucket
        statements: list[dict[str, object]] = [
            tls_only_statement(log.arn),
            {
                "Sid": "S3ServerAccessLogDelivery",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": pulumi.Output.concat(log.arn, "/*"),
                "Condition": {
                    "ArnLike": {"aws:SourceArn": [b.arn for b in self.buckets.values()]},
                    "StringEquals": {"aws:SourceAccount": args.account_id},
                },
            },
        ]
        aws.s3.BucketPolicy(
            f"{name}-access-logs-policy",
            bucket=log.id,
            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_guard]),
        )
