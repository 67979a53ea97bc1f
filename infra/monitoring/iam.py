"""Least-privilege IAM of the monitoring layer: what one model's monitors may read, write and start.

- :func:`monitoring_role_statements`: the Model Monitor jobs (engine ``model-monitor``);
- :func:`platform_job_statements`: the platform's monitoring pipeline and the drift job it runs (engine
  ``platform``): read the capture, the baseline, the labels and the step code; write only the model's report
  partition; publish metrics only to the platform's namespace;
- :func:`schedule_statements`: EventBridge Scheduler, which may only start that pipeline.

Each statement comes from one small function, scoped by ARN; a ``*`` resource appears only where IAM has no
resource-level permission, with the reason beside it.
"""

from __future__ import annotations

import pulumi

from infra import iam
from infra.alarms import DATA_METRICS_NAMESPACE, MODEL_METRICS_NAMESPACE, PLATFORM_METRICS_NAMESPACE
from infra.foundation import Foundation
from infra.model_versions import DeployableVersion

PROCESSING_JOB_METRICS_NAMESPACE = "/aws/sagemaker/ProcessingJobs"
"""CloudWatch namespace of processing jobs' instance metrics (Model Monitor's and the drift job's)."""
PIPELINE_JOB_PREFIX = "pipelines-"
"""SageMaker Pipelines names every job it starts ``pipelines-<execution id>-<step>-...``."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``; raises ``ValueError`` on anything else."""
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def s3_object_arn(uri: str) -> str:
    """The ARN of the object (or key prefix) an ``s3://`` URI names."""
    bucket, key = split_s3_uri(uri)
    return f"arn:aws:s3:::{bucket}/{key}"


# --- statements both engines use ------------------------------------------------------------------


def prefix_read(sid: str, uri: pulumi.Input[str]) -> list[iam.Statement]:
    """Read the objects under an ``s3://`` prefix (an output: the capture or code URI) and list that prefix only."""
    prefix = pulumi.Output.from_input(uri).apply(lambda u: u.rstrip("/") + "/")
    objects = prefix.apply(lambda u: s3_object_arn(u) + "*")
    bucket = prefix.apply(lambda u: f"arn:aws:s3:::{split_s3_uri(u)[0]}")
    key = prefix.apply(lambda u: split_s3_uri(u)[1])
    return [
        iam.statement(f"{sid}Read", ["s3:GetObject"], [objects]),
        iam.statement(
            f"{sid}List",
            ["s3:ListBucket"],
            [bucket],
            conditions={"StringLike": {"s3:prefix": [key, pulumi.Output.concat(key, "*")]}},
        ),
    ]


def job_logs(foundation: Foundation) -> list[iam.Statement]:
    """Processing jobs' logs. AWS docs, "SageMaker Roles" (CreateProcessingJob API: Execution Role Permissions):
    the job writes its logs and may describe its log streams."""
    groups = [
        pulumi.Output.concat(
            "arn:aws:logs:",
            foundation.region,
            ":",
            foundation.account_id,
            ":log-group:/aws/sagemaker/ProcessingJobs*",
        )
    ]
    return [iam.logs_write("JobLogs", groups), iam.statement("JobLogStreams", ["logs:DescribeLogStreams"], groups)]


def metrics_publish(sid: str, namespaces: list[str]) -> iam.Statement:
    """PutMetricData to ``namespaces`` only. PutMetricData has no resource-level permission ("*" is the only
    resource); the ``cloudwatch:namespace`` condition key (service authorization reference: CloudWatch's
    condition keys, "Using condition keys to limit access to CloudWatch namespaces") scopes it instead."""
    return iam.statement(
        sid, ["cloudwatch:PutMetricData"], ["*"], conditions={"StringEquals": {"cloudwatch:namespace": namespaces}}
    )


def image_pull(region: str, image_uri: str) -> list[iam.Statement]:
    """Pull one SageMaker-owned image (its registry account and repository)."""
    registry, _, repository = image_uri.partition("/")
    repository = repository.split("@")[0].split(":")[0]
    account = registry.split(".")[0]
    return [
        iam.statement(
            "ImagePull",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [f"arn:aws:ecr:{region}:{account}:repository/{repository}"],
        ),
        # GetAuthorizationToken is account-wide (a registry login): IAM has no resource-level permission for it.
        iam.statement("ImageAuth", ["ecr:GetAuthorizationToken"], ["*"]),
    ]


def platform_key(foundation: Foundation) -> list[iam.Statement]:
    """Use the platform key: read the (encrypted) capture, code and labels, write encrypted reports; job volumes
    are encrypted with it, so SageMaker creates grants for the instances."""
    return [
        iam.kms_use("PlatformKeyUse", [foundation.key_arn]),
        iam.kms_grant_for_aws_services("PlatformKeyGrants", [foundation.key_arn]),
    ]


# --- engine model-monitor -------------------------------------------------------------------------


def monitoring_role_statements(
    foundation: Foundation,
    *,
    model: str,
    capture_uri: pulumi.Input[str] | None,
    baseline: DeployableVersion | None,
    preprocessor_key: str | None,
    ground_truth_prefix: str | None,
    image_uri: str,
) -> list[iam.Statement]:
    """Read the capture (and, for data quality, the ``baseline`` objects and the record preprocessor at
    ``preprocessor_key``; for model quality, the labels under ``ground_truth_prefix``), write each monitor's
    reports, use the platform key, publish Model Monitor metrics, write job logs, pull the analyzer image."""
    monitoring = foundation.buckets["monitoring"]
    bucket = [monitoring.arn]
    statements: list[iam.Statement] = prefix_read("Capture", capture_uri or "")
    reports: list[str] = []
    if baseline is not None:
        assert baseline.data_statistics_uri and baseline.data_constraints_uri and preprocessor_key
        statements.append(
            iam.statement(
                "BaselinesRead",
                ["s3:GetObject"],
                [s3_object_arn(baseline.data_statistics_uri), s3_object_arn(baseline.data_constraints_uri)],
            )
        )
        statements.append(
            iam.statement(
                "RecordPreprocessorRead",
                ["s3:GetObject"],
                [pulumi.Output.concat(monitoring.arn, "/", preprocessor_key)],
            )
        )
        reports.append(f"{model}/data-quality/")
    if ground_truth_prefix is not None:
        labels = f"{model}/{ground_truth_prefix}"
        statements += [
            iam.s3_read_objects("GroundTruthRead", bucket, labels),
            iam.s3_list_prefix("GroundTruthList", bucket, labels),
        ]
        reports.append(f"{model}/model-quality/")
    for prefix in reports:
        kind = "DataQuality" if prefix.endswith("/data-quality/") else "ModelQuality"
        statements += [
            iam.s3_write(f"{kind}ReportsWrite", bucket, prefix),
            # The model-quality job reads back the merged predictions and labels it wrote.
            iam.s3_read_objects(f"{kind}ReportsRead", bucket, prefix),
            iam.s3_list_prefix(f"{kind}ReportsList", bucket, prefix),
        ]
    statements += [
        *platform_key(foundation),
        metrics_publish("PublishMonitorMetrics", [DATA_METRICS_NAMESPACE, MODEL_METRICS_NAMESPACE]),
        # Model Monitor's jobs are processing jobs, which publish their instance metrics here ("Monitor
        # Amazon SageMaker with Amazon CloudWatch").
        metrics_publish("ProcessingJobMetrics", [PROCESSING_JOB_METRICS_NAMESPACE]),
        *job_logs(foundation),
        *image_pull(foundation.region, image_uri),
    ]
    return statements


# --- engine platform ------------------------------------------------------------------------------


def platform_job_statements(
    foundation: Foundation,
    *,
    role_arn: pulumi.Input[str],
    capture_uri: pulumi.Input[str],
    code_uri: pulumi.Input[str],
    baseline_uri: str,
    reports_prefix: str,
    ground_truth_prefix: str | None,
    image_uri: str,
) -> list[iam.Statement]:
    """The monitoring pipeline's role (the pipeline and the processing job it starts, like the training
    pipeline's): read the capture prefix, the baseline object, the labels under ``ground_truth_prefix`` (in the
    monitoring bucket) and the step code; add reports under ``reports_prefix`` only (no delete: the history is
    append-only); publish to the platform's namespace; start its processing jobs and pass only itself to them.
    """
    monitoring = foundation.buckets["monitoring"]
    statements: list[iam.Statement] = [
        *prefix_read("Capture", capture_uri),
        iam.statement("BaselineRead", ["s3:GetObject"], [s3_object_arn(baseline_uri)]),
        # SageMaker stages monitor.py and the mlops package from the code bundle with this role.
        *prefix_read("Code", code_uri),
    ]
    if ground_truth_prefix is not None:
        statements += [
            iam.s3_read_objects("GroundTruthRead", [monitoring.arn], ground_truth_prefix),
            iam.s3_list_prefix("GroundTruthList", [monitoring.arn], ground_truth_prefix),
        ]
    statements += [
        iam.statement(
            "ReportsWrite",
            ["s3:AbortMultipartUpload", "s3:PutObject"],
            [pulumi.Output.concat(monitoring.arn, "/", reports_prefix, "*")],
        ),
        *platform_key(foundation),
        metrics_publish("PublishMonitorMetrics", [PLATFORM_METRICS_NAMESPACE]),
        metrics_publish("ProcessingJobMetrics", [PROCESSING_JOB_METRICS_NAMESPACE]),
        *job_logs(foundation),
        *image_pull(foundation.region, image_uri),
        iam.statement(
            "ProcessingJobs",
            [
                "sagemaker:AddTags",
                "sagemaker:CreateProcessingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob",
            ],
            [foundation.arn("sagemaker", f"processing-job/{PIPELINE_JOB_PREFIX}*")],
        ),
        # The pipeline passes its own role to the job it starts, and to nothing else.
        iam.statement(
            "PassOwnRole",
            ["iam:PassRole"],
            [role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
    ]
    return statements


def schedule_statements(pipeline_arn: pulumi.Input[str]) -> list[iam.Statement]:
    """EventBridge Scheduler's role: start this one pipeline."""
    return [iam.statement("StartMonitoringPipeline", ["sagemaker:StartPipelineExecution"], [pipeline_arn])]
