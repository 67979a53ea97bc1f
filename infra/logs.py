"""CloudWatch log groups the platform creates itself, rather than leaving a service to create them on first write.

A group created by the service would have no retention (kept forever) and no KMS key; every group the layers
declare (the responders' and the stream consumers' functions, Firehose delivery) goes through
:func:`encrypted_log_group` so each gets the stack's retention and the platform key the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws


def lambda_log_group_name(function_name: str) -> str:
    """The group Lambda writes a function's logs to (``/aws/lambda/<function>``), known before the function exists so
    the execution role can be scoped to it."""
    return f"/aws/lambda/{function_name}"


def encrypted_log_group(
    resource_name: str,
    *,
    name: str,
    retention_days: int,
    key_arn: pulumi.Input[str],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.cloudwatch.LogGroup:
    """A log group encrypted with the platform key, expiring after ``retention_days``."""
    return aws.cloudwatch.LogGroup(
        resource_name,
        name=name,
        retention_in_days=retention_days,
        kms_key_id=key_arn,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
