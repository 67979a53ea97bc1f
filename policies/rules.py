"""The platform's guardrails as CrossGuard policies: plain, importable objects.

The pack's ``__main__.py`` hands :data:`POLICIES` to ``PolicyPack``; the tests and the offline plan
(``verify/policy_check.py``) apply the same objects to the mocked stacks. This module is
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

import fnmatch
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
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
KINESIS_STREAM = "aws:kinesis/stream:Stream"
FIREHOSE_DELIVERY_STREAM = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
AWS_MANAGED_KINESIS_KEY = "alias/aws/kinesis"
"""The AWS-managed key Kinesis uses when a stream names no key of its own: not a customer-managed key."""

PUBLIC_ACCESS_FLAGS: tuple[str, ...] = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)

IMAGE_REFERENCE_TAG_TYPES: frozenset[str] = frozenset({"docker-build:index:Image"})
"""Types whose ``tags`` input lists image references (``registry/repository:tag``), not AWS resource tags."""

TAGGABLE_TYPES: frozenset[str] = frozenset(
    {
        # Every type in this set has a `tags` input in pulumi-aws 7.x or pulumi-aws-native
        # (tests/unit/test_policies.py introspects the provider classes, and fails on any taggable
        # type the program creates that is missing here). Not taggable, so absent on purpose: kms Alias, iam RolePolicy and
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
        "aws:ecr/repository:Repository",
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "aws:kinesis/stream:Stream",
        "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
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
        "aws:athena/workgroup:Workgroup",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        # pulumi-aws-native (model-quality, bias and explainability monitors are only there): `tags` is a
        # list of {key, value}, which `_tags` reads like the map form.
        "aws-native:sagemaker:ModelQualityJobDefinition",
        "aws-native:sagemaker:DataQualityJobDefinition",
        "aws-native:sagemaker:ModelBiasJobDefinition",
        "aws-native:sagemaker:ModelExplainabilityJobDefinition",
        "aws-native:sagemaker:MonitoringSchedule",
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


def _customer_key(key: Any) -> bool:
    """A key ARN or id that names a customer-managed key (not empty, not the AWS-managed ``alias/aws/...``)."""
    return isinstance(key, str) and bool(key.strip()) and ":alias/aws/" not in key and not key.startswith("alias/aws/")


def _stream_encryption_gap(stream: PolicyResource) -> str | None:
    """Why a Kinesis data stream is not encrypted with a customer-managed key (None when it is, or when its key is
    another resource's output not known yet)."""
    encryption = _get(stream.props, "encryptionType")
    if encryption != "KMS":
        return f"has encryptionType={encryption!r}; it must be 'KMS' with a customer-managed key"
    try:
        key = _get(stream.props, "kmsKeyId")
    except UnknownValueError:
        return None  # the platform key's ARN: known at update time
    if not _customer_key(key):
        return (
            f"is encrypted with kmsKeyId={key!r}; it must name a customer-managed key (not {AWS_MANAGED_KINESIS_KEY})"
        )
    return None


def _source_stream(delivery: PolicyResource, streams: Sequence[PolicyResource]) -> PolicyResource | None:
    """The stack's Kinesis stream a delivery stream reads: by property dependency, else by ARN."""
    for dependency in delivery.property_dependencies.get("kinesisSourceConfiguration", []):
        if dependency.resource_type == KINESIS_STREAM:
            return dependency
    arn = _get(_get(delivery.props, "kinesisSourceConfiguration"), "kinesisStreamArn")
    for stream in streams:
        with suppress(UnknownValueError):  # a stream whose ARN is not known yet is not this one's source
            if isinstance(arn, str) and _get(stream.props, "arn") == arn:
                return stream
    return None


def _check_delivery_stream(
    delivery: PolicyResource, streams: Sequence[PolicyResource], report: ReportViolation
) -> None:
    """A Kinesis-sourced delivery stream is encrypted exactly when its source stream is (AWS refuses server-side
    encryption of its own: CreateDeliveryStream takes DeliveryStreamEncryptionConfigurationInput only for DirectPut);
    a direct-put one needs server-side encryption with a customer-managed key; an S3 destination needs a key."""
    label = f"Firehose delivery stream '{delivery.name}'"
    props = delivery.props
    sse = _get(props, "serverSideEncryption")
    sse_on = _get(sse, "enabled") is True
    if _get(props, "kinesisSourceConfiguration") is not None:
        if sse_on:
            report(
                f"{label} reads a Kinesis stream and enables serverSideEncryption, which AWS refuses for a Kinesis "
                "source: the source stream's encryption applies; remove serverSideEncryption",
                delivery.urn,
            )
        source = _source_stream(delivery, streams)
        if source is None:
            report(
                f"{label} reads a Kinesis stream this stack does not create: its encryption cannot be verified",
                delivery.urn,
            )
        elif _stream_encryption_gap(source) is not None:
            report(
                f"{label} reads Kinesis stream '{source.name}', which is not encrypted with a customer-managed key, so "
                "neither are the records it holds",
                delivery.urn,
            )
    elif not sse_on or _get(sse, "keyType") != "CUSTOMER_MANAGED_CMK" or not _set_or_unknown(sse, "keyArn"):
        report(
            f"{label} is a direct-put delivery stream: set serverSideEncryption enabled=true, "
            "keyType=CUSTOMER_MANAGED_CMK and keyArn (the platform key)",
            delivery.urn,
        )
    destination = _get(props, "extendedS3Configuration")
    if destination is not None and not _set_or_unknown(destination, "kmsKeyArn"):
        report(
            f"{label} writes to S3 without extendedS3Configuration.kmsKeyArn: objects must be SSE-KMS with the "
            "platform key",
            delivery.urn,
        )


def validate_kms_encryption(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every bucket is SSE-KMS with a named (customer-managed) key; keys rotate; Kinesis streams and Firehose
    delivery streams are encrypted with a customer-managed key."""
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
    streams = [r for r in args.resources if r.resource_type == KINESIS_STREAM]
    for stream in streams:
        with unknowns.guard():
            gap = _stream_encryption_gap(stream)
            if gap is not None:
                report(f"Kinesis stream '{stream.name}' {gap}", stream.urn)
    for delivery in (r for r in args.resources if r.resource_type == FIREHOSE_DELIVERY_STREAM):
        with unknowns.guard():
            _check_delivery_stream(delivery, streams, report)
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
    if args.resource_type in IMAGE_REFERENCE_TAG_TYPES:
        return
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
# ML guardrails: shared pieces
#
# A rule knows a resource belongs to a production environment from its `Environment` tag (set on
# every taggable resource by the naming helper and enforced by required-tags), compared with the
# policy's `productionEnvironments` config (default ["prod"]). Stack names never appear in code
# paths: a fork with other environment names changes the pack config, not this file.

ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
FEATURE_GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
SAGEMAKER_PIPELINE = "aws:sagemaker/pipeline:Pipeline"
MONITORING_SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
NATIVE_MONITORING_SCHEDULE = "aws-native:sagemaker:MonitoringSchedule"
SCALABLE_TARGET = "aws:appautoscaling/target:Target"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
SCHEDULER_SCHEDULE = "aws:scheduler/schedule:Schedule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"

MONITORING_JOB_DEFINITIONS: Mapping[str, str] = {
    # type token -> the camelCase prefix of its `<prefix>JobInput` / `<prefix>JobOutputConfig` inputs
    "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition": "dataQuality",
    "aws-native:sagemaker:DataQualityJobDefinition": "dataQuality",
    "aws-native:sagemaker:ModelQualityJobDefinition": "modelQuality",
    "aws-native:sagemaker:ModelBiasJobDefinition": "modelBias",
    "aws-native:sagemaker:ModelExplainabilityJobDefinition": "modelExplainability",
}
"""Model Monitor job definitions (pulumi-aws has data quality only; the others are aws-native)."""

DEFAULT_PRODUCTION_ENVIRONMENTS: tuple[str, ...] = ("prod",)
DEFAULT_MIN_PRODUCTION_INSTANCES = 2
SMALL_INSTANCE_TYPES: tuple[str, ...] = (
    "ml.t2.*",
    "ml.t3.*",
    "ml.m5.large",
    "ml.m5.xlarge",
    "ml.m6i.large",
    "ml.m6i.xlarge",
    "ml.c5.large",
    "ml.c5.xlarge",
    "ml.c6i.large",
    "ml.c6i.xlarge",
)
DEFAULT_ALLOWED_INSTANCE_TYPES: Mapping[str, tuple[str, ...]] = {
    "dev": SMALL_INSTANCE_TYPES,
    "local": SMALL_INSTANCE_TYPES,
}
"""Per environment, the instance types (shell patterns) allowed; an environment not listed is unrestricted."""

_PRODUCTION_ENVIRONMENTS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string"},
    "default": list(DEFAULT_PRODUCTION_ENVIRONMENTS),
    "description": "Values of the Environment tag that mark a production resource.",
}


def _config(args: ResourceValidationArgs | StackValidationArgs, key: str, default: Any) -> Any:
    """The policy's config value ``key`` (from ``--policy-pack-config``), else the pack's default."""
    config = args.get_config()
    value = config.get(key) if isinstance(config, Mapping) else None
    return default if value is None else value


def _production_environments(args: ResourceValidationArgs | StackValidationArgs) -> frozenset[str]:
    return frozenset(str(e) for e in _items(_config(args, "productionEnvironments", DEFAULT_PRODUCTION_ENVIRONMENTS)))


def _environment(props: Any) -> str | None:
    """The resource's ``Environment`` tag (``None`` when untagged: required-tags reports that)."""
    tags = _tags(props)
    if tags is None or not _has(tags, "Environment"):
        return None
    value = tags["Environment"]
    return value if isinstance(value, str) else None


def _is_production(args: ResourceValidationArgs) -> bool:
    return _environment(args.props) in _production_environments(args)


def _path(props: Any, *keys: str) -> Any:
    """``props[k1][k2]...`` or ``None`` when any level is absent."""
    for key in keys:
        props = _get(props, key)
        if props is None:
            return None
    return props


def _set(value: Any) -> bool:
    """A non-empty string, or a value not known yet (an ARN from another resource's output at preview)."""
    return isinstance(value, str) and bool(value.strip())


def _set_or_unknown(props: Any, *keys: str) -> bool:
    try:
        return _set(_path(props, *keys))
    except UnknownValueError:
        return True  # computed from another resource (a key ARN): known at update time


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# ---------------------------------------------------------------------------------------------
# prod-endpoint-data-capture


def validate_prod_data_capture(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A production endpoint configuration captures requests and responses (Model Monitor reads them)."""
    if args.resource_type != ENDPOINT_CONFIG or not _is_production(args):
        return
    subject = f"production endpoint configuration '{args.name}'"
    capture = _get(args.props, "dataCaptureConfig")
    if capture is None:
        report(f"{subject} has no dataCaptureConfig; production endpoints must capture data for Model Monitor", None)
        return
    if _get(capture, "enableCapture") is not True:
        # pulumi-aws: enableCapture defaults to false
        report(f"{subject}: dataCaptureConfig.enableCapture is not true; production endpoints must capture data", None)
    sampling = _number(_get(capture, "initialSamplingPercentage"))
    if sampling is None or sampling <= 0:
        report(f"{subject}: dataCaptureConfig.initialSamplingPercentage must be above 0", None)


# ---------------------------------------------------------------------------------------------
# prod-endpoint-auto-rollback


def validate_prod_auto_rollback(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A production endpoint's updates are blue/green with CloudWatch alarms that roll them back."""
    if args.resource_type != ENDPOINT or not _is_production(args):
        return
    alarms = _items(_path(args.props, "deploymentConfig", "autoRollbackConfiguration", "alarms"))
    if not alarms:
        report(
            f"production endpoint '{args.name}' has no deploymentConfig.autoRollbackConfiguration.alarms; "
            "a production update must roll back automatically when an alarm fires",
            None,
        )


# ---------------------------------------------------------------------------------------------
# prod-endpoint-min-instances


def validate_prod_min_instances(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Every production variant of a production endpoint runs on at least N instances (N from config, 2)."""
    if args.resource_type not in (ENDPOINT_CONFIG, SCALABLE_TARGET) or not _is_production(args):
        return
    minimum = int(_config(args, "minInstances", DEFAULT_MIN_PRODUCTION_INSTANCES))
    if args.resource_type == SCALABLE_TARGET:
        if _get(args.props, "scalableDimension") != "sagemaker:variant:DesiredInstanceCount":
            return
        capacity = _number(_get(args.props, "minCapacity"))
        if capacity is None or capacity < minimum:
            report(
                f"autoscaling target '{args.name}' of a production variant has minCapacity={_shown(capacity)}; "
                f"it must be at least {minimum} (scaling in must not leave a single instance)",
                None,
            )
        return
    for index, variant in enumerate(_items(_get(args.props, "productionVariants"))):
        name = _get(variant, "variantName") or f"#{index}"
        if _get(variant, "serverlessConfig") is not None:
            report(
                f"production endpoint configuration '{args.name}': variant '{name}' is serverless; production "
                f"variants run on at least {minimum} instances",
                None,
            )
            continue
        count = _number(_get(variant, "initialInstanceCount"))
        if count is None or count < minimum:
            report(
                f"production endpoint configuration '{args.name}': variant '{name}' has "
                f"initialInstanceCount={_shown(count)}; it must be at least {minimum}",
                None,
            )


def _shown(number: float | None) -> str:
    return "unset" if number is None else f"{number:g}"


# ---------------------------------------------------------------------------------------------
# prod-endpoint-monitoring-schedule


def _monitored_endpoint(definition: Any, prefix: str) -> Any:
    """The endpoint a Model Monitor job definition reads (aws: ``<prefix>JobInput.endpointInput``)."""
    name = _path(definition, f"{prefix}JobInput", "endpointInput", "endpointName")
    return name if name is not None else _get(definition, "endpointName")  # aws-native also has a top-level one


def _inline_monitored_endpoints(config: Any) -> list[Any]:
    """Endpoints read by a schedule's inline job definition (aws and aws-native shapes)."""
    definition = _get(config, "monitoringJobDefinition")
    found: list[Any] = []
    for monitoring_input in _items(_get(definition, "monitoringInputs")):
        found.append(_path(monitoring_input, "endpointInput", "endpointName"))
    return [name for name in found if name is not None]


def _pipeline_monitored_endpoints(definition: Any) -> list[str]:
    """Endpoints a monitoring pipeline watches: ``--dimension Endpoint=<name>`` in a processing step's container
    arguments (the platform drift job's contract: it publishes every metric with that dimension)."""
    document = _document(definition)
    if document is None:
        return []
    found: list[str] = []
    for step in _items(document.get("Steps")):
        arguments = _path(step, "Arguments", "AppSpecification", "ContainerArguments")
        values = _items(arguments) if not isinstance(arguments, str) else []
        for flag, value in itertools.pairwise(values):
            if flag == "--dimension" and isinstance(value, str) and value.startswith("Endpoint="):
                found.append(value.removeprefix("Endpoint="))
    return found


START_PIPELINE_TARGET = "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution"
"""EventBridge Scheduler's universal target for StartPipelineExecution: the pipeline is named in its input."""


def _scheduled_targets(args: StackValidationArgs, unknowns: _Unknowns) -> set[str]:
    """What a schedule starts: the ARNs of EventBridge rules' and templated Scheduler targets, and the pipeline
    names of Scheduler's universal StartPipelineExecution targets."""
    targets: set[str] = set()
    for resource in args.resources:
        with unknowns.guard():
            if resource.resource_type == SCHEDULER_SCHEDULE:
                arn = _path(resource.props, "target", "arn")
                if arn == START_PIPELINE_TARGET:
                    request = _document(_path(resource.props, "target", "input"))
                    arn = request.get("PipelineName") if request is not None else None
            elif resource.resource_type == EVENT_TARGET:
                arn = _get(resource.props, "arn")
            else:
                continue
            if isinstance(arn, str):
                targets.add(arn)
    return targets


def validate_prod_monitoring_schedule(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every production endpoint is monitored on a schedule, by either engine: it is the input of a Model Monitor
    job definition that a monitoring schedule runs, or the endpoint of a monitoring pipeline (the platform's drift
    job) that a schedule starts."""
    unknowns = _Unknowns()
    production = _production_environments(args)
    definitions: dict[str, Any] = {}  # job definition name -> endpoint name it reads
    scheduled: set[str] = set()  # endpoint names a schedule monitors
    for resource in args.resources:
        with unknowns.guard():
            prefix = MONITORING_JOB_DEFINITIONS.get(resource.resource_type)
            if prefix is not None:
                name = _get(resource.props, "name") or _get(resource.props, "jobDefinitionName")
                if isinstance(name, str):
                    definitions[name] = _monitored_endpoint(resource.props, prefix)
    for resource in args.resources:
        if resource.resource_type not in (MONITORING_SCHEDULE, NATIVE_MONITORING_SCHEDULE):
            continue
        with unknowns.guard():
            config = _get(resource.props, "monitoringScheduleConfig")
            scheduled.update(str(e) for e in _inline_monitored_endpoints(config))
            definition = _get(config, "monitoringJobDefinitionName")
            if isinstance(definition, str) and definitions.get(definition) is not None:
                scheduled.add(str(definitions[definition]))
    started = _scheduled_targets(args, unknowns)
    for resource in args.resources:
        if resource.resource_type != SAGEMAKER_PIPELINE:
            continue
        with unknowns.guard():
            if _get(resource.props, "arn") in started or _get(resource.props, "pipelineName") in started:
                scheduled.update(_pipeline_monitored_endpoints(_get(resource.props, "pipelineDefinition")))
    for endpoint in (r for r in args.resources if r.resource_type == ENDPOINT):
        with unknowns.guard():
            if _environment(endpoint.props) not in production:
                continue
            name = _get(endpoint.props, "name")
            if name not in scheduled:
                report(
                    f"production endpoint '{endpoint.name}' ({name}) is monitored by no schedule: it is neither the "
                    "input of a scheduled Model Monitor job definition nor the endpoint of a scheduled monitoring "
                    "pipeline; production endpoints must be monitored",
                    endpoint.urn,
                )
    unknowns.raise_first()


# ---------------------------------------------------------------------------------------------
# instance-types-allowed


def _pipeline_instance_types(definition: Any) -> list[tuple[str, Any]]:
    """``(step, instance type)`` of every processing/training/transform step of a pipeline definition.

    A type given as a pipeline parameter (``{"Get": "Parameters.X"}``) is checked at its default value:
    that is what an execution started without overrides (schedules, responders) runs.
    """
    document = _document(definition)
    if document is None:
        return []
    defaults = {
        p.get("Name"): p.get("DefaultValue") for p in _items(document.get("Parameters")) if isinstance(p, Mapping)
    }
    found: list[tuple[str, Any]] = []
    for step in _items(document.get("Steps")):
        arguments = step.get("Arguments") if isinstance(step, Mapping) else None
        if not isinstance(arguments, Mapping):
            continue
        for where in (
            _path(arguments, "ProcessingResources", "ClusterConfig"),
            _get(arguments, "ResourceConfig"),
            _get(arguments, "TransformResources"),
        ):
            value = _get(where, "InstanceType")
            if isinstance(value, Mapping) and str(value.get("Get", "")).startswith("Parameters."):
                value = defaults.get(str(value["Get"]).removeprefix("Parameters."))
            if value is not None:
                found.append((f"step '{step.get('Name')}'", value))
    return found


def _instance_types(args: ResourceValidationArgs) -> list[tuple[str, Any]]:
    """``(where, instance type)`` of every instance the resource runs, for the types that run instances."""
    props = args.props
    if args.resource_type == ENDPOINT_CONFIG:
        return [
            (f"variant '{_get(v, 'variantName')}'", _get(v, "instanceType"))
            for key in ("productionVariants", "shadowProductionVariants")
            for v in _items(_get(props, key))
            if _get(v, "instanceType") is not None  # serverless variants run no instances
        ]
    if args.resource_type in MONITORING_JOB_DEFINITIONS:
        return [("monitoring job", _path(props, "jobResources", "clusterConfig", "instanceType"))]
    if args.resource_type in (MONITORING_SCHEDULE, NATIVE_MONITORING_SCHEDULE):
        definition = _path(props, "monitoringScheduleConfig", "monitoringJobDefinition")
        value = _path(definition, "monitoringResources", "clusterConfig", "instanceType")
        return [] if value is None else [("monitoring job", value)]
    if args.resource_type == SAGEMAKER_PIPELINE:
        return _pipeline_instance_types(_get(props, "pipelineDefinition"))
    return []


def validate_instance_types(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Endpoints, monitoring jobs and pipeline jobs use the instance types their environment allows."""
    allowed_by_environment = _config(args, "allowedInstanceTypes", DEFAULT_ALLOWED_INSTANCE_TYPES)
    environment = _environment(args.props)
    if environment is None or not isinstance(allowed_by_environment, Mapping):
        return
    patterns = _items(allowed_by_environment.get(environment))
    if environment not in allowed_by_environment:
        return  # environments the config does not list are unrestricted
    for where, instance_type in _instance_types(args):
        if not isinstance(instance_type, str) or not any(fnmatch.fnmatchcase(instance_type, str(p)) for p in patterns):
            report(
                f"{args.resource_type} '{args.name}' {where}: instance type {instance_type!r} is not allowed in "
                f"environment '{environment}' (allowed: {', '.join(str(p) for p in patterns) or 'none'})",
                None,
            )


# ---------------------------------------------------------------------------------------------
# lambda-dead-letter-queue


def validate_lambda_dead_letter_queue(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Every Lambda function (all of the platform's are asynchronous responders) has a dead-letter queue."""
    if args.resource_type != LAMBDA_FUNCTION:
        return
    if not _set_or_unknown(args.props, "deadLetterConfig", "targetArn"):
        report(
            f"Lambda function '{args.name}' has no deadLetterConfig.targetArn; events that fail every retry "
            "must land in a dead-letter queue, not vanish",
            None,
        )


# ---------------------------------------------------------------------------------------------
# sagemaker-kms-encryption


def _kms_gaps(args: ResourceValidationArgs) -> list[str]:
    """The KMS settings a SageMaker data-holding resource lacks (dotted input paths)."""
    props = args.props
    gaps: list[str] = []
    if args.resource_type == FEATURE_GROUP:
        online = _get(props, "onlineStoreConfig")
        online_on = online is not None and _get(online, "enableOnlineStore") is True
        if online_on and not _set_or_unknown(online, "securityConfig", "kmsKeyId"):
            gaps.append("onlineStoreConfig.securityConfig.kmsKeyId")
        offline = _get(props, "offlineStoreConfig")
        if offline is not None and not _set_or_unknown(offline, "s3StorageConfig", "kmsKeyId"):
            gaps.append("offlineStoreConfig.s3StorageConfig.kmsKeyId")
    elif args.resource_type in MONITORING_JOB_DEFINITIONS:
        output = f"{MONITORING_JOB_DEFINITIONS[args.resource_type]}JobOutputConfig"
        if not _set_or_unknown(props, output, "kmsKeyId"):
            gaps.append(f"{output}.kmsKeyId")
        if not _set_or_unknown(props, "jobResources", "clusterConfig", "volumeKmsKeyId"):
            gaps.append("jobResources.clusterConfig.volumeKmsKeyId")
    elif args.resource_type in (MONITORING_SCHEDULE, NATIVE_MONITORING_SCHEDULE):
        definition = _path(props, "monitoringScheduleConfig", "monitoringJobDefinition")
        if definition is not None:
            if not _set_or_unknown(definition, "monitoringOutputConfig", "kmsKeyId"):
                gaps.append("monitoringScheduleConfig.monitoringJobDefinition.monitoringOutputConfig.kmsKeyId")
            if not _set_or_unknown(definition, "monitoringResources", "clusterConfig", "volumeKmsKeyId"):
                gaps.append(
                    "monitoringScheduleConfig.monitoringJobDefinition.monitoringResources.clusterConfig.volumeKmsKeyId"
                )
    elif args.resource_type == ENDPOINT_CONFIG:
        capture = _get(props, "dataCaptureConfig")
        capturing = capture is not None and _get(capture, "enableCapture") is True
        if capturing and not _set_or_unknown(capture, "kmsKeyId"):
            gaps.append("dataCaptureConfig.kmsKeyId")
    return gaps


def validate_sagemaker_kms(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Feature stores, Model Monitor outputs and volumes, and captured data use a customer-managed KMS key."""
    gaps = _kms_gaps(args)
    if gaps:
        report(
            f"{args.resource_type} '{args.name}' is not encrypted with a customer-managed KMS key: set "
            f"{', '.join(gaps)}",
            None,
        )


# ---------------------------------------------------------------------------------------------
# The policies

KMS_ENCRYPTION_AT_REST = StackValidationPolicy(
    name="kms-encryption-at-rest",
    description=(
        "S3 buckets (access-log buckets included) are encrypted with SSE-KMS and a customer-managed key; "
        "KMS keys rotate; Kinesis streams use KMS with a customer-managed key; Firehose delivery streams are "
        "encrypted through their Kinesis source or with a customer-managed key, and write SSE-KMS objects."
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

PROD_ENDPOINT_DATA_CAPTURE = ResourceValidationPolicy(
    name="prod-endpoint-data-capture",
    description="Production endpoint configurations capture requests and responses (sampling above 0%).",
    validate=validate_prod_data_capture,
    config_schema=PolicyConfigSchema({"productionEnvironments": _PRODUCTION_ENVIRONMENTS_SCHEMA}),
)

PROD_ENDPOINT_MONITORING_SCHEDULE = StackValidationPolicy(
    name="prod-endpoint-monitoring-schedule",
    description=(
        "Every production endpoint is monitored on a schedule: the input of a Model Monitor job definition that a "
        "monitoring schedule runs, or the endpoint of a monitoring pipeline (the platform's drift job) that an "
        "EventBridge Scheduler schedule or rule starts."
    ),
    validate=validate_prod_monitoring_schedule,
    config_schema=PolicyConfigSchema({"productionEnvironments": _PRODUCTION_ENVIRONMENTS_SCHEMA}),
)

PROD_ENDPOINT_AUTO_ROLLBACK = ResourceValidationPolicy(
    name="prod-endpoint-auto-rollback",
    description="Production endpoints roll updates back automatically on CloudWatch alarms.",
    validate=validate_prod_auto_rollback,
    config_schema=PolicyConfigSchema({"productionEnvironments": _PRODUCTION_ENVIRONMENTS_SCHEMA}),
)

PROD_ENDPOINT_MIN_INSTANCES = ResourceValidationPolicy(
    name="prod-endpoint-min-instances",
    description=(
        "Production variants run on at least minInstances instances (initial count and autoscaling minimum); "
        "no serverless production variants."
    ),
    validate=validate_prod_min_instances,
    config_schema=PolicyConfigSchema(
        {
            "productionEnvironments": _PRODUCTION_ENVIRONMENTS_SCHEMA,
            "minInstances": {
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_MIN_PRODUCTION_INSTANCES,
                "description": "Fewest instances of each production variant of a production endpoint.",
            },
        }
    ),
)

INSTANCE_TYPES_ALLOWED = ResourceValidationPolicy(
    name="instance-types-allowed",
    description=(
        "Endpoint variants, Model Monitor jobs and pipeline processing/training jobs use instance types their "
        "environment (Environment tag) allows."
    ),
    validate=validate_instance_types,
    config_schema=PolicyConfigSchema(
        {
            "allowedInstanceTypes": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "default": {env: list(types) for env, types in DEFAULT_ALLOWED_INSTANCE_TYPES.items()},
                "description": "Environment -> allowed instance types (shell patterns such as ml.t3.*); "
                "environments not listed are unrestricted.",
            }
        }
    ),
)

LAMBDA_DEAD_LETTER_QUEUE = ResourceValidationPolicy(
    name="lambda-dead-letter-queue",
    description="Every Lambda function (the platform's responders are asynchronous) has a dead-letter queue.",
    validate=validate_lambda_dead_letter_queue,
)

SAGEMAKER_KMS_ENCRYPTION = ResourceValidationPolicy(
    name="sagemaker-kms-encryption",
    description=(
        "Feature groups (online and offline store), Model Monitor job outputs and volumes, and endpoint data "
        "capture are encrypted with a customer-managed KMS key."
    ),
    validate=validate_sagemaker_kms,
)

POLICIES: list[Policy] = [
    KMS_ENCRYPTION_AT_REST,
    S3_PUBLIC_ACCESS_BLOCKED,
    S3_TLS_ONLY,
    REQUIRED_TAGS_POLICY,
    IAM_NO_WILDCARD_DATA_ACTIONS,
    PROD_ENDPOINT_DATA_CAPTURE,
    PROD_ENDPOINT_MONITORING_SCHEDULE,
    PROD_ENDPOINT_AUTO_ROLLBACK,
    PROD_ENDPOINT_MIN_INSTANCES,
    INSTANCE_TYPES_ALLOWED,
    LAMBDA_DEAD_LETTER_QUEUE,
    SAGEMAKER_KMS_ENCRYPTION,
]
"""Every policy of the pack, in the order the pack reports them."""
