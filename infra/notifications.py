"""Notifications: the SNS topics alarms publish to, one for humans and one that starts retraining.

- ``alerts``: every platform alarm (drift, model quality, latency, errors, business KPI) and the
  responders' messages (pipeline finished, deployment dispatched); the stack's ``alerts.emailAddresses``
  are subscribed (each confirms by email).
- ``retrain``: only the alarms that should start a retraining pipeline (a model's composite drift alarm
  and its model-quality alarm). The retraining responder subscribes to it; no human does.

Both topics are encrypted with the platform key (CloudWatch may use it for this account: see
``infra/security.py``'s key policy) and carry a topic policy that lets only CloudWatch alarms of this
account, and principals of this account, publish, over TLS.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import pulumi
import pulumi_aws as aws
from pydantic import Field, StringConstraints, field_validator

from infra.naming import Kind
from infra.types import Section

if TYPE_CHECKING:
    from infra.context import StackContext


# --- settings (stack key ``alerts``) ----------------------------------------------------------


class AlertSettings(Section):
    """Who hears about alarms, pipeline results and deployments (the encrypted SNS topic for humans)."""

    email_addresses: tuple[Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")], ...] = Field(
        default=(), description="Email subscriptions of the alerts topic (each must confirm by email)."
    )

    @field_validator("email_addresses")
    @classmethod
    def _each_address_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Each address is one subscription named after the lowercased address (subscription_suffix): two spellings
        # of one address would be two resources with one name (Pulumi refuses the duplicate URN).
        lowered = [a.lower() for a in value]
        twice = sorted({a for a in lowered if lowered.count(a) > 1})
        if twice:
            raise ValueError(f"lists {twice} more than once (addresses compare case-insensitively); give each once")
        return value


@dataclass(frozen=True, kw_only=True)
class NotificationsArgs:
    """Inputs of :class:`Notifications`: the stack context, the platform key and the account."""

    context: StackContext
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]


def topic_policy(topic_arn: pulumi.Input[str], region: str, account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """Who may publish to a platform topic: this account's principals and this account's CloudWatch alarms.

    - ``AccountPublish``: the account root, i.e. principals of this account whose IAM policy allows
      ``sns:Publish`` on the topic (the responders' roles); no other account.
    - ``CloudWatchAlarmsPublish``: the CloudWatch service, only for alarms of this account and region
      (``aws:SourceAccount`` and ``aws:SourceArn``: the confused-deputy guard).
    - ``DenyInsecureTransport``: nobody may publish without TLS.
    """
    alarms = pulumi.Output.concat("arn:aws:cloudwatch:", region, ":", account_id, ":alarm:*")
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountPublish",
                    "Effect": "Allow",
                    "Principal": {"AWS": pulumi.Output.concat("arn:aws:iam::", account_id, ":root")},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                },
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account_id},
                        "ArnLike": {"aws:SourceArn": alarms},
                    },
                },
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        }
    )


def subscription_suffix(address: str) -> str:
    """A stable logical-name suffix for an email subscription (reordering the list replaces nothing)."""
    return hashlib.sha256(address.lower().encode()).hexdigest()[:10]


class Notifications(pulumi.ComponentResource):
    """The stack's ``alerts`` and ``retrain`` SNS topics, their policies and the email subscriptions.

    Outputs: ``alerts_topic_arn``, ``retrain_topic_arn`` (and the topics as ``alerts_topic``,
    ``retrain_topic``). Raises ``infra.naming.NamingError`` at preview when a topic name breaks SNS's limits.
    """

    alerts_topic: aws.sns.Topic
    retrain_topic: aws.sns.Topic
    alerts_topic_arn: pulumi.Output[str]
    retrain_topic_arn: pulumi.Output[str]
    email_subscriptions: list[aws.sns.TopicSubscription]

    def __init__(self, name: str, args: NotificationsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:notifications:Notifications", name, None, opts)
        ctx = args.context
        self.alerts_topic = self._topic(f"{name}-alerts", "alerts", args)
        self.retrain_topic = self._topic(f"{name}-retrain", "retrain", args)
        self.alerts_topic_arn = self.alerts_topic.arn
        self.retrain_topic_arn = self.retrain_topic.arn
        self.email_subscriptions = [
            aws.sns.TopicSubscription(
                f"{name}-alerts-email-{subscription_suffix(address)}",
                topic=self.alerts_topic.arn,
                protocol="email",
                endpoint=address,
                opts=pulumi.ResourceOptions(parent=self.alerts_topic),
            )
            for address in ctx.config.alerts.email_addresses
        ]
        self.register_outputs({"alerts_topic_arn": self.alerts_topic_arn, "retrain_topic_arn": self.retrain_topic_arn})

    def _topic(self, resource_name: str, thing: str, args: NotificationsArgs) -> aws.sns.Topic:
        ctx = args.context
        topic = aws.sns.Topic(
            resource_name,
            name=ctx.naming.name(thing, Kind.SNS_TOPIC),
            display_name=f"{ctx.naming.prefix} {thing}",
            kms_master_key_id=args.kms_key_arn,
            tags=ctx.naming.tags(Topic=thing),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.sns.TopicPolicy(
            f"{resource_name}-policy",
            arn=topic.arn,
            policy=topic_policy(topic.arn, ctx.config.region, args.account_id),
            opts=pulumi.ResourceOptions(parent=topic),
        )
        return topic
