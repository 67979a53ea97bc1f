"""The Model Monitor jobs of one model's endpoint: data quality (drift of the captured requests against the
training baseline) and model quality (captured predictions joined with ground truth), each with its schedule.

Both run the Model Monitor analyzer image with network isolation, inter-container encryption, volumes and
reports encrypted with the platform key, under the role :func:`infra.monitoring.iam.monitoring_role_statements`
describes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from infra import iam
from infra.foundation import Foundation
from infra.model_versions import DeployableVersion
from infra.monitoring.settings import DataQualityMonitorSettings, ModelQualityMonitorSettings
from infra.naming import ModelNames

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
    job_name = jobs.names.data_quality_job
    definition = aws.sagemaker.DataQualityJobDefinition(
        f"{jobs.name}-data-quality",
        name=job_name,
        role_arn=jobs.role.arn,
        data_quality_app_specification=aws.sagemaker.DataQualityJobDefinitionDataQualityAppSpecificationArgs(
            image_uri=jobs.image,
            environment=ANALYZER_ENVIRONMENT,
            # Raw captured requests -> the spec's feature columns, which the baselines describe.
            record_preprocessor_source_uri=preprocessor_uri,
        ),
        data_quality_baseline_config=aws.sagemaker.DataQualityJobDefinitionDataQualityBaselineConfigArgs(
            statistics_resource=aws.sagemaker.DataQualityJobDefinitionDataQualityBaselineConfigStatisticsResourceArgs(
                s3_uri=baseline.data_statistics_uri
            ),
            constraints_resource=aws.sagemaker.DataQualityJobDefinitionDataQualityBaselineConfigConstraintsResourceArgs(
                s3_uri=baseline.data_constraints_uri
            ),
        ),
        data_quality_job_input=aws.sagemaker.DataQualityJobDefinitionDataQualityJobInputArgs(
            endpoint_input=aws.sagemaker.DataQualityJobDefinitionDataQualityJobInputEndpointInputArgs(
                endpoint_name=jobs.endpoint_name,
                local_path=ENDPOINT_INPUT_PATH,
                s3_input_mode="File",
                s3_data_distribution_type="FullyReplicated",
            )
        ),
        data_quality_job_output_config=aws.sagemaker.DataQualityJobDefinitionDataQualityJobOutputConfigArgs(
            kms_key_id=jobs.foundation.key_arn,
            monitoring_outputs=aws.sagemaker.DataQualityJobDefinitionDataQualityJobOutputConfigMonitoringOutputsArgs(
                s3_output=aws.sagemaker.DataQualityJobDefinitionDataQualityJobOutputConfigMonitoringOutputsS3OutputArgs(
                    s3_uri=jobs.report_uri("data-quality"), local_path=OUTPUT_PATH, s3_upload_mode="EndOfJob"
                )
            ),
        ),
        job_resources=aws.sagemaker.DataQualityJobDefinitionJobResourcesArgs(
            cluster_config=aws.sagemaker.DataQualityJobDefinitionJobResourcesClusterConfigArgs(
                instance_count=1,
                instance_type=settings.instance_type,
                volume_size_in_gb=VOLUME_SIZE_GB,
                volume_kms_key_id=jobs.foundation.key_arn,
            )
        ),
        network_config=aws.sagemaker.DataQualityJobDefinitionNetworkConfigArgs(
            enable_network_isolation=True, enable_inter_container_traffic_encryption=True
        ),
        stopping_condition=aws.sagemaker.DataQualityJobDefinitionStoppingConditionArgs(
            max_runtime_in_seconds=settings.max_runtime_seconds
        ),
        tags=jobs.tags,
        opts=pulumi.ResourceOptions(parent=jobs.parent, depends_on=[jobs.role.policy, preprocessor]),
    )
    return monitoring_schedule(jobs, "data-quality", job_name, "DataQuality", definition.name, settings.schedule)


def model_quality_job(
    jobs: MonitorJobs, settings: ModelQualityMonitorSettings, native_provider: pulumi.ProviderResource
) -> str:
    """The model-quality job definition (aws-native: captured predictions joined with ground truth) and its
    schedule; returns the schedule name."""
    job_name = jobs.names.model_quality_job
    mq = aws_native.sagemaker
    ground_truth = pulumi.Output.concat(
        "s3://",
        jobs.foundation.buckets["monitoring"].name,
        "/",
        jobs.names.model,
        "/",
        settings.ground_truth_prefix,
    )
    definition = mq.ModelQualityJobDefinition(
        f"{jobs.name}-model-quality",
        job_definition_name=job_name,
        endpoint_name=jobs.endpoint_name,
        role_arn=jobs.role.arn,
        model_quality_app_specification=mq.ModelQualityJobDefinitionModelQualityAppSpecificationArgs(
            image_uri=jobs.image,
            problem_type=mq.ModelQualityJobDefinitionProblemType.BINARY_CLASSIFICATION,
            environment=ANALYZER_ENVIRONMENT,
        ),
        model_quality_job_input=mq.ModelQualityJobDefinitionModelQualityJobInputArgs(
            endpoint_input=mq.ModelQualityJobDefinitionEndpointInputArgs(
                endpoint_name=jobs.endpoint_name,
                local_path=ENDPOINT_INPUT_PATH,
                probability_attribute=PROBABILITY_ATTRIBUTE,
                probability_threshold_attribute=settings.probability_threshold,
                start_time_offset=GROUND_TRUTH_START_OFFSET,
                end_time_offset=GROUND_TRUTH_END_OFFSET,
                s3_input_mode=mq.ModelQualityJobDefinitionEndpointInputS3InputMode.FILE,
                s3_data_distribution_type=mq.ModelQualityJobDefinitionEndpointInputS3DataDistributionType.FULLY_REPLICATED,
            ),
            ground_truth_s3_input=mq.ModelQualityJobDefinitionMonitoringGroundTruthS3InputArgs(s3_uri=ground_truth),
        ),
        model_quality_job_output_config=mq.ModelQualityJobDefinitionMonitoringOutputConfigArgs(
            kms_key_id=jobs.foundation.key_arn,
            monitoring_outputs=[
                mq.ModelQualityJobDefinitionMonitoringOutputArgs(
                    s3_output=mq.ModelQualityJobDefinitionS3OutputArgs(
                        local_path=OUTPUT_PATH,
                        s3_uri=jobs.report_uri("model-quality"),
                        s3_upload_mode=mq.ModelQualityJobDefinitionS3OutputS3UploadMode.END_OF_JOB,
                    )
                )
            ],
        ),
        job_resources=mq.ModelQualityJobDefinitionMonitoringResourcesArgs(
            cluster_config=mq.ModelQualityJobDefinitionClusterConfigArgs(
                instance_count=1,
                instance_type=settings.instance_type,
                volume_size_in_gb=VOLUME_SIZE_GB,
                volume_kms_key_id=jobs.foundation.key_arn,
            )
        ),
        network_config=mq.ModelQualityJobDefinitionNetworkConfigArgs(
            enable_network_isolation=True, enable_inter_container_traffic_encryption=True
        ),
        stopping_condition=mq.ModelQualityJobDefinitionStoppingConditionArgs(
            max_runtime_in_seconds=settings.max_runtime_seconds
        ),
        tags=[aws_native.CreateOnlyTagArgs(key=k, value=v) for k, v in sorted(jobs.tags.items())],
        opts=pulumi.ResourceOptions(parent=jobs.parent, provider=native_provider, depends_on=[jobs.role.policy]),
    )
    return monitoring_schedule(
        jobs,
        "model-quality",
        job_name,
        "ModelQuality",
        # Optional in the aws-native schema, always set here (we name the definition).
        definition.job_definition_name.apply(lambda n: n or job_name),
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
    """A monitoring schedule running ``definition_name``. It shares the definition's name (the runbook
    describes both with the same name)."""
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
