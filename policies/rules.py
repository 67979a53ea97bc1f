"""The platform's guardrails as CrossGuard policies: plain, importable objects.

The pack's ``__main__.py`` hands :data:`POLICIES` to ``PolicyPack``; the tests and the offline plan
(``infra/policy_check.py``) apply the same objects to the mocked stacks. This module is
self-contained (only ``pulumi_policy`` and the standard library): the pack runs in its own
virtualenv, where the platform's ``infra`` package is not importable.

What the engine hands a policy:

- a resource policy sees the resource's *inputs* (``args.props``), camelCase keys;
- a stack policy sees every resource's *outputs* (``PolicyResource.props``) plus its parent and
  property dependencies, which is how a bucket is tied to its encryption, public-access-block and
  policy resources (by ``propertyDependencies["bucket"]`` when the engine provides them, else by
  matching the ``bucket`` property to the bucket's ``id``/``bucket``);
- props are read-only proxies (``Mapping``/``Sequence``, not ``dict``/``list``) that raise
  ``UnknownValueError`` when a value is not known yet (``pulumi preview`` of new resources).
  Stack policies check every resource they can, report those violations, then re-raise the first
  unknown so the engine says which check could not run during preview.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

PACK_NAME = "mlops-guardrails"
PACK_ENFORCEMENT = EnforcementLevel.MANDATORY
"""Every policy below inherits this level (a stack's policy config may still override it)."""

REQUIRED_TAGS: tuple[str, ...] = ("Project", "Environment", "Owner", "CostCenter", "ManagedBy")
"""Tags every taggable resource carries (``infra.naming.REQUIRED_TAG_KEYS``; a test keeps them equal)."""

KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})

BUCKET = "aws:s3/bucket:Bucket"
BUCKET_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KMS_KEY = "aws:kms/key:Key"
IAM_ROLE = "aws:iam/role:Role"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"

PUBLIC_ACCESS_FLAGS: tuple[str, ...] = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)

TAGGABLE_TYPES: frozenset[str] = frozenset(
    {
        # Every type in this set has a `tags` input in pulumi-aws 7.x (tests/unit/test_policies.py
        # introspects the provider classes, and fails on any taggable type the program creates that
        # is missing here). Not taggable, so absent on purpose: kms Alias, iam RolePolicy and
        # RolePolicyAttachment, s3 bucket sub-resources, glue CatalogTable and SecurityConfiguration,
        # cloudwatch EventTarget and Dashboard, sns TopicSubscription/TopicPolicy, sqs QueuePolicy,
        # lambda Permission, appautoscaling Policy.
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketObjectv2:BucketObjectv2",
        "aws:kms/key:Key",
        "aws:iam/role:Role",
        "aws:iam/policy:Policy",
        "aws:iam/instanceProfile:InstanceProfile",
        "aws:glue/catalogDatabase:CatalogDatabase",
        "aws:glue/crawler:Crawler",
        "aws:glue/dataQualityRuleset:DataQualityRuleset",
        "aws:glue/job:Job",
        "aws:glue/trigger:Trigger",
        "aws:glue/registry:Registry",
        "aws:glue/schema:Schema",
        "aws:sagemaker/featureGroup:FeatureGroup",
        "aws:sagemaker/pipeline:Pipeline",
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
        "aws:sagemaker/model:Model",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "aws:sagemaker/endpoint:Endpoint",
        "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition",
        "aws:sagemaker/monitoringSchedule:MonitoringSchedule",
        "aws:sagemaker/domain:Domain",
        "aws:sagemaker/project:Project",
        "aws:sagemaker/image:Image",
        "aws:sagemaker/codeRepository:CodeRepository",
        "aws:lambda/function:Function",
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "aws:sqs/queue:Queue",
        "aws:sns/topic:Topic",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:cloudwatch/compositeAlarm:CompositeAlarm",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/eventBus:EventBus",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:appautoscaling/target:Target",
        "aws:secretsmanager/secret:Secret",
        "aws:dynamodb/table:Table",
        "aws:scheduler/scheduleGroup:ScheduleGroup",
        "aws:ecr/repository:Repository",
        "aws:athena/workgroup:Workgroup",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
    }
)

DATA_SERVICES: frozenset[str] = frozenset(
    {
        "s3",
        "kms",
        "glue",
        "sagemaker",
        "athena",
        "dynamodb",
        "lakeformation",
        "secretsmanager",
        "sqs",
        "sns",
        "logs",
    }
)
"""Services holding or guarding data: no wildcard anywhere in an allowed action (``s3:Get*`` too)."""


# ---------------------------------------------------------------------------------------------
# Reading props (read-only proxies that raise UnknownValueError on values unknown at preview)


def _get(props: Any, key: str) -> Any:
    """``props[key]`` or ``None``; raises ``UnknownValueError`` if the value is unknown."""
    if not isinstance(props, Mapping):
        return None
    return props.get(key)


def _has(props: Any, key: str) -> bool:
    """Whether ``key`` is present, without reading its (possibly unknown) value."""
    return isinstance(props, Mapping) and any(k == key for k in props)


def _items(value: Any) -> list[Any]:
    """A JSON/IAM "one or many" value as a list (``"a"`` -> ``["a"]``)."""
    if value is None:
        return []
    if isinstance(value, str | Mapping):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def _tags(props: Any) -> Mapping[str, Any] | None:
    """The ``tags`` input as a map; also accepts the ``[{key, value}]`` list form of aws-native."""
    tags = _get(props, "tags")
    if isinstance(tags, Mapping):
        return tags
    if isinstance(tags, Sequence) and not isinstance(tags, str):
        pairs: dict[str, Any] = {}
        for entry in tags:
            key = _get(entry, "key") or _get(entry, "Key")
            if isinstance(key, str):
                pairs[key] = _get(entry, "value") if _has(entry, "value") else _get(entry, "Value")
        return pairs
    return None


def _document(raw: Any) -> Mapping[str, Any] | None:
    """A policy document from a JSON string or a map; ``None`` when it is not one."""
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _items(document.get("Statement")) if isinstance(s, Mapping)]


class _Unknowns:
    """Remembers the first value unknown during preview, so the other resources are still checked."""

    def __init__(self) -> None:
        self.first: UnknownValueError | None = None

    @contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except UnknownValueError as unknown:
            self.first = self.first or unknown

    def raise_first(self) -> None:
        """Let the engine report that a check could not run during preview (an advisory diagnostic)."""
        if self.first is not None:
            raise self.first


# ---------------------------------------------------------------------------------------------
# Tying bucket sub-resources to their bucket (stack policies)


class _Buckets:
    """The stack's buckets, found by URN or by their physical name/id, and what is attached to them."""

    def __init__(self, resources: Sequence[PolicyResource], unknowns: _Unknowns) -> None:
        self.resources = resources
        self.unknowns = unknowns
        self.all = [r for r in resources if r.resource_type == BUCKET]
        self.by_urn = {b.urn: b for b in self.all}
        self.by_value: dict[str, PolicyResource] = {}
        for bucket in self.all:
            for key in ("id", "bucket"):
                try:
                    value = _get(bucket.props, key)
                except UnknownValueError:
                    continue  # not known yet (a new bucket's id at preview): found by URN instead
                if isinstance(value, str) and value:
                    self.by_value[value] = bucket
        self.undecided: set[str] = set()
        """Types of which some resource could not be tied to a bucket (its ``bucket`` unknown at preview)."""

    def attachments(self, resource_type: str) -> dict[str, list[PolicyResource]]:
        """Resources of ``resource_type`` keyed by the URN of the bucket their ``bucket`` names."""
        found: dict[str, list[PolicyResource]] = {}
        for resource in self.resources:
            if resource.resource_type != resource_type:
                continue
            bucket = self._target(resource)
            if bucket is not None:
                found.setdefault(bucket.urn, []).append(resource)
        return found

    def missing(self, resource_type: str) -> bool:
        """Whether "a bucket has none of ``resource_type``" can be concluded (not if some were undecided)."""
        return resource_type not in self.undecided

    def _target(self, resource: PolicyResource) -> PolicyResource | None:
        for dependency in resource.property_dependencies.get("bucket", []):
            if dependency.urn in self.by_urn:
                return self.by_urn[dependency.urn]
        try:
            value = _get(resource.props, "bucket")
        except UnknownValueError as unknown:
            self.unknowns.first = self.unknowns.first or unknown
            self.undecided.add(resource.resource_type)
            return None
        return self.by_value.get(value) if isinstance(value, str) else None


def _bucket_label(bucket: PolicyResource) -> str:
    return f"bucket '{bucket.name}'"


# ---------------------------------------------------------------------------------------------
# kms-encryption-at-rest


def _default_encryption(sse: PolicyResource) -> list[tuple[Any, bool]]:
    """``(sseAlgorithm, has kmsMasterKeyId)`` of every rule of an SSE configuration."""
    found: list[tuple[Any, bool]] = []
    for rule in _items(_get(sse.props, "rules")):
        default = _get(rule, "applyServerSideEncryptionByDefault")
        algorithm = _get(default, "sseAlgorithm")
        try:
            key = _get(default, "kmsMasterKeyId")
            has_key = isinstance(key, str) and bool(key.strip())
        except UnknownValueError:
            has_key = True  # set from another resource's output (the key ARN): known at update time
        found.append((algorithm, has_key))
    return found


def _check_bucket_encryption(
    bucket: PolicyResource, configs: list[PolicyResource], can_be_missing: bool, report: ReportViolation
) -> None:
    label = _bucket_label(bucket)
    if not configs:
        if can_be_missing:
            report(f"{label} has no BucketServerSideEncryptionConfiguration", bucket.urn)
        return
    if len(configs) > 1:
        names = ", ".join(sorted(c.name for c in configs))
        report(
            f"{label} has {len(configs)} server-side encryption configurations ({names}); S3 keeps only one", bucket.urn
        )
    for config in configs:
        defaults = _default_encryption(config)
        if not defaults:
            report(f"{label}: encryption configuration '{config.name}' sets no default encryption", bucket.urn)
        for algorithm, has_key in defaults:
            if algorithm not in KMS_ALGORITHMS:
                report(
                    f"{label} default encryption is {algorithm!r}; it must be 'aws:kms' or 'aws:kms:dsse' with a "
                    f"customer-managed key",
                    bucket.urn,
                )
            elif not has_key:
                report(
                    f"{label} default encryption is {algorithm!r} without kmsMasterKeyId (the AWS-managed key); "
                    f"it must name the platform's customer-managed key",
                    bucket.urn,
                )


def validate_kms_encryption(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every bucket is SSE-KMS with a named (customer-managed) key; keys rotate."""
    unknowns = _Unknowns()
    buckets = _Buckets(args.resources, unknowns)
    configs = buckets.attachments(BUCKET_SSE)
    for bucket in buckets.all:
        with unknowns.guard():
            _check_bucket_encryption(bucket, configs.get(bucket.urn, []), buckets.missing(BUCKET_SSE), report)
    for key in (r for r in args.resources if r.resource_type == KMS_KEY):
        with unknowns.guard():
            rotation = _get(key.props, "enableKeyRotation")
            if rotation is not True:
                report(f"KMS key '{key.name}' has enableKeyRotation={rotation!r}; it must be true", key.urn)
    unknowns.raise_first()


# ---------------------------------------------------------------------------------------------
# s3-public-access-blocked


def validate_public_access_blocked(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every bucket has a public access block with all four flags true."""
    unknowns = _Unknowns()
    buckets = _Buckets(args.resources, unknowns)
    blocks = buckets.attachments(BUCKET_PAB)
    for bucket in buckets.all:
        label = _bucket_label(bucket)
        if not blocks.get(bucket.urn):
            if buckets.missing(BUCKET_PAB):
                report(f"{label} has no BucketPublicAccessBlock", bucket.urn)
            continue
        for block in blocks[bucket.urn]:
            with unknowns.guard():
                off = [flag for flag in PUBLIC_ACCESS_FLAGS if _get(block.props, flag) is not True]
                if off:
                    report(
                        f"{label}: public access block '{block.name}' does not set {', '.join(off)} to true "
                        f"(all four flags must be true)",
                        bucket.urn,
                    )
    unknowns.raise_first()


# ---------------------------------------------------------------------------------------------
# s3-tls-only


def _is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in _items(principal.get("AWS"))


def _denies_insecure_transport(condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return False
    for operator in ("Bool", "BoolIfExists"):
        values = _items(_get(_get(condition, operator), "aws:SecureTransport"))
        if any(str(v).lower() == "false" for v in values):
            return True
    return False


def _is_tls_deny(statement: Mapping[str, Any], bucket_arn: str) -> bool:
    """A Deny for everyone, of every S3 action, on the bucket and its objects, when TLS is not used."""
    if statement.get("Effect") != "Deny" or not _is_everyone(statement.get("Principal")):
        return False
    if not {"s3:*", "*"} & {str(a).lower() for a in _items(statement.get("Action"))}:
        return False
    resources = {str(r) for r in _items(statement.get("Resource"))}
    covers = "*" in resources or {bucket_arn, f"{bucket_arn}/*"} <= resources
    return covers and _denies_insecure_transport(statement.get("Condition"))


def validate_tls_only(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every bucket's policy denies requests that do not use TLS (``aws:SecureTransport`` false)."""
    unknowns = _Unknowns()
    buckets = _Buckets(args.resources, unknowns)
    policies = buckets.attachments(BUCKET_POLICY)
    for bucket in buckets.all:
        label = _bucket_label(bucket)
        attached = policies.get(bucket.urn, [])
        if not attached:
            if buckets.missing(BUCKET_POLICY):
                report(f"{label} has no BucketPolicy (a Deny on aws:SecureTransport=false is required)", bucket.urn)
            continue
        with unknowns.guard():
            arn = _get(bucket.props, "arn") or f"arn:aws:s3:::{_get(bucket.props, 'bucket')}"
            for policy in attached:
                document = _document(_get(policy.props, "policy"))
                if document is None:
                    report(f"{label}: bucket policy '{policy.name}' is not a valid JSON policy document", bucket.urn)
                elif not any(_is_tls_deny(s, str(arn)) for s in _statements(document)):
                    report(
                        f"{label}: bucket policy '{policy.name}' has no Deny statement on aws:SecureTransport=false "
                        f"covering {arn} and {arn}/*",
                        bucket.urn,
                    )
    unknowns.raise_first()


# ---------------------------------------------------------------------------------------------
# required-tags


def validate_required_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Taggable resources (and any resource with a ``tags`` input) carry the platform's tag set."""
    if args.resource_type not in TAGGABLE_TYPES and not _has(args.props, "tags"):
        return
    tags = _tags(args.props)
    if tags is None:
        report(f"{args.resource_type} '{args.name}' has no tags; required: {', '.join(REQUIRED_TAGS)}", None)
        return
    missing: list[str] = []
    for key in REQUIRED_TAGS:
        if not _has(tags, key):
            missing.append(key)
            continue
        try:
            value = tags[key]
        except UnknownValueError:
            continue  # computed from another output: a value will be there at update time
        if not isinstance(value, str) or not value.strip():
            missing.append(key)
    if missing:
        report(
            f"{args.resource_type} '{args.name}' is missing required tag(s) {', '.join(missing)} (or they are empty)",
            None,
        )


# ---------------------------------------------------------------------------------------------
# iam-no-wildcard-data-actions

_IAM_KINDS = {IAM_ROLE_POLICY: "IAM role policy", IAM_POLICY: "IAM policy", IAM_ROLE: "IAM role"}


def _wildcard_problem(action: str) -> str | None:
    action = action.strip()
    if action == "*":
        return "every action of every service"
    service, _, name = action.partition(":")
    if not name:
        return None
    if name == "*":
        return f"every {service.lower()} action"
    if service.lower() in DATA_SERVICES and ("*" in name or "?" in name):
        return f"a wildcard in a {service.lower()} (data service) action"
    return None


def _iam_documents(args: ResourceValidationArgs) -> Iterator[tuple[str, Any]]:
    """``(where, raw document)`` of each permissions policy the resource carries."""
    if args.resource_type in (IAM_ROLE_POLICY, IAM_POLICY):
        yield "", _get(args.props, "policy")
    elif args.resource_type == IAM_ROLE:
        for index, inline in enumerate(_items(_get(args.props, "inlinePolicies"))):
            name = _get(inline, "name") or f"#{index}"
            yield f" inline policy '{name}'", _get(inline, "policy")


def validate_iam_no_wildcard_data_actions(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """No Allow of ``*``, ``<service>:*``, or any wildcard in a data service's action; no Allow + NotAction."""
    kind = _IAM_KINDS.get(args.resource_type)
    if kind is None:
        return
    for where, raw in _iam_documents(args):
        if raw is None:
            continue
        subject = f"{kind} '{args.name}'{where}"
        document = _document(raw)
        if document is None:
            report(f"{subject} is not a valid JSON policy document", None)
            continue
        for index, statement in enumerate(_statements(document)):
            if statement.get("Effect") != "Allow":
                continue
            sid = f"'{statement['Sid']}'" if statement.get("Sid") else f"#{index}"
            if _has(statement, "NotAction"):
                report(f"{subject}: statement {sid} allows NotAction (every other action); list the actions", None)
            for action in _items(statement.get("Action")):
                problem = _wildcard_problem(str(action))
                if problem:
                    report(
                        f"{subject}: statement {sid} allows '{action}' ({problem}); list the actions explicitly", None
                    )


# ---------------------------------------------------------------------------------------------
# The policies

KMS_ENCRYPTION_AT_REST = StackValidationPolicy(
    name="kms-encryption-at-rest",
    description=(
        "S3 buckets (access-log buckets included) are encrypted with SSE-KMS and a customer-managed key; "
        "KMS keys rotate."
    ),
    validate=validate_kms_encryption,
)

S3_PUBLIC_ACCESS_BLOCKED = StackValidationPolicy(
    name="s3-public-access-blocked",
    description="Every S3 bucket has a public access block with all four flags set to true.",
    validate=validate_public_access_blocked,
)

S3_TLS_ONLY = StackValidationPolicy(
    name="s3-tls-only",
    description="Every S3 bucket's policy denies requests that do not use TLS (aws:SecureTransport=false).",
    validate=validate_tls_only,
)

REQUIRED_TAGS_POLICY = ResourceValidationPolicy(
    name="required-tags",
    description=f"Taggable resources carry the tags {', '.join(REQUIRED_TAGS)} with non-empty values.",
    validate=validate_required_tags,
)

IAM_NO_WILDCARD_DATA_ACTIONS = ResourceValidationPolicy(
    name="iam-no-wildcard-data-actions",
    description=(
        "IAM permissions policies allow no '*' or '<service>:*' action and no wildcard in actions of data "
        f"services ({', '.join(sorted(DATA_SERVICES))})."
    ),
    validate=validate_iam_no_wildcard_data_actions,
)

POLICIES: list[Policy] = [
    KMS_ENCRYPTION_AT_REST,
    S3_PUBLIC_ACCESS_BLOCKED,
    S3_TLS_ONLY,
    REQUIRED_TAGS_POLICY,
    IAM_NO_WILDCARD_DATA_ACTIONS,
]
"""Every policy of the pack, in the order the pack reports them."""
