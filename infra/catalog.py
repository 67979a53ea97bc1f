"""Catalog: a Glue database per lake zone, encrypted crawlers and explicitly declared tables.

Declared tables (``catalog.tables`` in the stack file) are owned by Pulumi. Crawlers discover
everything else, and only ever add: their schema change policy logs changes and deletions instead
of applying them, so a crawler never rewrites or drops a table Pulumi created (Pulumi stays the
only writer of what it created) and never drops a table because a prefix is briefly empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import pulumi
import pulumi_aws as aws
from pydantic import AfterValidator, Field, StringConstraints, model_validator

from infra import iam
from infra.datalake import INGESTION_COMMITS_PREFIX, INGESTION_STAGING_PREFIX
from infra.monitoring.reports import (
    JSON_SERDE,
    PARTITION_KEYS,
    REPORT_COLUMNS,
    REPORTS_PREFIX,
    REPORTS_TABLE,
    TEXT_INPUT_FORMAT,
    TEXT_OUTPUT_FORMAT,
    projection_parameters,
)
from infra.naming import Kind, Naming, NamingError
from infra.streaming.settings import StreamingSettings, raw_table_parameters, streamed_raw_prefixes
from infra.types import (
    ZONE_NAMES,
    CronExpression,
    KeyedValueError,
    KeyPrefix,
    Section,
    Zone,
    glue_comment_text,
    glue_description_text,
)

if TYPE_CHECKING:
    from infra.config import PlatformConfig
    from infra.context import StackContext


# --- settings (stack key ``catalog``) ---------------------------------------------------------

GlueName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=255)]
_GLUE_PRIMITIVES = (
    "string|int|bigint|smallint|tinyint|double|float|boolean|date|timestamp|binary|decimal\\(\\d+,\\s*\\d+\\)"
)
_GLUE_TYPE = re.compile(rf"^({_GLUE_PRIMITIVES}|array<({_GLUE_PRIMITIVES})>)$")


GlueType = Annotated[str, StringConstraints(pattern=_GLUE_TYPE.pattern)]
# Glue's API model (CreateTable): Column.Comment is a CommentString of at most 255 characters without line breaks,
# TableInput.Description a DescriptionString of at most 2048.
GlueComment = Annotated[str, StringConstraints(max_length=255), AfterValidator(glue_comment_text)]
GlueDescription = Annotated[str, StringConstraints(max_length=2048), AfterValidator(glue_description_text)]


def _crawler_exclusions(zone: str, reporting: bool, streamed: Sequence[str] = ()) -> list[str] | None:
    """What a zone's crawler must not catalogue: the drift reports (they have their own table with partition
    projection), the ingestion's staging area (half-written batches, never a table) and, in the raw zone, what the
    streams deliver (``streamed``: their data has a Pulumi-managed table, their error files are no table)."""
    if zone == "monitoring" and reporting:
        return [f"{REPORTS_PREFIX}**"]
    if zone == "curated":  # ingestion's staging area and its commit markers (JSON, one per batch)
        return [f"{INGESTION_STAGING_PREFIX}**", f"{INGESTION_COMMITS_PREFIX}**"]
    if zone == "raw" and streamed:
        return [f"{prefix}**" for prefix in streamed]
    return None


class ColumnSpec(Section):
    """One column of a Glue table."""

    name: GlueName = Field(description="Column name: lowercase letters, digits and '_'.")
    type: GlueType = Field(
        description="Hive type: string, int, bigint, double, boolean, date, timestamp, decimal(p,s), array<...>."
    )
    comment: GlueComment = Field(
        default="", description="Column comment in the catalog (at most 255 characters, one line)."
    )


class TableSpec(Section):
    """A Glue table declared with an explicit schema (Parquet files under ``s3://<zone bucket>/<prefix>``)."""

    name: GlueName = Field(description="Table name: lowercase letters, digits and '_'.")
    zone: Zone = Field(default="curated", description="Lake zone (bucket and Glue database) of the table.")
    prefix: KeyPrefix | None = Field(
        default=None, description="S3 key prefix of the table's files, ending with '/'; default '<name>/'."
    )
    description: GlueDescription = Field(
        default="", description="Table description in the catalog (at most 2048 characters)."
    )
    columns: tuple[ColumnSpec, ...] = Field(min_length=1, description="Data columns, in file order.")
    partition_keys: tuple[ColumnSpec, ...] = Field(
        default=(), description="Partition columns (Hive-style key=value folders)."
    )
    streaming: StreamingSettings | None = Field(
        default=None,
        description="Real-time ingestion: a KMS-encrypted Kinesis stream delivered by Firehose into the raw zone as "
        "Parquet (partition dt, the event date), and the online-feature consumer of the models reading this table; "
        "null: batch only.",
    )

    @model_validator(mode="after")
    def _unique_columns(self) -> TableSpec:
        names = [c.name for c in (*self.columns, *self.partition_keys)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(
                f"table '{self.name}' declares column(s) {dupes} more than once (columns and partitionKeys share one namespace)"
            )
        return self

    @property
    def location_prefix(self) -> str:
        return self.prefix or f"{self.name}/"


class CatalogSettings(Section):
    """The Glue catalog over the lake."""

    crawler_schedule: CronExpression | None = Field(
        default="cron(0 3 * * ? *)",
        description="EventBridge cron expression for the crawlers; null: run on demand only.",
    )
    crawled_zones: tuple[Zone, ...] = Field(
        default=("raw", "curated"), description="Zones that get a scheduled crawler."
    )
    tables: tuple[TableSpec, ...] = Field(default=(), description="Tables declared with explicit schemas.")

    @model_validator(mode="after")
    def _unique(self) -> CatalogSettings:
        if len(set(self.crawled_zones)) != len(self.crawled_zones):
            raise ValueError(f"crawledZones lists a zone twice: {list(self.crawled_zones)}")
        if "features" in self.crawled_zones:
            raise ValueError(
                "crawledZones must not include 'features': the feature store registers its offline tables "
                "itself and a crawler would catalogue them twice; allowed: raw, curated, artifacts, monitoring"
            )
        keys = [(t.zone, t.name) for t in self.tables]
        dupes = sorted({f"{z}.{n}" for z, n in keys if keys.count((z, n)) > 1})
        if dupes:
            raise ValueError(f"tables declared twice: {dupes}")
        return self


def table_collisions(config: PlatformConfig) -> list[KeyedValueError]:
    """Declared tables (``catalog.tables``) that would take the name of a table another layer creates in the same
    database: a feature group's offline-store table (features zone) or the drift reports table (monitoring zone).
    Glue refuses the second CreateTable (AlreadyExistsException); the mocks would not."""
    from mlops.features import get_spec  # each model's spec was resolved when its settings were validated

    owners: dict[tuple[str, str], str] = {}
    naming = Naming(project=config.project, environment=config.environment)
    for model in config.models:
        if not model.feature_store.offline_store:
            continue
        try:
            table = naming.model_names(model.name, get_spec(model.feature_spec).version).offline_table
        except NamingError:
            continue  # the name itself is refused when the feature store layer asks for it
        owners[("features", table)] = f"the offline-store table of the feature group of model '{model.name}'"
    if drift_report_models(config):
        owners[("monitoring", REPORTS_TABLE)] = "the drift reports table the platform's monitors write"
    return [
        KeyedValueError(
            ("catalog", "tables", index),
            f"table {spec.zone}.{spec.name} is {owners[(spec.zone, spec.name)]}; give the declared table another "
            "name or zone",
        )
        for index, spec in enumerate(config.catalog.tables)
        if (spec.zone, spec.name) in owners
    ]


PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

CRAWLER_LOG_GROUP_PREFIX = "/aws-glue/crawlers"
"""Crawlers log to ``/aws-glue/crawlers``; with an encrypting security configuration Glue uses
``/aws-glue/crawlers-role/<role>-<security configuration>`` instead. One ARN prefix covers both."""

# Glue rejects CRAWL_NEW_FOLDERS_ONLY unless both schema-change behaviours are LOG
# ("The SchemaChangePolicy for 'Crawl new folders only' Amazon S3 target can have only LOG ...").
# LOG/LOG is also what keeps crawlers from rewriting Pulumi-managed tables.
RECRAWL_BEHAVIOR = "CRAWL_NEW_FOLDERS_ONLY"
SCHEMA_UPDATE_BEHAVIOR = "LOG"
SCHEMA_DELETE_BEHAVIOR = "LOG"

# New partitions take the table's schema; compatible folders become one table, not one per folder.
CRAWLER_CONFIGURATION = json.dumps(
    {
        "Version": 1.0,
        "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
        "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"},
    },
    sort_keys=True,
)


@dataclass(frozen=True, kw_only=True)
class CatalogArgs:
    """Inputs of :class:`Catalog`.

    ``bucket_names`` and ``bucket_arns`` are keyed by lake zone (every zone in ``ZONE_NAMES``);
    ``kms_key_arn`` is the platform key that crawler logs, bookmarks and outputs are encrypted with.
    """

    context: StackContext
    bucket_names: Mapping[str, pulumi.Input[str]]
    bucket_arns: Mapping[str, pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]


def crawler_logs_write(sid: str, region: str, account_id: pulumi.Input[str]) -> iam.Statement:
    """Write crawler logs, and associate the platform key with the crawler's encrypted log group.

    ``logs:AssociateKmsKey`` is what Glue calls, as the crawler role, when its security
    configuration encrypts CloudWatch Logs. Scoped to the ``/aws-glue/crawlers*`` log groups.
    """
    prefix = pulumi.Output.concat(
        "arn:aws:logs:", region, ":", account_id, ":log-group:", CRAWLER_LOG_GROUP_PREFIX, "*"
    )
    return iam.statement(
        sid, ["logs:AssociateKmsKey", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], [prefix]
    )


def crawler_statements(
    *,
    region: str,
    account_id: pulumi.Input[str],
    database_name: pulumi.Input[str],
    bucket_arns: Sequence[pulumi.Input[str]],
    kms_key_arn: pulumi.Input[str],
) -> list[iam.Statement]:
    """Least privilege for one zone's crawler: read its bucket(s), catalogue into its database only."""
    glue_resources = iam.glue_arns(region, account_id, database_name)
    return [
        *iam.s3_read("ZoneData", bucket_arns),
        iam.glue_catalog_read("CatalogRead", glue_resources),
        iam.glue_catalog_write("CatalogWrite", glue_resources),
        iam.kms_use("PlatformKey", [kms_key_arn]),
        crawler_logs_write("CrawlerLogs", region, account_id),
    ]


def _columns(columns: Sequence[ColumnSpec]) -> list[aws.glue.CatalogTableStorageDescriptorColumnArgs]:
    return [
        aws.glue.CatalogTableStorageDescriptorColumnArgs(name=c.name, type=c.type, comment=c.comment or None)
        for c in columns
    ]


def _partition_keys(columns: Sequence[ColumnSpec]) -> list[aws.glue.CatalogTablePartitionKeyArgs]:
    return [aws.glue.CatalogTablePartitionKeyArgs(name=c.name, type=c.type, comment=c.comment or None) for c in columns]


def parquet_storage_descriptor(
    location: pulumi.Input[str], columns: Sequence[ColumnSpec]
) -> aws.glue.CatalogTableStorageDescriptorArgs:
    """Where and how a Parquet table's files are read: one definition for the declared tables and the streaming
    layer's raw table, so Athena, Glue and Firehose's record-format conversion see the same format everywhere."""
    return aws.glue.CatalogTableStorageDescriptorArgs(
        location=location,
        columns=_columns(columns),
        input_format=PARQUET_INPUT_FORMAT,
        output_format=PARQUET_OUTPUT_FORMAT,
        compressed=False,
        stored_as_sub_directories=False,
        ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
            serialization_library=PARQUET_SERDE, parameters={"serialization.format": "1"}
        ),
    )


class Catalog(pulumi.ComponentResource):
    """The Glue catalog over the lake.

    - one database per zone (``<project>_<env>_<zone>``, located at the zone bucket), stateful;
    - one security configuration: SSE-KMS for S3 output, CloudWatch Logs and job bookmarks;
    - one crawler per ``catalog.crawledZones`` zone, on ``catalog.crawlerSchedule`` (none: on
      demand), with its own least-privilege role, crawling new folders only and never rewriting
      or deleting tables;
    - one Parquet table per ``catalog.tables`` entry, with the declared columns and partition keys.

    Outputs: ``databases``, ``database_names`` (keyed by zone), ``security_configuration``,
    ``crawlers`` (keyed by zone), ``tables`` (keyed by ``<zone>.<table>``).
    """

    databases: dict[str, aws.glue.CatalogDatabase]
    database_names: dict[str, pulumi.Output[str]]
    security_configuration: aws.glue.SecurityConfiguration
    crawlers: dict[str, aws.glue.Crawler]
    crawler_roles: dict[str, aws.iam.Role]
    tables: dict[str, aws.glue.CatalogTable]
    drift_reports_table: aws.glue.CatalogTable | None

    def __init__(self, name: str, args: CatalogArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:catalog:Catalog", name, None, opts)
        ctx = args.context
        cfg = ctx.config
        missing = sorted(set(ZONE_NAMES) - set(args.bucket_names) | set(ZONE_NAMES) - set(args.bucket_arns))
        if missing:
            raise ValueError(f"CatalogArgs: no bucket name/ARN for zone(s) {missing}")

        self.databases = {}
        for zone in ZONE_NAMES:
            self.databases[zone] = aws.glue.CatalogDatabase(
                f"{name}-{zone}-database",
                name=ctx.naming.name(zone, Kind.GLUE),
                description=f"{ctx.naming.prefix} lake zone '{zone}'",
                location_uri=pulumi.Output.concat("s3://", args.bucket_names[zone], "/"),
                tags=ctx.naming.tags(Zone=zone),
                opts=ctx.stateful(self),
            )
        self.database_names = {zone: db.name for zone, db in self.databases.items()}

        self.security_configuration = aws.glue.SecurityConfiguration(
            f"{name}-security-configuration",
            name=ctx.naming.name("glue-kms", Kind.GENERIC),
            encryption_configuration=aws.glue.SecurityConfigurationEncryptionConfigurationArgs(
                s3_encryption=aws.glue.SecurityConfigurationEncryptionConfigurationS3EncryptionArgs(
                    s3_encryption_mode="SSE-KMS", kms_key_arn=args.kms_key_arn
                ),
                cloudwatch_encryption=aws.glue.SecurityConfigurationEncryptionConfigurationCloudwatchEncryptionArgs(
                    cloudwatch_encryption_mode="SSE-KMS", kms_key_arn=args.kms_key_arn
                ),
                job_bookmarks_encryption=aws.glue.SecurityConfigurationEncryptionConfigurationJobBookmarksEncryptionArgs(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=args.kms_key_arn
                ),
            ),
            # Security configurations cannot be updated, only replaced, and the name is fixed:
            # the old one must go before the new one can be created.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )

        reporting = drift_report_models(cfg)
        self.crawlers = {}
        self.crawler_roles = {}
        for zone in cfg.catalog.crawled_zones:
            crawler_role = iam.service_role(
                f"{name}-{zone}-crawler-role",
                naming=ctx.naming,
                thing=f"{zone}-crawler",
                services=["glue.amazonaws.com"],
                statements=crawler_statements(
                    region=cfg.region,
                    account_id=args.account_id,
                    database_name=self.databases[zone].name,
                    bucket_arns=[args.bucket_arns[zone]],
                    kms_key_arn=args.kms_key_arn,
                ),
                tags=ctx.naming.tags(Zone=zone),
                parent=self,
                source_account=args.account_id,
            )
            self.crawler_roles[zone] = crawler_role.role
            self.crawlers[zone] = aws.glue.Crawler(
                f"{name}-{zone}-crawler",
                name=ctx.naming.name(f"{zone}-crawler", Kind.GLUE_CRAWLER),
                description=f"{ctx.naming.prefix}: catalogues new folders of the '{zone}' zone",
                database_name=self.databases[zone].name,
                role=crawler_role.arn,
                security_configuration=self.security_configuration.name,
                schedule=cfg.catalog.crawler_schedule,
                s3_targets=[
                    aws.glue.CrawlerS3TargetArgs(
                        path=pulumi.Output.concat("s3://", args.bucket_names[zone], "/"),
                        exclusions=_crawler_exclusions(
                            zone, bool(reporting), streamed_raw_prefixes(cfg.catalog.tables)
                        ),
                    )
                ],
                schema_change_policy=aws.glue.CrawlerSchemaChangePolicyArgs(
                    update_behavior=SCHEMA_UPDATE_BEHAVIOR, delete_behavior=SCHEMA_DELETE_BEHAVIOR
                ),
                recrawl_policy=aws.glue.CrawlerRecrawlPolicyArgs(recrawl_behavior=RECRAWL_BEHAVIOR),
                configuration=CRAWLER_CONFIGURATION,
                tags=ctx.naming.tags(Zone=zone),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[crawler_role.policy]),
            )

        self.tables = {}
        for spec in cfg.catalog.tables:
            self.tables[f"{spec.zone}.{spec.name}"] = self._table(name, spec, args)
        self.drift_reports_table = self._drift_reports(name, args, reporting) if reporting else None

        self.register_outputs(
            {
                "database_names": self.database_names,
                "security_configuration": self.security_configuration.name,
                "crawlers": {zone: c.name for zone, c in self.crawlers.items()},
                "tables": {key: t.name for key, t in self.tables.items()},
                "drift_reports_table": self.drift_reports_table.name if self.drift_reports_table else None,
            }
        )

    def _table(self, name: str, spec: TableSpec, args: CatalogArgs) -> aws.glue.CatalogTable:
        """An external Parquet table under ``s3://<zone bucket>/<prefix>``.

        Not protected: a table is a definition over data that lives in the (protected) bucket, and
        Pulumi must be free to replace it when its declaration changes.
        """
        location = pulumi.Output.concat("s3://", args.bucket_names[spec.zone], "/", spec.location_prefix)
        return aws.glue.CatalogTable(
            f"{name}-{spec.zone}-{spec.name}-table",
            name=spec.name,
            database_name=self.databases[spec.zone].name,
            description=spec.description or None,
            table_type="EXTERNAL_TABLE",
            parameters=self._table_parameters(spec, location),
            partition_keys=_partition_keys(spec.partition_keys) or None,
            storage_descriptor=parquet_storage_descriptor(location, spec.columns),
            opts=pulumi.ResourceOptions(parent=self),
        )

    @staticmethod
    def _table_parameters(spec: TableSpec, location: pulumi.Output[str]) -> pulumi.Input[dict[str, str]]:
        """Parquet; a raw-zone table Firehose streams into also projects its event-date partitions: nothing else
        registers them (the raw crawler skips streamed prefixes), so without projection Athena would see none."""
        if spec.streaming is not None and spec.zone == "raw":
            key = spec.partition_keys[0].name  # a streamed raw table has exactly one (the streaming checks)
            return location.apply(lambda uri: raw_table_parameters(uri, key))
        return {"EXTERNAL": "TRUE", "classification": "parquet", "parquet.compression": "SNAPPY"}

    def _drift_reports(self, name: str, args: CatalogArgs, models: Sequence[str]) -> aws.glue.CatalogTable:
        """The ``drift_reports`` table: every platform monitor's JSON reports, partitioned by model and day.

        Partition projection (``projection.*`` parameters) lets Athena list ``model=<m>/date=<d>/`` itself: no
        crawler, no partitions to add. Not protected, like the declared tables: the reports live in the
        (protected) monitoring bucket.
        """
        location = pulumi.Output.concat("s3://", args.bucket_names["monitoring"], "/", REPORTS_PREFIX)
        expire = args.context.config.lake.zones["monitoring"].expire_after_days
        return aws.glue.CatalogTable(
            f"{name}-monitoring-{REPORTS_TABLE}-table",
            name=REPORTS_TABLE,
            database_name=self.databases["monitoring"].name,
            description="Drift and quality reports of the platform's monitors, one JSON object per run",
            table_type="EXTERNAL_TABLE",
            parameters=location.apply(lambda uri: projection_parameters(uri, models, expire)),
            partition_keys=[
                aws.glue.CatalogTablePartitionKeyArgs(name=key, type=kind, comment=comment)
                for key, kind, comment in PARTITION_KEYS
            ],
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=location,
                columns=[
                    aws.glue.CatalogTableStorageDescriptorColumnArgs(name=column, type=kind, comment=comment)
                    for column, kind, comment in REPORT_COLUMNS
                ],
                input_format=TEXT_INPUT_FORMAT,
                output_format=TEXT_OUTPUT_FORMAT,
                compressed=False,
                stored_as_sub_directories=False,
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    serialization_library=JSON_SERDE, parameters={"serialization.format": "1"}
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


def drift_report_models(config: PlatformConfig) -> list[str]:
    """Models whose monitor writes drift reports: served, engine=platform, drift or quality monitored."""
    return sorted(
        m.name
        for m in config.models
        if m.serving is not None
        and m.monitoring.engine == "platform"
        and (m.monitoring.data_quality.enabled or m.monitoring.model_quality.enabled)
    )
