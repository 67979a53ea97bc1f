"""Training pipeline, lineage and model registry: one SageMaker pipeline and one model package group per model.

- Model registry: a SageMaker model package group (stateful: protected and retained as the stack says) that
  the pipeline's ``RegisterModel`` step adds versions to, with the approval status from the config. With
  ``training.registryAccountIds`` a resource policy lets those accounts read (describe, list, get) the group
  and its versions, e.g. a central deployment account; they cannot register, approve or delete.
- Step code: :func:`pipelines.bundle.code_bundle` published to the artifacts bucket under
  ``code/<model>/<content hash>/`` (encrypted by the bucket's default SSE-KMS). The prefix is a hash of the
  bundle, so the pipeline definition changes exactly when the code does.
- The pipeline: :func:`pipelines.factory.pipeline_definition` of the model's settings, run by an execution
  role scoped to this pipeline's jobs, outputs, model package group and experiment.
- Retraining (optional): an EventBridge schedule that starts the pipeline with a role allowed only that.

Lineage uses SageMaker Experiments through the definition's ``PipelineExperimentConfig`` (experiment = the
pipeline name, trial = the execution id; every job becomes a trial component), plus the data version, code
version and input URI recorded on every model version. A managed MLflow tracking server would add a UI but
is an always-on server billed per hour in every environment; Experiments costs nothing when idle.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.config import ModelSettings
from infra.context import StackContext
from infra.naming import Kind
from pipelines.bundle import code_bundle
from pipelines.factory import DATA_VERSION, pipeline_definition
from pipelines.settings import DEFAULT_HYPERPARAMETERS, PipelineSettings

SCHEDULED_DATA_VERSION = "scheduled-retrain"
"""``DataVersion`` a scheduled execution starts with: the model version then records that a schedule made it."""

JOB_NAME_PREFIX = "pipelines-"
"""SageMaker Pipelines names every job it starts ``pipelines-<execution id>-<step>-...`` (lowercased in ARNs)."""

_CONTENT_TYPES = {".py": "text/x-python", ".gz": "application/gzip"}


@dataclass(frozen=True, kw_only=True)
class TrainingPipelineArgs:
    """Inputs of :class:`TrainingPipeline`.

    The raw bucket holds the records the pipeline reads by default (``s3://<raw>/<model>/``, the
    ``InputDataUri`` parameter); the curated bucket is readable too, for executions pointed at it.
    """

    context: StackContext
    model: ModelSettings
    kms_key_arn: pulumi.Input[str]
    artifacts_bucket_name: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]
    raw_bucket_name: pulumi.Input[str]
    raw_bucket_arn: pulumi.Input[str]
    curated_bucket_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]


def code_version(bundle: dict[str, bytes]) -> str:
    """Content hash of a code bundle (16 hex digits): the same files give the same version."""
    digest = hashlib.sha256()
    for key in sorted(bundle):
        digest.update(key.encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(bundle[key]).digest())
    return digest.hexdigest()[:16]


def code_prefix(model: ModelSettings, version: str) -> str:
    """Key prefix of one published code version in the artifacts bucket (no trailing slash)."""
    return f"code/{model.name}/{version}"


def output_prefix(pipeline_name: str) -> str:
    """Key prefix of a pipeline's outputs in the artifacts bucket (``pipelines/<pipeline>/``)."""
    return f"pipelines/{pipeline_name}/"


def sklearn_image_repository(region: str, framework_version: str = "1.9-0") -> tuple[str, str]:
    """(account, repository) of the SageMaker scikit-learn image the pipeline's jobs run (offline lookup)."""
    from pipelines.factory import offline_sdk

    with offline_sdk(region):
        from sagemaker.core import image_uris

        uri = image_uris.retrieve("sklearn", region=region, version=framework_version, instance_type="ml.m5.large")
    registry, _, rest = uri.partition("/")
    return registry.split(".")[0], rest.split(":")[0].split("@")[0]


class TrainingPipeline(pulumi.ComponentResource):
    """A model's SageMaker pipeline, its model package group, published step code and optional schedule.

    Outputs: ``pipeline_name``, ``pipeline_arn``, ``model_package_group_name``, ``model_package_group_arn``,
    ``role_arn``, ``code_uri``; ``schedule_rule_name`` is ``None`` without ``training.retrainSchedule``.
    Raises ``infra.naming.NamingError`` at preview when a derived name breaks SageMaker's limits.
    """

    model_package_group: aws.sagemaker.ModelPackageGroup
    model_package_group_name: pulumi.Output[str]
    model_package_group_arn: pulumi.Output[str]
    registry_policy: aws.sagemaker.ModelPackageGroupPolicy | None
    code_objects: list[aws.s3.BucketObjectv2]
    code_uri: pulumi.Output[str]
    role: aws.iam.Role
    role_arn: pulumi.Output[str]
    pipeline: aws.sagemaker.Pipeline
    pipeline_name: pulumi.Output[str]
    pipeline_arn: pulumi.Output[str]
    schedule_rule: aws.cloudwatch.EventRule | None
    schedule_rule_name: pulumi.Output[str] | None

    def __init__(self, name: str, args: TrainingPipelineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:training:TrainingPipeline", name, None, opts)
        ctx, model, training = args.context, args.model, args.model.training
        tags = ctx.naming.tags(Model=model.name)
        pipeline_name = ctx.naming.name(model.name, Kind.SAGEMAKER)
        group_name = ctx.naming.name(model.name, Kind.SAGEMAKER)

        self.model_package_group = aws.sagemaker.ModelPackageGroup(
            f"{name}-registry",
            model_package_group_name=group_name,
            model_package_group_description=f"Versions of {model.name}: {model.description or model.feature_spec}",
            tags=tags,
            # Holds every registered version, its metrics and approval history.
            opts=ctx.stateful(self),
        )
        self.model_package_group_name = self.model_package_group.model_package_group_name
        self.model_package_group_arn = self.model_package_group.arn
        package_arns = self._arn(args, f"model-package/{group_name.lower()}/*")

        self.registry_policy = None
        if training.registry_account_ids:
            self.registry_policy = aws.sagemaker.ModelPackageGroupPolicy(
                f"{name}-registry-policy",
                model_package_group_name=self.model_package_group_name,
                resource_policy=registry_read_policy(
                    training.registry_account_ids, self.model_package_group_arn, package_arns
                ),
                opts=pulumi.ResourceOptions(parent=self.model_package_group),
            )

        bundle = code_bundle()
        prefix = code_prefix(model, code_version(bundle))
        self.code_objects = [
            aws.s3.BucketObjectv2(
                f"{name}-code-{key.replace('/', '-')}",
                bucket=args.artifacts_bucket_name,
                key=f"{prefix}/{key}",
                content_base64=base64.b64encode(content).decode("ascii"),
                content_type=_CONTENT_TYPES.get(key[key.rfind(".") :], "application/octet-stream"),
                tags=tags,
                # A new code version is a new key; the old objects stay so executions started before
                # the update (which reference the old prefix) still find their code.
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
            for key, content in bundle.items()
        ]
        self.code_uri = pulumi.Output.concat("s3://", args.artifacts_bucket_name, "/", prefix)

        service_role = self._role(name, args, pipeline_name, group_name, prefix, tags)
        self.role = service_role.role
        self.role_arn = self.role.arn

        definition = pulumi.Output.all(
            self.role.arn, args.artifacts_bucket_name, args.raw_bucket_name, args.kms_key_arn
        ).apply(
            lambda values: pipeline_definition(
                pipeline_settings(
                    model,
                    region=ctx.config.region,
                    pipeline_name=pipeline_name,
                    group_name=group_name,
                    role_arn=values[0],
                    artifacts_bucket=values[1],
                    raw_bucket=values[2],
                    kms_key_arn=values[3],
                    code_prefix=prefix,
                )
            )
        )
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=pipeline_name,
            pipeline_display_name=pipeline_name,
            pipeline_description=f"Preprocess, train, evaluate and register {model.name}",
            pipeline_definition=definition,
            role_arn=self.role.arn,
            tags=tags,
            # Executions need the role's permissions and the code under code_uri from their first step.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[service_role.policy, self.model_package_group, *self.code_objects]
            ),
        )
        self.pipeline_name = self.pipeline.pipeline_name
        self.pipeline_arn = self.pipeline.arn

        self.schedule_rule = None
        self.schedule_rule_name = None
        if training.retrain_schedule is not None:
            self.schedule_rule = self._schedule(name, args, training.retrain_schedule, tags)
            self.schedule_rule_name = self.schedule_rule.name

        self.register_outputs(
            {
                "pipeline_name": self.pipeline_name,
                "pipeline_arn": self.pipeline_arn,
                "model_package_group_name": self.model_package_group_name,
                "model_package_group_arn": self.model_package_group_arn,
                "role_arn": self.role_arn,
                "code_uri": self.code_uri,
                "schedule_rule_name": self.schedule_rule_name,
            }
        )

    @staticmethod
    def _arn(args: TrainingPipelineArgs, resource: str) -> pulumi.Output[str]:
        return pulumi.Output.concat(
            "arn:aws:sagemaker:", args.context.config.region, ":", args.account_id, ":", resource
        )

    def _role(
        self,
        name: str,
        args: TrainingPipelineArgs,
        pipeline_name: str,
        group_name: str,
        prefix: str,
        tags: dict[str, str],
    ) -> iam.ServiceRole:
        """The pipeline's execution role (the pipeline and every job it starts) and its inline policy."""
        ctx, model = args.context, args.model
        region = ctx.config.region
        artifacts = [args.artifacts_bucket_arn]
        outputs = output_prefix(pipeline_name)
        image_account, image_repository = sklearn_image_repository(region)
        group = group_name.lower()
        role_name = ctx.naming.name(f"{model.name}-pipeline", Kind.IAM_ROLE)
        role_arn = pulumi.Output.concat("arn:aws:iam::", args.account_id, ":role/", role_name)
        statements: list[iam.Statement] = [
            iam.s3_read_objects("CodeRead", artifacts, f"{prefix}/"),
            iam.s3_list_prefix("CodeList", artifacts, f"{prefix}/"),
            *iam.s3_read("InputData", [args.raw_bucket_arn, args.curated_bucket_arn]),
            iam.s3_write("OutputsWrite", artifacts, outputs),
            iam.s3_read_objects("OutputsRead", artifacts, outputs),
            iam.s3_list_prefix("OutputsList", artifacts, outputs),
            iam.kms_use("PlatformKeyUse", [args.kms_key_arn]),
            # Job volumes encrypted with the platform key: SageMaker creates grants for the instances.
            iam.kms_grant_for_aws_services("PlatformKeyGrants", [args.kms_key_arn]),
            iam.statement(
                "ProcessingJobs",
                [
                    "sagemaker:AddTags",
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                ],
                [self._arn(args, f"processing-job/{JOB_NAME_PREFIX}*")],
            ),
            iam.statement(
                "TrainingJobs",
                [
                    "sagemaker:AddTags",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                ],
                [self._arn(args, f"training-job/{JOB_NAME_PREFIX}*")],
            ),
            iam.statement(
                "RegisterModel",
                [
                    "sagemaker:AddTags",
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:ListModelPackages",
                ],
                [self._arn(args, f"model-package-group/{group}"), self._arn(args, f"model-package/{group}/*")],
            ),
            iam.statement(
                "Lineage",
                [
                    "sagemaker:AddAssociation",
                    "sagemaker:AddTags",
                    "sagemaker:AssociateTrialComponent",
                    "sagemaker:CreateExperiment",
                    "sagemaker:CreateTrial",
                    "sagemaker:CreateTrialComponent",
                    "sagemaker:DescribeExperiment",
                    "sagemaker:DescribeTrial",
                    "sagemaker:DescribeTrialComponent",
                    "sagemaker:UpdateTrialComponent",
                ],
                [
                    self._arn(args, f"experiment/{pipeline_name.lower()}"),
                    # Trials are named by the execution id, which SageMaker generates per execution.
                    self._arn(args, "experiment-trial/*"),
                    self._arn(args, f"experiment-trial-component/{JOB_NAME_PREFIX}*"),
                ],
            ),
            iam.logs_write(
                "JobLogs",
                [pulumi.Output.concat("arn:aws:logs:", region, ":", args.account_id, ":log-group:/aws/sagemaker/*")],
            ),
            iam.statement(
                "ImagePull",
                ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                [f"arn:aws:ecr:{region}:{image_account}:repository/{image_repository}"],
            ),
            # GetAuthorizationToken is account-wide (it returns a registry login, not access to a
            # repository): IAM supports no resource-level permission for it, so "*" is the only choice.
            iam.statement("ImageAuth", ["ecr:GetAuthorizationToken"], ["*"]),
            # The pipeline passes its own role to the jobs it starts, and to nothing else.
            iam.statement(
                "PassOwnRole",
                ["iam:PassRole"],
                [role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
        ]
        return iam.service_role(
            f"{name}-role",
            naming=ctx.naming,
            thing=f"{model.name}-pipeline",
            services=["sagemaker.amazonaws.com"],
            statements=statements,
            tags=tags,
            parent=self,
            source_account=args.account_id,
            description=f"{ctx.naming.prefix} training pipeline of {model.name}: runs its jobs and registers versions",
        )

    def _schedule(
        self, name: str, args: TrainingPipelineArgs, expression: str, tags: dict[str, str]
    ) -> aws.cloudwatch.EventRule:
        """An EventBridge rule starting the pipeline on ``expression``, with a role allowed only that."""
        ctx, model = args.context, args.model
        thing = f"{model.name}-retrain"
        rule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            name=ctx.naming.name(thing, Kind.EVENT_RULE),
            description=f"Scheduled retraining of {model.name}",
            schedule_expression=expression,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        events_role = iam.service_role(
            f"{name}-schedule-role",
            naming=ctx.naming,
            thing=thing,
            services=["events.amazonaws.com"],
            statements=[iam.statement("StartPipeline", ["sagemaker:StartPipelineExecution"], [self.pipeline.arn])],
            tags=tags,
            parent=self,
            source_account=args.account_id,
            description=f"{ctx.naming.prefix} schedule of {model.name}: starts its training pipeline",
        )
        aws.cloudwatch.EventTarget(
            f"{name}-schedule-target",
            rule=rule.name,
            arn=self.pipeline.arn,
            role_arn=events_role.arn,
            sagemaker_pipeline_target=aws.cloudwatch.EventTargetSagemakerPipelineTargetArgs(
                pipeline_parameter_lists=[
                    aws.cloudwatch.EventTargetSagemakerPipelineTargetPipelineParameterListArgs(
                        name=DATA_VERSION, value=SCHEDULED_DATA_VERSION
                    )
                ]
            ),
            opts=pulumi.ResourceOptions(parent=rule, depends_on=[events_role.policy]),
        )
        return rule


def registry_read_policy(
    account_ids: tuple[str, ...], group_arn: pulumi.Input[str], package_arns: pulumi.Input[str]
) -> pulumi.Output[str]:
    """Resource policy of a model package group: the accounts may read the group and its versions, nothing more."""
    principal: dict[str, Any] = {"AWS": [f"arn:aws:iam::{account}:root" for account in account_ids]}
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadModelPackageGroup",
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": [
                        "sagemaker:DescribeModelPackageGroup",
                        "sagemaker:GetModelPackageGroupPolicy",
                        "sagemaker:ListModelPackages",
                    ],
                    "Resource": group_arn,
                },
                {
                    "Sid": "ReadModelPackages",
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
                    "Resource": package_arns,
                },
            ],
        }
    )


def pipeline_settings(
    model: ModelSettings,
    *,
    region: str,
    pipeline_name: str,
    group_name: str,
    role_arn: str,
    artifacts_bucket: str,
    raw_bucket: str,
    kms_key_arn: str,
    code_prefix: str,
) -> PipelineSettings:
    """The factory settings of a model's pipeline from its config and the resolved resource values."""
    training = model.training
    return PipelineSettings(
        model_name=model.name,
        pipeline_name=pipeline_name,
        model_package_group_name=group_name,
        feature_spec=model.feature_spec,
        role_arn=role_arn,
        region=region,
        default_bucket=artifacts_bucket,
        default_bucket_prefix="pipelines",
        code_uri=f"s3://{artifacts_bucket}/{code_prefix}",
        input_data_uri=f"s3://{raw_bucket}/{model.name}",
        code_version=code_prefix.rsplit("/", 1)[-1],
        processing_instance_type=training.processing_instance_type,
        processing_instance_count=training.processing_instance_count,
        training_instance_type=training.training_instance_type,
        training_instance_count=training.training_instance_count,
        hyperparameters={**DEFAULT_HYPERPARAMETERS, **training.hyperparameters},
        metric_name=training.metric_name,
        metric_threshold=training.metric_threshold,
        approval_status=training.approval_status,
        max_runtime_seconds=training.max_runtime_seconds,
        kms_key_arn=kms_key_arn,
    )
