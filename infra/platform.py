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
from infra.security import SecurityBase, SecurityBaseArgs
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
    # Every model gets every per-model layer, in dependency order.
    feature_groups: dict[str, pulumi.Output[str]] = {}
    training_pipelines: dict[str, pulumi.Output[str]] = {}
    model_package_groups: dict[str, pulumi.Output[str]] = {}
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
        # [monitoring] the model's monitors, alarms and dashboard (after serving: they watch the endpoint).
        feature_groups[model.name] = features.feature_group_name
        training_pipelines[model.name] = training.pipeline_name
        model_package_groups[model.name] = training.model_package_group_name
    outputs["featureGroups"] = feature_groups
    outputs["trainingPipelines"] = training_pipelines
    outputs["modelPackageGroups"] = model_package_groups
    # [responders] the Lambda responders, after every model: they act on all models' alarms and events.
    return outputs


def program(versions: ModelVersionSource | None = None) -> dict[str, Any]:
    """The Pulumi program: read and validate the stack config, then build. Used by ``__main__``."""
    config = load_config()
    pulumi.log.debug(f"building {config.project}-{config.environment} in {config.region}")
    return build_platform(config, versions)
