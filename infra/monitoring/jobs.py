"""The Model Monitor jobs of one model's endpoint: data quality (drift of the captured requests against the
training baseline) and model quality (captured predictions joined with ground truth), each with its schedule.

Both run the Model Monitor analyzer image with network isolation, inter-container encryption, volumes and
reports encrypted with the platform key, under the role :func:`infra.monitoring.iam.monitoring_role_statements`
describes.

Replacement: AWS has no API to update a job definition, so the provider replaces one on any change (a new
approved version brings new baselines). Each definition is therefore named by a digest of its inputs
(:func:`digest_name`) and created before the old one is deleted, while its schedule keeps its name and is
updated in place to run the new definition. Time limits are checked against the schedule's period by the
settings (:mod:`infra.monitoring.settings`).

SageMaker Model Monitor is closed to new AWS customers: this engine is for accounts that still have it
(``monitoring.engine: model-monitor``); the platform engine (:mod:`infra.monitoring.platform_monitor`) works on
every account.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from infra import iam
from infra.foundation import Foundation
from infra.model_versions import DeployableVersion
from infra.monitoring.settings import DataQualityMonitorSettings, ModelQualityMonitorSettings
from infra.naming import Kind, ModelNames, Naming

ANALYZER_ENVIRONMENT = {"publish_cloudwatch_metrics": "Enabled"}
"""Makes the built-in analyzer publish its metrics to CloudWatch (what the alarms watch)."""
VOLUME_SIZE_GB = 30
"""Storage of each monitoring job instance (the SDK's default)."""
ENDPOINT_INPUT_PATH = "/opt/ml/processing/input/endpoint"
OUTPUT_PATH = "/opt/ml/processing/output"
PROBABILITY_ATTRIBUTE = "0"
"""The inference container answers ``text/csv`` with one positive-class probability per line: column 0."""
GROUND_TRUTH_START_OFFSET = "-P2D"
GROUND_TRUTH_END_OFFSET = "-P1D"
"""A model-quality job evaluates predictions captured two days to one day before it runs, so labels have a
day to land under the ground-truth prefix (ISO-8601 durations, see "Model monitor offsets")."""
NETWORK_CONFIG: Any = {"enable_network_isolation": True, "enable_inter_container_traffic_encryption": True}
"""The analyzer needs no network: SageMaker stages the capture and uploads the reports."""


@dataclass(frozen=True, kw_only=True)
class MonitorJobs:
    """What every monitoring job of one model shares."""

    parent: pulumi.Resource
    name: str
    """The component's resource name (children are ``<name>-<part>``)."""
    names: ModelNames
    foundation: Foundation
    endpoint_name: pulumi.Output[str]
    role: iam.ServiceRole
    image: str
    tags: dict[str, str]

    def report_uri(self, kind: str) -> pulumi.Output[str]:
        """Where a monitor writes its reports: ``s3://<monitoring>/<model>/<kind>/``."""
        return pulumi.Output.concat(
            "s3://", self.foundation.buckets["monitoring"].name, "/", self.names.model, f"/{kind}/"
        )


DIGEST_LENGTH = 8
"""Hex digits of the input digest in a job definition's name."""


def digest_name(naming: Naming, thing: str, inputs: Mapping[str, Any]) -> pulumi.Output[str]:
    """``<project>-<env>-<thing>-<digest>``: the job definition's name, a digest of every input it is created with.

    Every input of a job definition replaces it (the provider marks them all ForceNew: AWS has no
    Update*JobDefinition), and its schedule points at it by name. With a fixed name, a replacement had to delete
    the definition the schedule runs before creating the new one (same name) and failed or left the schedule
    dangling; with the digest in the name, the new definition is created under a new name, the schedule is updated
    in place to run it (its ``monitoringJobDefinitionName`` is not ForceNew), and only then is the old one
    deleted (``delete_before_replace=False``). ``inputs`` may hold outputs (role, key, bucket): the name is known
    when they are.

    Raises ``infra.naming.NamingError`` at preview when the name with its digest would break SageMaker's limits.
    """
    naming.name(f"{thing}-{'0' * DIGEST_LENGTH}", Kind.SAGEMAKER)
    base = naming.name(thing, Kind.SAGEMAKER)

    def named(text: str) -> str:
        return f"{base}-{hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]}"

    return pulumi.Output.json_dumps(inputs, sort_keys=True, separators=(",", ":")).apply(named)


def data_quality_job(
    jobs: MonitorJobs,
    settings: DataQualityMonitorSettings,
    baseline: DeployableVersion,
    preprocessor: aws.s3.BucketObjectv2,
    preprocessor_uri: pulumi.Output[str],
) -> str:
    """The data-quality job definition (captured requests through the record preprocessor at ``preprocessor_uri``,
    against ``baseline``'s statistics and constraints) and its schedule; returns the schedule name."""
    assert baseline.data_statistics_uri and baseline.data_constraints_uri
    sm = aws.sagemaker
    app: sm.DataQualityJobDefinitionDataQualityAppSpecificationArgsDict = {
        "image_uri": jobs.image,
        "environment": ANALYZER_ENVIRONMENT,
        # Raw captured requests -> the spec's feature columns, which the baselines describe.
        "record_preprocessor_source_uri": preprocessor_uri,
    }
    baseline_config: sm.DataQualityJobDefinitionDataQualityBaselineConfigArgsDict = {
        "statistics_resource": {"s3_uri": baseline.data_statistics_uri},
        "constraints_resource": {"s3_uri": baseline.data_constraints_uri},
    }
    job_input: sm.DataQualityJobDefinitionDataQualityJobInputArgsDict = {
        "endpoint_input": {
            "endpoint_name": jobs.endpoint_name,
            "local_path": ENDPOINT_INPUT_PATH,
            "s3_input_mode": "File",
            "s3_data_distribution_type": "FullyReplicated",
        }
    }
    output: sm.DataQualityJobDefinitionDataQualityJobOutputConfigArgsDict = {
        "kms_key_id": jobs.foundation.key_arn,
        "monitoring_outputs": {
            "s3_output": {
                "s3_uri": jobs.report_uri("data-quality"),
                "local_path": OUTPUT_PATH,
                "s3_upload_mode": "EndOfJob",
            }
        },
    }
    resources: sm.DataQualityJobDefinitionJobResourcesArgsDict = {
        "cluster_config": {
            "instance_count": 1,
            "instance_type": settings.instance_type,
            "volume_size_in_gb": VOLUME_SIZE_GB,
            "volume_kms_key_id": jobs.foundation.key_arn,
        }
    }
    network: sm.DataQualityJobDefinitionNetworkConfigArgsDict = NETWORK_CONFIG
    stopping: sm.DataQualityJobDefinitionStoppingConditionArgsDict = {
        "max_runtime_in_seconds": settings.max_runtime_seconds
    }
    # Tags are updated in place (TagResource): they are not part of the digest. The role ARN is: the provider
    # "updates" it in state only (there is no API to change a definition's role).
    name = digest_name(
        jobs.names.naming,
        f"{jobs.names.model}-dq",
        {
            "role_arn": jobs.role.arn,
            "app": app,
            "baseline": baseline_config,
            "input": job_input,
            "output": output,
            "resources": resources,
            "network": network,
            "stopping": stopping,
        },
    )
    definition = sm.DataQualityJobDefinition(
        f"{jobs.name}-data-quality",
        name=name,
        role_arn=jobs.role.arn,
        data_quality_app_specification=app,
        data_quality_baseline_config=baseline_config,
        data_quality_job_input=job_input,
        data_quality_job_output_config=output,
        job_resources=resources,
        network_config=network,
        stopping_condition=stopping,
        tags=jobs.tags,
        # A new name per replacement (digest_name): create the new definition first, repoint the schedule,
        # then delete the old one.
        opts=pulumi.ResourceOptions(
            parent=jobs.parent, depends_on=[jobs.role.policy, preprocessor], delete_before_replace=False
        ),
    )
    return monitoring_schedule(
        jobs, "data-quality", jobs.names.data_quality_job, "DataQuality", definition.name, settings.schedule
    )


def model_quality_job(
    jobs: MonitorJobs, settings: ModelQualityMonitorSettings, native_provider: pulumi.ProviderResource
) -> str:
    """The model-quality job definition (aws-native: captured predictions joined with ground truth) and its
    schedule; returns the schedule name."""
    mq = aws_native.sagemaker
    ground_truth = pulumi.Output.concat(
        "s3://",
        jobs.foundation.buckets["monitoring"].name,
        "/",
        jobs.names.model,
        "/",
        settings.ground_truth_prefix,
    )
    app: mq.ModelQualityJobDefinitionModelQualityAppSpecificationArgsDict = {
        "image_uri": jobs.image,
        "problem_type": mq.ModelQualityJobDefinitionProblemType.BINARY_CLASSIFICATION,
        "environment": ANALYZER_ENVIRONMENT,
    }
    job_input: mq.ModelQualityJobDefinitionModelQualityJobInputArgsDict = {
        "endpoint_input": {
            "endpoint_name": jobs.endpoint_name,
            "local_path": ENDPOINT_INPUT_PATH,
            "probability_attribute": PROBABILITY_ATTRIBUTE,
            "probability_threshold_attribute": settings.probability_threshold,
            "start_time_offset": GROUND_TRUTH_START_OFFSET,
            "end_time_offset": GROUND_TRUTH_END_OFFSET,
            "s3_input_mode": mq.ModelQualityJobDefinitionEndpointInputS3InputMode.FILE,
            "s3_data_distribution_type": mq.ModelQualityJobDefinitionEndpointInputS3DataDistributionType.FULLY_REPLICATED,
        },
        "ground_truth_s3_input": {"s3_uri": ground_truth},
    }
    output: mq.ModelQualityJobDefinitionMonitoringOutputConfigArgsDict = {
        "kms_key_id": jobs.foundation.key_arn,
        "monitoring_outputs": [
            {
                "s3_output": {
                    "local_path": OUTPUT_PATH,
                    "s3_uri": jobs.report_uri("model-quality"),
                    "s3_upload_mode": mq.ModelQualityJobDefinitionS3OutputS3UploadMode.END_OF_JOB,
                }
            }
        ],
    }
    resources: mq.ModelQualityJobDefinitionMonitoringResourcesArgsDict = {
        "cluster_config": {
            "instance_count": 1,
            "instance_type": settings.instance_type,
            "volume_size_in_gb": VOLUME_SIZE_GB,
            "volume_kms_key_id": jobs.foundation.key_arn,
        }
    }
    network: mq.ModelQualityJobDefinitionNetworkConfigArgsDict = NETWORK_CONFIG
    stopping: mq.ModelQualityJobDefinitionStoppingConditionArgsDict = {
        "max_runtime_in_seconds": settings.max_runtime_seconds
    }
    # CloudFormation replaces AWS::SageMaker::ModelQualityJobDefinition on any change, tags included
    # (create-only): everything goes into the digest.
    name = digest_name(
        jobs.names.naming,
        f"{jobs.names.model}-mq",
        {
            "endpoint_name": jobs.endpoint_name,
            "role_arn": jobs.role.arn,
            "app": app,
            "input": job_input,
            "output": output,
            "resources": resources,
            "network": network,
            "stopping": stopping,
            "tags": dict(sorted(jobs.tags.items())),
        },
    )
    definition = mq.ModelQualityJobDefinition(
        f"{jobs.name}-model-quality",
        job_definition_name=name,
        endpoint_name=jobs.endpoint_name,
        role_arn=jobs.role.arn,
        model_quality_app_specification=app,
        model_quality_job_input=job_input,
        model_quality_job_output_config=output,
        job_resources=resources,
        network_config=network,
        stopping_condition=stopping,
        tags=[aws_native.CreateOnlyTagArgs(key=k, value=v) for k, v in sorted(jobs.tags.items())],
        # As for data quality: a new name per replacement, created before the old definition is deleted.
        opts=pulumi.ResourceOptions(
            parent=jobs.parent,
            provider=native_provider,
            depends_on=[jobs.role.policy],
            delete_before_replace=False,
        ),
    )
    return monitoring_schedule(
        jobs,
        "model-quality",
        jobs.names.model_quality_job,
        "ModelQuality",
        # Optional in the aws-native schema, always set here (we name the definition).
        pulumi.Output.all(definition.job_definition_name, name).apply(lambda names: names[0] or names[1]),
        settings.schedule,
    )


def monitoring_schedule(
    jobs: MonitorJobs,
    part: str,
    schedule_name: str,
    monitoring_type: str,
    definition_name: pulumi.Input[str],
    cron: str,
) -> str:
    """A monitoring schedule running ``definition_name``, under the stable ``schedule_name`` (the alarms'
    ``MonitoringSchedule`` dimension). A new definition updates it in place (UpdateMonitoringSchedule)."""
    aws.sagemaker.MonitoringSchedule(
        f"{jobs.name}-{part}-schedule",
        name=schedule_name,
        monitoring_schedule_config=aws.sagemaker.MonitoringScheduleMonitoringScheduleConfigArgs(
            monitoring_type=monitoring_type,
            monitoring_job_definition_name=definition_name,
            schedule_config=aws.sagemaker.MonitoringScheduleMonitoringScheduleConfigScheduleConfigArgs(
                schedule_expression=cron
            ),
        ),
        tags=jobs.tags,
        opts=pulumi.ResourceOptions(parent=jobs.parent),
    )
    return schedule_name
