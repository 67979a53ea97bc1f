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
from typing import TYPE_CHECKING, Literal

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.foundation import Foundation
from infra.naming import Kind, ModelNames
from infra.training.iam import execution_role_statements, registry_read_policy
from infra.training.settings import TrainingSettings
from pipelines.bundle import code_bundle
from pipelines.factory import DATA_VERSION, pipeline_definition
from pipelines.images import image_uri, repository_of
from pipelines.settings import DEFAULT_HYPERPARAMETERS, PipelineSettings

if TYPE_CHECKING:
    from infra.context import StackContext

SCHEDULED_DATA_VERSION = "scheduled-retrain"
"""``DataVersion`` a scheduled execution starts with: the model version then records that a schedule made it."""


_CONTENT_TYPES = {".py": "text/x-python", ".gz": "application/gzip"}


@dataclass(frozen=True)
class QualityGate:
    """The metric a new version must reach to be registered: what the monitoring layer watches live."""

    metric_name: str
    threshold: float


@dataclass(frozen=True, kw_only=True)
class TrainingPipelineArgs:
    """Inputs of :class:`TrainingPipeline`: the model's names and training settings, its feature spec's name
    and its description.

    The raw bucket holds the records the pipeline reads by default (``s3://<raw>/<model>/``, the
    ``InputDataUri`` parameter); the curated bucket is readable too, for executions pointed at it.
    """

    context: StackContext
    foundation: Foundation
    names: ModelNames
    settings: TrainingSettings
    feature_spec: str
    inference_image_uri: pulumi.Input[str]
    """The platform's inference image by digest (:class:`infra.images.ContainerImage`): every version the
    pipeline registers names it, so a version and the code that serves it are one immutable pair."""
    monitoring_engine: Literal["platform", "model-monitor"] = "platform"
    """The model's ``monitoring.engine``: which drift baseline each registered version carries."""
    description: str = ""


def code_version(bundle: dict[str, bytes]) -> str:
    """Content hash of a code bundle (16 hex digits): the same files give the same version."""
    digest = hashlib.sha256()
    for key in sorted(bundle):
        digest.update(key.encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(bundle[key]).digest())
    return digest.hexdigest()[:16]


def code_prefix(model: str, version: str) -> str:
    """Key prefix of one published code version in the artifacts bucket (no trailing slash)."""
    return f"code/{model}/{version}"


def sklearn_image_repository(region: str, framework_version: str = "1.9-0") -> tuple[str, str]:
    """(account, repository) of the SageMaker scikit-learn image the pipeline's jobs run (the SDK's bundled
    image table, read without importing the SDK: :func:`pipelines.images.image_uri`)."""
    return repository_of(image_uri("sklearn", region, framework_version, "ml.m5.large"))


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
    quality_gate: QualityGate

    def __init__(self, name: str, args: TrainingPipelineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:training:TrainingPipeline", name, None, opts)
        ctx, names, training, foundation = args.context, args.names, args.settings, args.foundation
        model = names.model
        tags = ctx.naming.tags(Model=model)
        pipeline_name = names.pipeline
        group_name = names.package_group
        artifacts = foundation.buckets["artifacts"]

        self.model_package_group = aws.sagemaker.ModelPackageGroup(
            f"{name}-registry",
            model_package_group_name=group_name,
            model_package_group_description=f"Versions of {model}: {args.description or args.feature_spec}",
            tags=tags,
            # Holds every registered version, its metrics and approval history.
            opts=ctx.stateful(self),
        )
        self.model_package_group_name = self.model_package_group.model_package_group_name
        self.model_package_group_arn = self.model_package_group.arn
        package_arns = foundation.arn("sagemaker", f"model-package/{group_name.lower()}/*")

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
                bucket=artifacts.name,
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
        self.code_uri = pulumi.Output.concat("s3://", artifacts.name, "/", prefix)

        service_role = self._role(name, args, prefix, tags)
        self.role = service_role.role
        self.role_arn = self.role.arn

        definition = pulumi.Output.all(
            self.role.arn, artifacts.name, foundation.buckets["raw"].name, foundation.key_arn, args.inference_image_uri
        ).apply(
            lambda values: pipeline_definition(
                pipeline_settings(
                    model,
                    args.feature_spec,
                    training,
                    region=ctx.config.region,
                    pipeline_name=pipeline_name,
                    group_name=group_name,
                    role_arn=values[0],
                    artifacts_bucket=values[1],
                    raw_bucket=values[2],
                    kms_key_arn=values[3],
                    code_prefix=prefix,
                    inference_image_uri=values[4],
                    monitoring_engine=args.monitoring_engine,
                )
            )
        )
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=pipeline_name,
            pipeline_display_name=pipeline_name,
            pipeline_description=f"Preprocess, train, evaluate and register {model}",
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

        self.quality_gate = QualityGate(metric_name=training.metric_name, threshold=training.metric_threshold)
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

    def _role(self, name: str, args: TrainingPipelineArgs, prefix: str, tags: dict[str, str]) -> iam.ServiceRole:
        """The pipeline's execution role (the pipeline and every job it starts) and its inline policy."""
        ctx, names = args.context, args.names
        return iam.service_role(
            f"{name}-role",
            naming=ctx.naming,
            thing=f"{names.model}-pipeline",
            services=["sagemaker.amazonaws.com"],
            statements=execution_role_statements(
                args.foundation,
                ctx.naming,
                names,
                code_prefix=prefix,
                image=sklearn_image_repository(ctx.config.region),
            ),
            tags=tags,
            parent=self,
            source_account=args.foundation.account_id,
            description=f"{ctx.naming.prefix} training pipeline of {names.model}: runs its jobs and registers versions",
        )

    def _schedule(
        self, name: str, args: TrainingPipelineArgs, expression: str, tags: dict[str, str]
    ) -> aws.cloudwatch.EventRule:
        """An EventBridge rule starting the pipeline on ``expression``, with a role allowed only that."""
        ctx, model = args.context, args.names.model
        thing = f"{model}-retrain"
        rule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            name=ctx.naming.name(thing, Kind.EVENT_RULE),
            description=f"Scheduled retraining of {model}",
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
            source_account=args.foundation.account_id,
            description=f"{ctx.naming.prefix} schedule of {model}: starts its training pipeline",
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


def pipeline_settings(
    model: str,
    feature_spec: str,
    training: TrainingSettings,
    *,
    region: str,
    pipeline_name: str,
    group_name: str,
    role_arn: str,
    artifacts_bucket: str,
    raw_bucket: str,
    kms_key_arn: str,
    code_prefix: str,
    inference_image_uri: str,
    monitoring_engine: Literal["platform", "model-monitor"] = "platform",
) -> PipelineSettings:
    """The factory settings of a model's pipeline from its config and the resolved resource values."""
    return PipelineSettings(
        model_name=model,
        pipeline_name=pipeline_name,
        model_package_group_name=group_name,
        feature_spec=feature_spec,
        role_arn=role_arn,
        region=region,
        default_bucket=artifacts_bucket,
        default_bucket_prefix="pipelines",
        code_uri=f"s3://{artifacts_bucket}/{code_prefix}",
        input_data_uri=f"s3://{raw_bucket}/{model}",
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
        inference_image_uri=inference_image_uri,
        monitoring_engine=monitoring_engine,
    )
