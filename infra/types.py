"""Shared pieces of every settings section: the section base class and the constrained types several layers use.

Each layer declares its own settings section beside its component (``infra/<layer>/settings.py``, or at the
top of a small layer's module); :mod:`infra.config` composes them. What more than one section needs lives here.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel


class Section(BaseModel):
    """Base of every config section: frozen, camelCase keys, unknown keys refused, no type coercion."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        strict=True,
    )


Zone = Literal["raw", "curated", "features", "artifacts", "monitoring"]
ZONE_NAMES: tuple[Zone, ...] = ("raw", "curated", "features", "artifacts", "monitoring")
"""Data lake zones; every zone is one bucket."""

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


def _log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"{value} is not a CloudWatch Logs retention period; allowed: {list(LOG_RETENTION_DAYS)}")
    return value


LogRetentionDays = Annotated[int, AfterValidator(_log_retention)]
"""Days CloudWatch Logs keeps a log group's events: one of :data:`LOG_RETENTION_DAYS`."""

DOCUMENTATION_ACCOUNT_IDS = frozenset({"111122223333", "444455556666", "777788889999", "123456789012"})
"""The example account IDs AWS's documentation uses: no real account of yours, so KMS and SageMaker refuse a
policy that names one as a principal (``MalformedPolicyDocument``)."""


def _real_account(account: str) -> str:
    if account in DOCUMENTATION_ACCOUNT_IDS:
        raise ValueError(
            f"{account} is an example account ID from AWS's documentation, not a real account (KMS and SageMaker "
            "refuse policies naming it); use your own 12-digit account ID"
        )
    return account


def _real_account_in_arn(arn: str) -> str:
    _real_account(arn.split(":")[4])
    return arn


AccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$"), AfterValidator(_real_account)]
"""A real AWS account ID: 12 digits, and not one of :data:`DOCUMENTATION_ACCOUNT_IDS`."""
IamArn = Annotated[
    str,
    StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(root|role/.+|user/.+)$"),
    AfterValidator(_real_account_in_arn),
]
"""An IAM principal ARN (root, role or user) of a real account."""
InstanceType = Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")]
KeyPrefix = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-/=.]+/$")]
"""An S3 key prefix ending with '/'."""

_CRON = re.compile(r"^cron\((\S+\s+){5}\S+\)$")


def _cron_expression(value: str) -> str:
    if not _CRON.match(value):
        raise ValueError(f"'{value}' is not a cron expression of the form cron(min hour day month weekday year)")
    return value


CronExpression = Annotated[str, AfterValidator(_cron_expression)]
"""An EventBridge/SageMaker schedule: ``cron(min hour day month weekday year)``."""

__all__ = [
    "DOCUMENTATION_ACCOUNT_IDS",
    "LOG_RETENTION_DAYS",
    "ZONE_NAMES",
    "AccountId",
    "CronExpression",
    "IamArn",
    "InstanceType",
    "KeyPrefix",
    "LogRetentionDays",
    "Section",
    "Zone",
    "to_camel",
]
