"""One place for physical names and tags.

Every physical name is ``<project>-<env>-<thing>``; :meth:`Naming.name` enforces the length and
character limits of the AWS resource type at preview time, so an over-long name fails the plan
instead of the deployment. :meth:`Naming.tags` is the one common tag set.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated

from pydantic import AfterValidator

# --- tags ----------------------------------------------------------------------------------------------------
# AWS's tag rules, as most services' guides state them ("Tag restrictions"): at most 50 user tags per resource;
# keys of 1-128 and values of 0-256 Unicode characters; letters, numbers, spaces and + - = . _ : / @ (the IAM,
# SageMaker, Lambda and CloudWatch Logs API models carry it as [\p{L}\p{Z}\p{N}_.:/=+\-@]); the aws: prefix, in any
# case, reserved for keys and values. The platform tags every resource, so the strictest service's rule applies.

AWS_MAX_TAGS = 50
"""User tags one AWS resource may carry."""
REQUIRED_TAG_KEYS: tuple[str, ...] = ("Project", "Environment", "Owner", "CostCenter", "ManagedBy")
"""Tags on every taggable resource (the policy pack enforces the same set)."""
RESOURCE_TAG_KEYS: tuple[str, ...] = (
    "Container", "FeatureSpec", "Model", "Responder", "Table", "Topic", "Variant", "Zone",
)  # fmt: skip
"""Tags the layers add to some of their resources (``Naming.tags(Model=...)``)."""
MAX_RESOURCE_TAGS = 2
"""Most tags a layer adds to one resource beside the common ones (Model and Variant on a variant's alarms)."""
MAX_STACK_TAGS = AWS_MAX_TAGS - len(REQUIRED_TAG_KEYS) - MAX_RESOURCE_TAGS
"""Most tags a stack may add: what AWS's limit leaves after the platform's own."""
_TAG_SYMBOLS = frozenset(" +-=._:/@")
_TAG_CHARACTERS = "letters, digits, spaces and + - = . _ : / @"


def _tag_text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a tag key or value on every AWS service (None when it can)."""
    for char in text:
        if not (unicodedata.category(char)[0] in "LNZ" or char in _TAG_SYMBOLS):
            return f"{char!r} is not allowed; allowed: {_TAG_CHARACTERS}"
    if text.lower().startswith("aws:"):
        return "uses the reserved 'aws:' prefix (AWS keeps it, in any case, for its own tags)"
    return None


def _tag_value(value: str) -> str:
    if len(value) > 256:
        raise ValueError(f"a tag value takes at most 256 characters (is {len(value)})")
    problem = _tag_text_problem(value)
    if problem:
        raise ValueError(f"becomes a tag value, and {problem}")
    return value


TagValue = Annotated[str, AfterValidator(_tag_value)]
"""A string that becomes a tag value on every resource (``owner``, ``costCenter``)."""


def _extra_tags(tags: dict[str, str]) -> dict[str, str]:
    """A stack's own tags: AWS's limits, and none of the keys the platform sets itself."""
    if len(tags) > MAX_STACK_TAGS:
        raise ValueError(
            f"{len(tags)} tags; allowed: at most {MAX_STACK_TAGS} (AWS allows {AWS_MAX_TAGS} per resource, and the "
            f"platform sets {len(REQUIRED_TAG_KEYS)} common tags plus up to {MAX_RESOURCE_TAGS} of its own)"
        )
    platform_keys = sorted({*REQUIRED_TAG_KEYS, *RESOURCE_TAG_KEYS})
    for key, value in tags.items():
        if not 1 <= len(key) <= 128:
            raise ValueError(f"tag key {key!r} has {len(key)} characters; allowed: 1-128 characters")
        if len(value) > 256:
            raise ValueError(f"tag {key!r} value has {len(value)} characters; allowed: at most 256 characters")
        if key in platform_keys:
            raise ValueError(f"tag key {key!r} is set by the platform; allowed: any key except {platform_keys}")
        for what, text in ((f"tag key {key!r}", key), (f"tag {key!r} value {value!r}", value)):
            problem = _tag_text_problem(text)
            if problem:
                raise ValueError(f"{what}: {problem}")
    return tags


ExtraTags = Annotated[dict[str, str], AfterValidator(_extra_tags)]
"""The stack's ``tags``: added to every taggable resource beside the platform's own."""


class NamingError(ValueError):
    """A derived physical name breaks the AWS limits of its resource type."""


# S3's "General purpose bucket naming rules": prefixes and suffixes reserved for S3's own names (sthree-configurator
# is covered by sthree-).
S3_RESERVED_PREFIXES: tuple[str, ...] = ("xn--", "sthree-", "amzn-s3-demo-")
S3_RESERVED_SUFFIXES: tuple[str, ...] = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


@dataclass(frozen=True)
class _Rule:
    max_length: int
    pattern: str
    allowed: str
    min_length: int = 1
    underscores: bool = False  # Glue/Athena names: '-' becomes '_'


class Kind(Enum):
    """AWS resource kinds with their name limits (from each service's API reference)."""

    S3_BUCKET = _Rule(63, r"^[a-z0-9][a-z0-9-]*[a-z0-9]$", "lowercase letters, digits and '-'", min_length=3)
    IAM_ROLE = _Rule(64, r"^[\w+=,.@-]+$", "letters, digits and +=,.@_-")
    IAM_POLICY = _Rule(128, r"^[\w+=,.@-]+$", "letters, digits and +=,.@_-")
    KMS_ALIAS = _Rule(250, r"^[a-zA-Z0-9/_-]+$", "letters, digits and /_-")  # 256 with 'alias/'
    GLUE = _Rule(255, r"^[a-z0-9_]+$", "lowercase letters, digits and '_'", underscores=True)
    GLUE_CRAWLER = _Rule(255, r"^[a-zA-Z0-9_-]+$", "letters, digits, '_' and '-'")
    SAGEMAKER = _Rule(63, r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", "letters, digits and '-'")
    FEATURE_GROUP = _Rule(64, r"^[a-zA-Z0-9]([_-]*[a-zA-Z0-9])*$", "letters, digits, '_' and '-'")
    LAMBDA = _Rule(64, r"^[a-zA-Z0-9_-]+$", "letters, digits, '_' and '-'")
    SQS_QUEUE = _Rule(80, r"^[a-zA-Z0-9_-]+$", "letters, digits, '_' and '-'")
    SNS_TOPIC = _Rule(256, r"^[a-zA-Z0-9_-]+$", "letters, digits, '_' and '-'")
    EVENT_RULE = _Rule(64, r"^[.\-_A-Za-z0-9]+$", "letters, digits and ._-")
    ALARM = _Rule(255, r"^[ -~]+$", "printable ASCII")
    DASHBOARD = _Rule(255, r"^[a-zA-Z0-9_-]+$", "letters, digits, '_' and '-'")
    LOG_GROUP = _Rule(512, r"^[\w#/.-]+$", "letters, digits and #/._-")
    # Kinesis CreateStream StreamName and Firehose CreateDeliveryStream DeliveryStreamName: [a-zA-Z0-9_.-]+.
    KINESIS_STREAM = _Rule(128, r"^[a-zA-Z0-9_.-]+$", "letters, digits and _.-")
    FIREHOSE = _Rule(64, r"^[a-zA-Z0-9_.-]+$", "letters, digits and _.-")
    SECRET = _Rule(512, r"^[\w/+=.@-]+$", "letters, digits and /_+=.@-")
    ECR_REPOSITORY = _Rule(
        256,
        r"^[a-z0-9]+([._-][a-z0-9]+)*$",
        "lowercase letters and digits, single '.', '_' or '-' between",
        min_length=2,
    )
    GENERIC = _Rule(255, r"^[ -~]+$", "printable ASCII")


@dataclass(frozen=True)
class Naming:
    """Derives names and tags for one ``<project>-<env>`` stack."""

    project: str
    environment: str
    extra_tags: dict[str, str] = field(default_factory=dict)
    owner: str = "unknown"
    cost_center: str = "unknown"

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.environment}"

    def name(self, thing: str, kind: Kind = Kind.GENERIC) -> str:
        """``<project>-<env>-<thing>``, checked against ``kind``'s limits (raises :class:`NamingError`)."""
        rule = kind.value
        candidate = f"{self.prefix}-{thing}"
        if rule.underscores:
            candidate = candidate.replace("-", "_").lower()
        if not rule.min_length <= len(candidate) <= rule.max_length:
            raise NamingError(
                f"{kind.name} name '{candidate}' is {len(candidate)} characters; AWS allows "
                f"{rule.min_length}-{rule.max_length}. Shorten the project ('{self.project}'), "
                f"environment ('{self.environment}') or '{thing}'."
            )
        if not re.match(rule.pattern, candidate):
            raise NamingError(f"{kind.name} name '{candidate}' may only contain {rule.allowed}")
        if kind is Kind.S3_BUCKET and (
            candidate.startswith(S3_RESERVED_PREFIXES) or candidate.endswith(S3_RESERVED_SUFFIXES)
        ):
            raise NamingError(
                f"S3_BUCKET name '{candidate}' uses a form S3 reserves: no prefix {', '.join(S3_RESERVED_PREFIXES)} "
                f"and no suffix {', '.join(S3_RESERVED_SUFFIXES)}"
            )
        return candidate

    def tags(self, **extra: str) -> dict[str, str]:
        """The common tag set (plus ``extra`` tags for one resource).

        Raises :class:`NamingError` when a resource's own tag would overwrite one of the stack's, or when the set
        exceeds AWS's limit per resource (the config keeps the stack's tags within :data:`MAX_STACK_TAGS`).
        """
        overwritten = sorted(set(extra) & set(self.extra_tags))
        if overwritten:
            raise NamingError(f"resource tag(s) {overwritten} would overwrite the stack's tags of the same key")
        tags = {
            "Project": self.project,
            "Environment": self.environment,
            "Owner": self.owner,
            "CostCenter": self.cost_center,
            "ManagedBy": "pulumi",
            **self.extra_tags,
            **extra,
        }
        if len(tags) > AWS_MAX_TAGS:
            raise NamingError(f"{len(tags)} tags on one resource; AWS allows at most {AWS_MAX_TAGS}")
        return tags

    def model_names(self, model: str, spec_version: int) -> ModelNames:
        """The physical names of ``model``'s resources (its feature spec at ``spec_version``)."""
        return ModelNames(naming=self, model=model, spec_version=spec_version)


@dataclass(frozen=True)
class ModelNames:
    """Every physical name of one model's resources, derived in this one place and passed to each layer.

    The training pipeline, the registry's model package group and the endpoint share one SageMaker name
    (``<project>-<env>-<model>``): the runbook, the responders and humans find each from the others. Each
    name is checked against its kind's AWS limits when a layer first asks for it (a layer that does not
    exist in a stack never fails on a name it would not use).
    """

    naming: Naming
    model: str
    spec_version: int

    @property
    def sagemaker(self) -> str:
        return self.naming.name(self.model, Kind.SAGEMAKER)

    @property
    def pipeline(self) -> str:
        """The training pipeline (and its SageMaker experiment, lowercased)."""
        return self.sagemaker

    @property
    def package_group(self) -> str:
        """The model registry's model package group."""
        return self.sagemaker

    @property
    def endpoint(self) -> str:
        """The real-time endpoint (stable across updates)."""
        return self.sagemaker

    @property
    def feature_group(self) -> str:
        """The feature group; the spec version is part of it (a new spec version is a new group)."""
        return self.naming.name(f"{self.model}-v{self.spec_version}", Kind.FEATURE_GROUP)

    @property
    def offline_table(self) -> str:
        """The feature group's offline-store table in the catalog's features database."""
        return self.naming.name(f"{self.model}-v{self.spec_version}", Kind.GLUE)

    @property
    def data_quality_job(self) -> str:
        """The data-quality job definition and its schedule."""
        return self.naming.name(f"{self.model}-dq", Kind.SAGEMAKER)

    @property
    def model_quality_job(self) -> str:
        """The model-quality job definition and its schedule."""
        return self.naming.name(f"{self.model}-mq", Kind.SAGEMAKER)

    @property
    def dashboard(self) -> str:
        return self.naming.name(self.model, Kind.DASHBOARD)

    @property
    def rollback_alarms(self) -> tuple[str, str]:
        """The endpoint's rollback alarms (5xx rate, p99 latency): named after the model only, see infra.alarms."""
        return (
            self.naming.name(f"{self.model}-rollback-5xx-rate", Kind.ALARM),
            self.naming.name(f"{self.model}-rollback-p99-latency", Kind.ALARM),
        )

    def drift_alarm(self, feature: str) -> str:
        return self.naming.name(f"{self.model}-drift-{feature}", Kind.ALARM)

    @property
    def model_drift_alarm(self) -> str:
        """The composite alarm over every feature's drift alarm."""
        return self.naming.name(f"{self.model}-model-drift", Kind.ALARM)

    def quality_alarm(self, metric: str) -> str:
        return self.naming.name(f"{self.model}-quality-{metric}", Kind.ALARM)

    def latency_alarm(self, variant: str) -> str:
        """The sustained p99-latency alarm of one production variant."""
        return self.naming.name(f"{self.model}-{variant}-latency-sustained", Kind.ALARM)

    def errors_alarm(self, variant: str) -> str:
        """The sustained 5xx-rate alarm of one production variant."""
        return self.naming.name(f"{self.model}-{variant}-errors-sustained", Kind.ALARM)

    def kpi_alarm(self, metric: str) -> str:
        return self.naming.name(f"{self.model}-kpi-{metric}", Kind.ALARM)
