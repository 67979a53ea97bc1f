"""The foundation handle: the shared facts every per-model layer builds on, created once per stack.

Security (the platform key, the account), the lake (a bucket per zone), the catalog (a Glue database per
zone) and notifications (the alerts and retrain topics) are built first; :func:`infra.platform.build_platform`
gathers their outputs into one :class:`Foundation` and hands it to every per-model layer, so no layer takes
these one argument at a time or re-derives them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi


@dataclass(frozen=True)
class Bucket:
    """One lake bucket: its name (for URIs) and its ARN (for IAM)."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]


@dataclass(frozen=True, kw_only=True)
class Foundation:
    """The stack's shared resources, as outputs."""

    region: str
    account_id: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    """The platform's customer-managed KMS key."""
    buckets: Mapping[str, Bucket]
    """Lake bucket per zone (``raw``, ``curated``, ``features``, ``artifacts``, ``monitoring``)."""
    databases: Mapping[str, pulumi.Output[str]]
    """Glue database name per lake zone."""
    access_log_bucket: pulumi.Output[str]
    """Where the zone buckets' server access logs go."""
    alerts_topic_arn: pulumi.Output[str]
    """Humans: every alarm and responder message."""
    retrain_topic_arn: pulumi.Output[str]
    """The alarms that start retraining (the retrain responder subscribes)."""

    def arn(self, service: str, resource: str) -> pulumi.Output[str]:
        """``arn:aws:<service>:<region>:<account>:<resource>`` (a regional resource of this account)."""
        return pulumi.Output.concat("arn:aws:", service, ":", self.region, ":", self.account_id, ":", resource)
