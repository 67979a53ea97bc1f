"""Composition of the platform's layers for one stack. Only wiring: behaviour lives in the layers.

The stack-wide layers (security, lake, catalog, notifications) make the :class:`~infra.foundation.Foundation`;
every model then gets each per-model layer in dependency order (feature store, training, serving, monitoring);
the responders come last, since they act on every model's alarms and events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from infra.catalog import Catalog, CatalogArgs
from infra.config import ModelSettings, PlatformConfig, load_config
from infra.context import StackContext
from infra.datalake import DataLake, DataLakeArgs
from infra.featurestore import FeatureStore, FeatureStoreArgs
from infra.foundation import Bucket, Foundation
from infra.images import ContainerImage, ContainerImageArgs
from infra.images.registry import ImageSource
from infra.model_versions import ModelVersionSource
from infra.monitoring import ModelMonitoring, ModelMonitoringArgs, native_provider
from infra.naming import ModelNames
from infra.notifications import Notifications, NotificationsArgs
from infra.responders import ResponderModel, Responders, RespondersArgs
from infra.security import SecurityBase, SecurityBaseArgs
from infra.serving import Serving, ServingArgs
from infra.serving.fleet import FleetSource
from infra.streaming.component import OnlineFeatureTarget, StreamingTable, StreamingTableArgs
from infra.streaming.settings import stream_plans
from infra.training import TrainingPipeline, TrainingPipelineArgs, output_prefix
from mlops.features import get_spec


def build_foundation(ctx: StackContext, names: Mapping[str, ModelNames]) -> Foundation:
    """Security, lake, catalog and notifications: what every model's layers build on."""
    prefix = ctx.naming.prefix
    # Accounts that deploy from a model's registry group also read its artifacts and decrypt them.
    readers = {
        output_prefix(names[m.name].pipeline): m.training.registry_account_ids
        for m in ctx.config.models
        if m.training.registry_account_ids
    }
    consumers = tuple(sorted({account for accounts in readers.values() for account in accounts}))
    security = SecurityBase(
        f"{prefix}-security", SecurityBaseArgs(context=ctx, registry_consumer_account_ids=consumers)
    )
    key, account = security.key_arn, security.account_id
    lake = DataLake(
        f"{prefix}-lake", DataLakeArgs(context=ctx, kms_key_arn=key, account_id=account, artifact_readers=readers)
    )
    catalog = Catalog(
        f"{prefix}-catalog",
        CatalogArgs(
            context=ctx,
            bucket_names=lake.bucket_names,
            bucket_arns=lake.bucket_arns,
            kms_key_arn=key,
            account_id=account,
        ),
    )
    # The topics alarms publish to exist before the per-model layers.
    topics = Notifications(
        f"{prefix}-notifications", NotificationsArgs(context=ctx, kms_key_arn=key, account_id=account)
    )
    return Foundation(
        region=ctx.config.region,
        account_id=account,
        key_arn=key,
        buckets={zone: Bucket(name=lake.bucket_names[zone], arn=lake.bucket_arns[zone]) for zone in lake.bucket_names},
        databases=catalog.database_names,
        access_log_bucket=lake.log_bucket.bucket,
        alerts_topic_arn=topics.alerts_topic_arn,
        retrain_topic_arn=topics.retrain_topic_arn,
    )


def build_images(ctx: StackContext, foundation: Foundation) -> ContainerImage:
    """The platform's inference image: an ECR repository and the build ``pulumi up`` pushes there. Shared by
    every model (they all serve with it), and pullable by every account a model shares its registry with."""
    consumers = sorted({account for m in ctx.config.models for account in m.training.registry_account_ids})
    return ContainerImage(
        f"{ctx.naming.prefix}-inference-image",
        ContainerImageArgs(
            context=ctx,
            name="inference",
            settings=ctx.config.images.inference,
            kms_key_arn=foundation.key_arn,
            account_id=foundation.account_id,
            consumer_account_ids=tuple(consumers),
        ),
    )


def build_model(
    ctx: StackContext,
    foundation: Foundation,
    model: ModelSettings,
    names: ModelNames,
    native: pulumi.ProviderResource | None,
    image: ContainerImage,
) -> tuple[FeatureStore, TrainingPipeline, Serving | None, ModelMonitoring | None]:
    """Every per-model layer of ``model``, in dependency order."""
    spec = get_spec(model.feature_spec)
    prefix = f"{ctx.naming.prefix}-{model.name}"
    common = {"context": ctx, "foundation": foundation, "names": names}
    features = FeatureStore(f"{prefix}-features", FeatureStoreArgs(**common, settings=model.feature_store, spec=spec))
    training = TrainingPipeline(
        f"{prefix}-training",
        TrainingPipelineArgs(
            **common,
            settings=model.training,
            feature_spec=model.feature_spec,
            inference_image_uri=image.image_uri,
            monitoring_engine=model.monitoring.engine,
            description=model.description,
        ),
    )
    if model.serving is None:
        return features, training, None, None
    # After training: an endpoint serves the registry's versions.
    serving = Serving(
        f"{prefix}-serving",
        ServingArgs(
            **common,
            settings=model.serving,
            image_repository_arn=image.repository_arn,
            feature_group_arn=features.feature_group_arn,
        ),
        opts=pulumi.ResourceOptions(depends_on=[training]),
    )
    if serving.served is None:  # no approved version yet: nothing to watch
        return features, training, serving, None
    monitoring = ModelMonitoring(
        f"{prefix}-monitoring",
        ModelMonitoringArgs(
            **common,
            settings=model.monitoring,
            spec=spec,
            endpoint=serving.served,
            quality_gate=training.quality_gate,
            native_provider=native,
            code_uri=training.code_uri,
        ),
        opts=pulumi.ResourceOptions(depends_on=[serving]),
    )
    return features, training, serving, monitoring


def build_streaming(
    ctx: StackContext, foundation: Foundation, features: Mapping[str, FeatureStore]
) -> list[StreamingTable]:
    """A stream per table with ``streaming`` (into the raw zone), with the online-feature consumer of every model
    whose ``sourceTable`` it is and whose feature group has an online store. After the feature store: a consumer
    writes its model's feature group."""
    tables = []
    for plan in stream_plans(ctx.config):
        targets = tuple(
            OnlineFeatureTarget(
                model=model,
                feature_spec=ctx.config.model(model).feature_spec,
                feature_group_name=features[model].feature_group_name,
                feature_group_arn=features[model].feature_group_arn,
            )
            for model in plan.models
        )
        tables.append(
            StreamingTable(
                f"{ctx.naming.prefix}-{plan.table.name}",
                StreamingTableArgs(context=ctx, foundation=foundation, plan=plan, targets=targets),
            )
        )
    return tables


def watches_model_quality(config: PlatformConfig) -> bool:
    """True when a model's endpoint has a Model Monitor model-quality monitor (it needs the aws-native provider)."""
    return any(
        m.serving is not None
        and m.serving.strategy != "serverless"
        and m.monitoring.engine == "model-monitor"
        and m.monitoring.model_quality.enabled
        for m in config.models
    )


def build_platform(
    config: PlatformConfig,
    versions: ModelVersionSource | None = None,
    fleet: FleetSource | None = None,
    images: ImageSource | None = None,
) -> dict[str, Any]:
    """Create every layer for ``config`` and return the stack outputs.

    ``versions`` resolves what each endpoint serves (default: the SageMaker model registry); ``fleet`` what
    each endpoint runs now and ``images`` which image builds ECR holds (default: AWS, or nothing when
    ``versions`` is injected).
    """
    ctx = StackContext.from_config(config, versions, fleet, images)
    names = {m.name: ctx.naming.model_names(m.name, get_spec(m.feature_spec).version) for m in config.models}
    foundation = build_foundation(ctx, names)
    image = build_images(ctx, foundation)
    # Model-quality monitors live in pulumi-aws-native; its provider exists only when a stack has one.
    native = native_provider(ctx, f"{ctx.naming.prefix}-aws-native") if watches_model_quality(config) else None
    outputs: dict[str, dict[str, Any]] = {
        key: {} for key in ("featureGroups", "trainingPipelines", "modelPackageGroups", "endpoints", "endpointConfigs")
    }
    responder_models = []
    feature_stores: dict[str, FeatureStore] = {}
    for model in config.models:
        features, training, serving, monitoring = build_model(ctx, foundation, model, names[model.name], native, image)
        feature_stores[model.name] = features
        outputs["featureGroups"][model.name] = features.feature_group_name
        outputs["trainingPipelines"][model.name] = training.pipeline_name
        outputs["modelPackageGroups"][model.name] = training.model_package_group_name
        if serving is not None and serving.endpoint_name is not None:
            outputs["endpoints"][model.name] = serving.endpoint_name
        if serving is not None and serving.endpoint_config is not None:  # what tools/check_rollout.py expects
            outputs["endpointConfigs"][model.name] = serving.endpoint_config.name
        responder_models.append(
            ResponderModel(
                model=model.name,
                retraining=model.monitoring.retraining,
                pipeline_name=training.pipeline_name,
                pipeline_arn=training.pipeline_arn,
                model_package_group_name=training.model_package_group_name,
                retraining_alarm_names=tuple(monitoring.retraining_alarm_names) if monitoring else (),
            )
        )
    streams = build_streaming(ctx, foundation, feature_stores)
    responders = Responders(
        f"{ctx.naming.prefix}-responders",
        RespondersArgs(context=ctx, foundation=foundation, models=tuple(responder_models)),
    )
    return {
        "kmsKeyArn": foundation.key_arn,
        "lakeBuckets": {zone: bucket.name for zone, bucket in foundation.buckets.items()},
        "accessLogBucket": foundation.access_log_bucket,
        "glueDatabases": foundation.databases,
        "alertsTopicArn": foundation.alerts_topic_arn,
        "retrainTopicArn": foundation.retrain_topic_arn,
        "inferenceImage": image.image_uri,
        **outputs,
        "streams": {t.table_name: t.stream_name for t in streams},
        "deliveryStreams": {t.table_name: t.delivery_stream_name for t in streams},
        "streamConsumers": {model: fn for t in streams for model, fn in t.consumer_function_names.items()},
        "responderFunctions": responders.function_arns,
        "responderDeadLetterQueues": responders.dead_letter_queue_urls,
        "responderStateTable": responders.state_table_name,
    }


def program(
    versions: ModelVersionSource | None = None, fleet: FleetSource | None = None, images: ImageSource | None = None
) -> dict[str, Any]:
    """The Pulumi program: read and validate the stack config, then build. Used by ``__main__``."""
    config = load_config()
    pulumi.log.debug(f"building {config.project}-{config.environment} in {config.region}")
    return build_platform(config, versions, fleet, images)
