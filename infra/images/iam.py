"""Who may pull the platform's images: the roles that run them in this account, and registry consumers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

from infra import iam

PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
"""What pulling an image needs on the repository (plus ``ecr:GetAuthorizationToken``, which has no resource)."""


def pull_statements(repository_arn: pulumi.Input[str]) -> list[iam.Statement]:
    """A role's statements to pull from one repository."""
    return [
        iam.statement("PullInferenceImage", list(PULL_ACTIONS), [repository_arn]),
        # The registry login token is account-wide: IAM offers no resource-level permission for it, so "*"
        # (it grants nothing by itself; the repository statement above decides what can be pulled).
        iam.statement("RegistryLogin", ["ecr:GetAuthorizationToken"], ["*"]),
    ]


def consumer_pull_policy(account_ids: Sequence[str]) -> pulumi.Output[str]:
    """Repository policy: the accounts that deploy from the model registry (``training.registryAccountIds``)
    may pull the images their model versions name, and do nothing else."""
    principal: dict[str, Any] = {"AWS": [f"arn:aws:iam::{account}:root" for account in sorted(set(account_ids))]}
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "RegistryConsumersPull",
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": list(PULL_ACTIONS),
                }
            ],
        }
    )
