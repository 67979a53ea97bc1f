"""Security base: the platform's customer-managed KMS key with rotation and an explicit key policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws
from pydantic import Field

from infra.naming import Kind
from infra.types import IamArn, Section

if TYPE_CHECKING:
    from infra.context import StackContext


# --- settings (stack key ``kms``) -------------------------------------------------------------


class KmsSettings(Section):
    """The platform's customer-managed KMS key."""

    deletion_window_days: int = Field(
        default=30, ge=7, le=30, description="Waiting period before a deleted key is destroyed."
    )
    rotation_period_days: int = Field(default=365, ge=90, le=2560, description="Automatic key rotation period.")
    administrator_arns: tuple[IamArn, ...] = Field(
        default=(),
        description="IAM principals allowed to administer (not use) the key. Empty: the account root only.",
    )


# Administration without use: key administrators can manage the key but not decrypt data.
_KEY_ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]
_KEY_USE_ACTIONS = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
]


@dataclass(frozen=True, kw_only=True)
class SecurityBaseArgs:
    """Inputs of :class:`SecurityBase`."""

    context: StackContext
    registry_consumer_account_ids: tuple[str, ...] = ()
    """Accounts that deploy this stack's registered models (may decrypt the artifacts through S3)."""


def key_policy(
    region: str,
    account_id: pulumi.Input[str],
    administrator_arns: tuple[str, ...],
    consumer_account_ids: tuple[str, ...] = (),
) -> pulumi.Output[str]:
    """The platform key's policy.

    - The account root keeps full control. This is AWS's default key statement and the only way
      IAM policies (the roles this platform creates) can be granted use of the key; without it the
      key can become unmanageable. Use is then granted per role, by ARN, in IAM.
    - Named administrators may manage, but not use, the key.
    - CloudWatch Logs (the encrypted log groups), CloudWatch alarms (the encrypted topics), SNS (the
      encrypted dead-letter queues) and S3 log delivery (server access logs into the SSE-KMS log bucket)
      may use it, only on behalf of this account; EventBridge as AWS documents for encrypted queues.
    - ``consumer_account_ids`` (the model registry's consumers) may decrypt, only through S3.
    """
    root = pulumi.Output.concat("arn:aws:iam::", account_id, ":root")
    statements: list[dict[str, object]] = [
        {
            "Sid": "AccountRootFullControl",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",  # AWS default key statement: delegates key access to IAM (see docstring)
            "Resource": "*",  # in a key policy "*" means this key
        },
    ]
    if administrator_arns:
        statements.append(
            {
                "Sid": "KeyAdministrators",
                "Effect": "Allow",
                "Principal": {"AWS": list(administrator_arns)},
                "Action": _KEY_ADMIN_ACTIONS,
                "Resource": "*",
            }
        )
    statements.append(
        {
            "Sid": "CloudWatchLogs",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": _KEY_USE_ACTIONS,
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": pulumi.Output.concat(
                        "arn:aws:logs:", region, ":", account_id, ":log-group:*"
                    )
                }
            },
        }
    )
    statements.append(
        {
            "Sid": "AwsServicePublishers",
            "Effect": "Allow",
            # sns: writes undeliverable messages into the KMS-encrypted dead-letter queues.
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "logging.s3.amazonaws.com", "sns.amazonaws.com"]},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    )
    statements.append(
        {
            # EventBridge parks undeliverable events in the responders' KMS-encrypted dead-letter queues. This is
            # the statement AWS documents for a service writing to an encrypted SQS queue (SQS developer guide,
            # "Configure KMS permissions for AWS services"), without a condition: no AWS page documents that
            # aws:SourceAccount or kms:ViaService reach KMS on these deliveries, and a condition that does not
            # match drops the dead letters silently. The principal can only encrypt data keys for this key.
            "Sid": "EventBridgeDeadLetters",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
        }
    )
    if consumer_account_ids:
        statements.append(
            {
                # Accounts that deploy from the model registry (training.registryAccountIds) create SageMaker
                # models from its versions: they read the artifacts from S3 and decrypt them, through S3 only.
                "Sid": "RegistryConsumersDecryptViaS3",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{account}:root" for account in consumer_account_ids]},
                "Action": ["kms:Decrypt", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            }
        )
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


class SecurityBase(pulumi.ComponentResource):
    """The platform key (``key``, ``key_arn``) and its alias ``alias/<project>-<env>-platform``."""

    key: aws.kms.Key
    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]
    account_id: pulumi.Output[str]

    def __init__(self, name: str, args: SecurityBaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:security:SecurityBase", name, None, opts)
        ctx = args.context
        cfg = ctx.config
        self.account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{ctx.naming.prefix} platform key: lake, feature store, models, monitoring, logs, topics",
            enable_key_rotation=True,
            rotation_period_in_days=cfg.kms.rotation_period_days,
            deletion_window_in_days=cfg.kms.deletion_window_days,
            policy=key_policy(
                cfg.region, self.account_id, cfg.kms.administrator_arns, args.registry_consumer_account_ids
            ),
            tags=ctx.naming.tags(),
            opts=ctx.stateful(self),
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{ctx.naming.name('platform', Kind.KMS_ALIAS)}",
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_arn = self.key.arn
        self.key_id = self.key.key_id
        self.register_outputs({"key_arn": self.key_arn, "alias": self.alias.name})
