"""Composition of the platform's layers for one stack. Only wiring: behaviour lives in the components."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.catalog import Catalog, CatalogArgs
from infra.config import PlatformConfig, load_config
from infra.context import StackContext
from infra.datalake import DataLake, DataLakeArgs
from infra.featurestore import FeatureStore, FeatureStoreArgs
from infra.model_versions import ModelVersionSource
from infra.monitoring import ModelMonitoring, ModelMonitoringArgs, native_provider
from infra.naming import Kind
from infra.notifications import Notifications, NotificationsArgs
from infra.responders import ResponderModel, Responders, RespondersArgs
from infra.security import SecurityBase, SecurityBaseArgs
from infra.serving import Serving, ServingArgs
from infra.training import TrainingPipeline, TrainingPipelineArgs
from mlops.features import get_spec


def build_platform(config: PlatformConfig, versions: ModelVersionSource | None = None) -> dict[str, Any]:
    """Create every layer for ``config`` and return the stack outputs.

    ``versions`` resolves what each endpoint serves; default: the SageMaker model registry.
    """
    ctx = StackContext.from_config(config, versions)
    prefix = ctx.naming.prefix

    security = SecurityBase(f"{prefix}-security", SecurityBaseArgs(context=ctx))
    lake = DataLake(
        f"{prefix}-lake",
        DataLakeArgs(context=ctx, kms_key_arn=security.key_arn, account_id=security.account_id),
    )
    outputs: dict[str, Any] = {
        "kmsKeyArn": security.key_arn,
        "lakeBuckets": lake.bucket_names,
        "accessLogBucket": lake.log_bucket.bucket,
    }
    catalog = Catalog(
        f"{prefix}-catalog",
        CatalogArgs(
            context=ctx,
            bucket_names=lake.bucket_names,
            bucket_arns=lake.bucket_arns,
            kms_key_arn=security.key_arn,
            account_id=security.account_id,
        ),
    )
    outputs["glueDatabases"] = catalog.database_names
    # [notifications] topics the alarms publish to are created here, before the per-model layers.
    notifications = Notifications(
        f"{prefix}-notifications",
        NotificationsArgs(context=ctx, kms_key_arn=security.key_arn, account_id=security.account_id),
    )
    outputs["alertsTopicArn"] = notifications.alerts_topic_arn
    outputs["retrainTopicArn"] = notifications.retrain_topic_arn
    # Model-quality monitors live in pulumi-aws-native; its provider exists only when a stack has one.
    watches_quality = any(
        m.serving is not None and m.serving.strategy != "serverless" and m.monitoring.model_quality.enabled
        for m in config.models
    )
    native = native_provider(ctx, f"{prefix}-aws-native") if watches_quality else None
    monitors: dict[str, ModelMonitoring] = {}
    serving: Serving | None  # the current model's endpoint (set at [serving] when the model is served)
    # Every model gets every per-model layer, in dependency order.
    feature_groups: dict[str, pulumi.Output[str]] = {}
    training_pipelines: dict[str, pulumi.Output[str]] = {}
    model_package_groups: dict[str, pulumi.Output[str]] = {}
    responder_models: list[ResponderModel] = []
    endpoints: dict[str, pulumi.Output[str]] = {}
    for model in config.models:
        features = FeatureStore(
            f"{prefix}-{model.name}-features",
            FeatureStoreArgs(
                context=ctx,
                model=model,
                spec=get_spec(model.feature_spec),
                kms_key_arn=security.key_arn,
                features_bucket_name=lake.bucket_names["features"],
                features_bucket_arn=lake.bucket_arns["features"],
                glue_database_name=catalog.database_names["features"],
                account_id=security.account_id,
            ),
        )
        training = TrainingPipeline(
            f"{prefix}-{model.name}-training",
            TrainingPipelineArgs(
                context=ctx,
                model=model,
                kms_key_arn=security.key_arn,
                artifacts_bucket_name=lake.bucket_names["artifacts"],
                artifacts_bucket_arn=lake.bucket_arns["artifacts"],
                raw_bucket_name=lake.bucket_names["raw"],
                raw_bucket_arn=lake.bucket_arns["raw"],
                curated_bucket_arn=lake.bucket_arns["curated"],
                account_id=security.account_id,
            ),
        )
        # [serving] the model's endpoint (after training: it serves the registry's versions).
        serving = None
        if model.serving is not None:
            serving = Serving(
                f"{prefix}-{model.name}-serving",
                ServingArgs(
                    context=ctx,
                    model=model,
                    kms_key_arn=security.key_arn,
                    account_id=security.account_id,
                    monitoring_bucket_name=lake.bucket_names["monitoring"],
                    monitoring_bucket_arn=lake.bucket_arns["monitoring"],
                    artifacts_bucket_arn=lake.bucket_arns["artifacts"],
                    # The group's physical name, as TrainingPipeline names it (a plain string: the registry
                    # is read while the program builds the graph).
                    model_package_group_name=ctx.naming.name(model.name, Kind.SAGEMAKER),
                    # On-call hears about a rollback (the deployment workflow fails too, but humans act).
                    alarm_action_arns=(notifications.alerts_topic_arn,),
                ),
                opts=pulumi.ResourceOptions(depends_on=[training]),
            )
            if serving.endpoint_name is not None:
                endpoints[model.name] = serving.endpoint_name
        # [monitoring] the model's monitors, alarms and dashboard (after serving: they watch the endpoint).
        if serving is not None and serving.endpoint_name is not None:
            monitors[model.name] = ModelMonitoring(
                f"{prefix}-{model.name}-monitoring",
                ModelMonitoringArgs(
                    context=ctx,
                    model=model,
                    feature_names=tuple(get_spec(model.feature_spec).feature_names),
                    endpoint_name=serving.endpoint_name,
                    variant_names=serving.variant_names,
                    data_capture_uri=serving.data_capture_uri,
                    # Baselines of the version the primary production variant serves.
                    served_version_arn=serving.served_versions.get(serving.variant_names[0]),
                    kms_key_arn=security.key_arn,
                    account_id=security.account_id,
                    monitoring_bucket_name=lake.bucket_names["monitoring"],
                    monitoring_bucket_arn=lake.bucket_arns["monitoring"],
                    alerts_topic_arn=notifications.alerts_topic_arn,
                    retrain_topic_arn=notifications.retrain_topic_arn,
                    native_provider=native,
                ),
                opts=pulumi.ResourceOptions(depends_on=[serving]),
            )
        feature_groups[model.name] = features.feature_group_name
        training_pipelines[model.name] = training.pipeline_name
        model_package_groups[model.name] = training.model_package_group_name
        retraining_alarms = monitors[model.name].retraining_alarm_names if model.name in monitors else []
        responder_models.append(
            ResponderModel(
                settings=model,
                pipeline_name=training.pipeline_name,
                pipeline_arn=training.pipeline_arn,
                model_package_group_name=training.model_package_group_name,
                retraining_alarm_names=tuple(retraining_alarms),
            )
        )
    outputs["featureGroups"] = feature_groups
    outputs["trainingPipelines"] = training_pipelines
    outputs["modelPackageGroups"] = model_package_groups
    outputs["endpoints"] = endpoints
    # [responders] the Lambda responders, after every model: they act on all models' alarms and events.
    responders = Responders(
        f"{prefix}-responders",
        RespondersArgs(
            context=ctx,
            kms_key_arn=security.key_arn,
            account_id=security.account_id,
            alerts_topic_arn=notifications.alerts_topic_arn,
            retrain_topic_arn=notifications.retrain_topic_arn,
            models=tuple(responder_models),
        ),
    )
    outputs["responderFunctions"] = responders.function_arns
    outputs["responderDeadLetterQueues"] = responders.dead_letter_queue_urls
    outputs["responderStateTable"] = responders.state_table_name
    return outputs


def program(versions: ModelVersionSource | None = None) -> dict[str, Any]:
    """The Pulumi program: read and validate the stack config, then build. Used by ``__main__``."""
    config = load_config()
    pulumi.log.debug(f"building {config.project}-{config.environment} in {config.region}")
    return build_platform(config, versions)
