"""Feature store: one SageMaker feature group per model, built from the model's feature specification.

The feature group's columns come from the same :class:`mlops.features.FeatureSpec` the training
pipeline and the inference server use (``mlops.features.spec.feature_definitions``): the record
identifier and the event time are ``String`` features (the event time as ISO-8601 UTC,
``2024-05-01T12:00:00Z``, which Feature Store accepts and Athena parses with
``from_iso8601_timestamp``), followed by the spec's features in spec order.

- Online store (optional): KMS-encrypted with the platform key, optional TTL in days.
- Offline store (optional): ``s3://<features bucket>/<model>/`` in the lake, SSE-KMS with the
  platform key, registered in Glue (in the catalog's features database when one is given, else in
  the ``sagemaker_featurestore`` database Feature Store creates), Iceberg or Glue table format.
- A role SageMaker assumes: the platform key, and with an offline store S3 only under the model's
  prefix and the Glue database and tables of the offline store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.featurestore.settings import FeatureStoreSettings
from infra.foundation import Foundation
from infra.naming import ModelNames
from mlops.features.spec import FeatureSpec, feature_definitions, feature_store_problems

if TYPE_CHECKING:
    from infra.context import StackContext

DEFAULT_GLUE_DATABASE = "sagemaker_featurestore"
"""The database Feature Store registers offline stores in when no ``DataCatalogConfig`` is given."""

GLUE_DATA_CATALOG = "AwsDataCatalog"


@dataclass(frozen=True, kw_only=True)
class FeatureStoreArgs:
    """Inputs of :class:`FeatureStore`: the model's names, its feature-store settings and its feature spec.

    ``register_in_catalog``: register the offline table in the catalog's features database (the platform
    does); ``False`` lets Feature Store register it in its own ``sagemaker_featurestore`` database.
    """

    context: StackContext
    foundation: Foundation
    names: ModelNames
    settings: FeatureStoreSettings
    spec: FeatureSpec
    register_in_catalog: bool = True


def offline_store_prefix(model: str) -> str:
    """The key prefix of a model's offline store in the features bucket (``<model>/``)."""
    return f"{model}/"


class FeatureStore(pulumi.ComponentResource):
    """A model's feature group and the role Feature Store uses to write its offline store.

    Outputs: ``feature_group_name``, ``feature_group_arn``, ``role_arn``, ``offline_store_uri``
    (``None`` without an offline store) and ``glue_table_name`` (``None`` when Feature Store names
    the table itself or there is no offline store).
    Raises ``ValueError`` at preview when the spec cannot be a feature group.
    """

    feature_group: aws.sagemaker.FeatureGroup
    feature_group_name: pulumi.Output[str]
    feature_group_arn: pulumi.Output[str]
    role: aws.iam.Role
    role_arn: pulumi.Output[str]
    offline_store_uri: pulumi.Output[str] | None
    glue_table_name: str | None

    def __init__(self, name: str, args: FeatureStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:features:FeatureStore", name, None, opts)
        ctx, names, spec, store = args.context, args.names, args.spec, args.settings
        model, features = names.model, args.foundation.buckets["features"]
        problems = feature_store_problems(spec)
        if problems:
            raise ValueError(f"feature spec '{spec.name}' of model '{model}': {'; '.join(problems)}")

        prefix = offline_store_prefix(model)
        tags = ctx.naming.tags(Model=model, FeatureSpec=f"{spec.name}-v{spec.version}")
        # The spec version is part of the name: Feature Store cannot drop or retype features in
        # place, so a new spec version is a new feature group beside the old one's offline data.
        group_name = names.feature_group
        glue_database = args.foundation.databases["features"] if args.register_in_catalog else None
        self.glue_table_name = names.offline_table if store.offline_store and glue_database is not None else None

        service_role = self._role(name, args, prefix, tags)
        self.role = service_role.role

        online = None
        if store.online_store:
            online = aws.sagemaker.FeatureGroupOnlineStoreConfigArgs(
                enable_online_store=True,
                storage_type="Standard",  # InMemory has no KMS security config and no offline replication
                security_config=aws.sagemaker.FeatureGroupOnlineStoreConfigSecurityConfigArgs(
                    kms_key_id=args.foundation.key_arn
                ),
                ttl_duration=aws.sagemaker.FeatureGroupOnlineStoreConfigTtlDurationArgs(
                    unit="Days", value=store.online_ttl_days
                )
                if store.online_ttl_days is not None
                else None,
            )

        offline = None
        self.offline_store_uri = None
        if store.offline_store:
            self.offline_store_uri = pulumi.Output.concat("s3://", features.name, "/", prefix)
            offline = aws.sagemaker.FeatureGroupOfflineStoreConfigArgs(
                s3_storage_config=aws.sagemaker.FeatureGroupOfflineStoreConfigS3StorageConfigArgs(
                    s3_uri=self.offline_store_uri,
                    kms_key_id=args.foundation.key_arn,
                ),
                disable_glue_table_creation=False,
                table_format=store.offline_table_format,
                data_catalog_config=aws.sagemaker.FeatureGroupOfflineStoreConfigDataCatalogConfigArgs(
                    catalog=GLUE_DATA_CATALOG,
                    database=glue_database,
                    table_name=self.glue_table_name,
                )
                if glue_database is not None
                else None,
            )

        self.feature_group = aws.sagemaker.FeatureGroup(
            f"{name}-group",
            feature_group_name=group_name,
            description=f"{spec.description or spec.name} (feature spec {spec.name} v{spec.version})",
            record_identifier_feature_name=spec.record_identifier,
            event_time_feature_name=spec.event_time,
            feature_definitions=[
                aws.sagemaker.FeatureGroupFeatureDefinitionArgs(feature_name=feature, feature_type=kind)
                for feature, kind in feature_definitions(spec)
            ],
            online_store_config=online,
            offline_store_config=offline,
            role_arn=self.role.arn,
            tags=tags,
            # The online store holds the only copy of the latest values; offline data stays in S3.
            # CreateFeatureGroup checks the role's access: the inline policy must exist first.
            opts=ctx.stateful(self, depends_on=[service_role.policy]),
        )
        self.feature_group_name = self.feature_group.feature_group_name
        self.feature_group_arn = self.feature_group.arn
        self.role_arn = self.role.arn
        self.register_outputs(
            {
                "feature_group_name": self.feature_group_name,
                "feature_group_arn": self.feature_group_arn,
                "role_arn": self.role_arn,
                "offline_store_uri": self.offline_store_uri,
            }
        )

    def _role(self, name: str, args: FeatureStoreArgs, prefix: str, tags: dict[str, str]) -> iam.ServiceRole:
        """The role in the feature group's ``role_arn`` and its inline policy.

        The provider requires a role even for an online-only group; it then gets the platform key
        only (Feature Store creates grants for the online store's encryption). With an offline
        store it also writes the model's prefix of the features bucket and its Glue table.
        """
        ctx, model, foundation = args.context, args.names.model, args.foundation
        bucket = [foundation.buckets["features"].arn]
        statements: list[iam.Statement] = [
            iam.kms_use("PlatformKeyUse", [foundation.key_arn]),
            iam.kms_grant_for_aws_services("PlatformKeyGrants", [foundation.key_arn]),
        ]
        if args.settings.offline_store:
            database = foundation.databases["features"] if args.register_in_catalog else DEFAULT_GLUE_DATABASE
            glue = iam.glue_arns(ctx.config.region, foundation.account_id, database)
            statements += [
                iam.s3_write("OfflineStoreWrite", bucket, prefix),
                iam.s3_read_objects("OfflineStoreRead", bucket, prefix),  # Iceberg metadata, manifests
                iam.s3_list_prefix("OfflineStoreList", bucket, prefix),
                *iam.s3_offline_store_acl("OfflineStoreAcl", bucket, prefix),
                iam.glue_catalog_read("OfflineStoreCatalogRead", glue),
                iam.glue_catalog_write("OfflineStoreCatalogWrite", glue),
            ]
        thing = f"{model}-fs"
        return iam.service_role(
            f"{name}-role",
            naming=ctx.naming,
            thing=thing,
            services=["sagemaker.amazonaws.com"],
            statements=statements,
            tags=tags,
            parent=self,
            # No aws:SourceAccount condition: AWS documents that confused-deputy condition for the SageMaker
            # features that send it, and Feature Store is not among them; a condition the service does not
            # send would make CreateFeatureGroup fail. The role is usable only through this account's PassRole.
            description=f"{ctx.naming.prefix} feature store of {model}: writes its offline store",
        )
