"""Typed, validated platform configuration: the only module that reads Pulumi config.

The stack file (``stacks/Pulumi.<stack>.yaml``) holds one key per top-level field of
:class:`PlatformConfig`, in the ``mlops`` namespace (``mlops:lake``, ``mlops:models``, ...), plus
``aws:region``. Pulumi hands every value to the program as a string (structured values as JSON);
:func:`parse_stack_config` turns that map into one frozen, typed object and refuses, before any
resource exists, unknown keys, wrong types, out-of-range values and invalid combinations, with a
message that names the key, the bad value and what is allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from pipelines.settings import ApprovalStatus, HyperparameterValue, MetricName

CONFIG_NAMESPACE = "mlops"
"""Pulumi config namespace of the platform (the Pulumi project name)."""

Zone = Literal["raw", "curated", "features", "artifacts", "monitoring"]
ZONE_NAMES: tuple[Zone, ...] = ("raw", "curated", "features", "artifacts", "monitoring")
"""Data lake zones; every zone is one bucket."""

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

ResourceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*[a-z0-9]$")]
GlueName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=255)]
IamArn = Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(root|role/.+|user/.+)$")]

_GLUE_PRIMITIVES = (
    "string|int|bigint|smallint|tinyint|double|float|boolean|date|timestamp|binary|decimal\\(\\d+,\\s*\\d+\\)"
)
_GLUE_TYPE = re.compile(rf"^({_GLUE_PRIMITIVES}|array<({_GLUE_PRIMITIVES})>)$")
_CRON = re.compile(r"^cron\((\S+\s+){5}\S+\)$")


def _cron_expression(value: str) -> str:
    if not _CRON.match(value):
        raise ValueError(f"'{value}' is not a cron expression of the form cron(min hour day month weekday year)")
    return value


CronExpression = Annotated[str, AfterValidator(_cron_expression)]
"""An EventBridge/SageMaker schedule: ``cron(min hour day month weekday year)``."""
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")


class ConfigError(ValueError):
    """A stack's configuration is invalid. ``problems`` lists one line per bad key."""

    def __init__(self, stack: str, problems: list[str]) -> None:
        self.stack = stack
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration for stack '{stack}':\n{listing}")


class _Model(BaseModel):
    """Base of every config section: frozen, camelCase keys, unknown keys refused."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        strict=True,
    )


class KmsSettings(_Model):
    """The platform's customer-managed KMS key."""

    deletion_window_days: int = Field(
        default=30, ge=7, le=30, description="Waiting period before a deleted key is destroyed."
    )
    rotation_period_days: int = Field(default=365, ge=90, le=2560, description="Automatic key rotation period.")
    administrator_arns: tuple[IamArn, ...] = Field(
        default=(),
        description="IAM principals allowed to administer (not use) the key. Empty: the account root only.",
    )


class ZoneSettings(_Model):
    """Lifecycle of one lake zone. ``None`` switches a transition or expiry off."""

    infrequent_access_after_days: int | None = Field(
        default=None, ge=30, description="Move current objects to STANDARD_IA after this many days (AWS minimum: 30)."
    )
    glacier_after_days: int | None = Field(
        default=None, ge=1, description="Move current objects to GLACIER_IR after this many days."
    )
    expire_after_days: int | None = Field(
        default=None, ge=1, description="Delete current objects after this many days."
    )
    noncurrent_versions_expire_after_days: int = Field(
        default=90, ge=1, le=3650, description="Delete non-current object versions after this many days."
    )
    abort_incomplete_uploads_after_days: int = Field(
        default=7, ge=1, le=365, description="Abort multipart uploads left incomplete for this many days."
    )

    @model_validator(mode="after")
    def _ordered(self) -> ZoneSettings:
        ia, gl, ex = self.infrequent_access_after_days, self.glacier_after_days, self.expire_after_days
        if ia is not None and gl is not None and gl < ia + 30:
            raise ValueError(
                f"glacierAfterDays={gl} must be at least infrequentAccessAfterDays + 30 ({ia + 30}): "
                "S3 keeps objects 30 days in STANDARD_IA"
            )
        last = max((d for d in (ia, gl) if d is not None), default=None)
        if ex is not None and last is not None and ex <= last:
            raise ValueError(f"expireAfterDays={ex} must be greater than the last transition day ({last})")
        return self


def _default_zones() -> dict[Zone, ZoneSettings]:
    return {zone: ZoneSettings() for zone in ZONE_NAMES}


class LakeSettings(_Model):
    """The S3 data lake."""

    force_destroy: bool = Field(
        default=False, description="Allow deleting non-empty buckets (disposable environments only)."
    )
    access_log_retention_days: int = Field(
        default=365, ge=1, le=3650, description="Expiry of server access logs in the log bucket."
    )
    zones: dict[Zone, ZoneSettings] = Field(
        default_factory=_default_zones,
        description="Lifecycle per zone; zones left out get the defaults.",
    )

    @field_validator("zones", mode="after")
    @classmethod
    def _all_zones(cls, zones: dict[Zone, ZoneSettings]) -> dict[Zone, ZoneSettings]:
        return {zone: zones.get(zone, ZoneSettings()) for zone in ZONE_NAMES}


GlueType = Annotated[str, StringConstraints(pattern=_GLUE_TYPE.pattern)]


class ColumnSpec(_Model):
    """One column of a Glue table."""

    name: GlueName = Field(description="Column name: lowercase letters, digits and '_'.")
    type: GlueType = Field(
        description="Hive type: string, int, bigint, double, boolean, date, timestamp, decimal(p,s), array<...>."
    )
    comment: str = Field(default="", description="Column comment in the catalog.")


class TableSpec(_Model):
    """A Glue table declared with an explicit schema (Parquet files under ``s3://<zone bucket>/<prefix>``)."""

    name: GlueName = Field(description="Table name: lowercase letters, digits and '_'.")
    zone: Zone = Field(default="curated", description="Lake zone (bucket and Glue database) of the table.")
    prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-/=.]+/$")] | None = Field(
        default=None, description="S3 key prefix of the table's files, ending with '/'; default '<name>/'."
    )
    description: str = Field(default="", description="Table description in the catalog.")
    columns: tuple[ColumnSpec, ...] = Field(min_length=1, description="Data columns, in file order.")
    partition_keys: tuple[ColumnSpec, ...] = Field(
        default=(), description="Partition columns (Hive-style key=value folders)."
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


class CatalogSettings(_Model):
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


class FeatureStoreSettings(_Model):
    """A model's SageMaker feature group: which stores it has and how they keep data."""

    online_store: bool = Field(
        default=False, description="Low-latency online store for real-time inference (billed per request and storage)."
    )
    offline_store: bool = Field(
        default=True, description="Offline store in the lake's features bucket, registered in Glue (training sets)."
    )
    online_ttl_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Hard-delete online records this many days after their event time; null keeps them until overwritten. Online store only.",
    )
    offline_table_format: Literal["Iceberg", "Glue"] = Field(
        default="Iceberg",
        description="Table format of the offline store: Iceberg (compactable, recommended) or Glue (Hive).",
    )


AccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
InstanceType = Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")]
_HYPERPARAMETER_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class TrainingSettings(_Model):
    """A model's training pipeline (preprocess, train, evaluate, register) and its model registry group."""

    processing_instance_type: InstanceType = Field(
        default="ml.m5.large", description="Instance type of the preprocess and evaluate jobs (ml.<family>.<size>)."
    )
    processing_instance_count: int = Field(default=1, ge=1, le=100, description="Instances per processing job.")
    training_instance_type: InstanceType = Field(
        default="ml.m5.large", description="Instance type of the training job (ml.<family>.<size>)."
    )
    training_instance_count: int = Field(
        default=1, ge=1, le=1, description="Instances of the training job; scikit-learn trains on one instance."
    )
    hyperparameters: dict[str, HyperparameterValue] = Field(
        default_factory=dict,
        description="Overrides of train.py's default hyperparameters (snake_case key: int, float or string); "
        "each becomes a pipeline parameter.",
    )
    metric_name: MetricName = Field(
        default="auc", description="Evaluation metric the pipeline's condition step compares with metricThreshold."
    )
    metric_threshold: float = Field(
        default=0.75, ge=0.0, le=1.0, description="Register a new model version only if the metric is >= this (0..1)."
    )
    approval_status: ApprovalStatus = Field(
        default="PendingManualApproval",
        description="Approval status of newly registered versions: PendingManualApproval (a human approves) or Approved.",
    )
    max_runtime_seconds: int = Field(
        default=3600, ge=60, le=28 * 24 * 3600, description="Time limit of each processing and training job."
    )
    registry_account_ids: tuple[AccountId, ...] = Field(
        default=(),
        description="12-digit AWS account ids allowed to read (describe, list, get) the model package group "
        "and its versions, e.g. a central registry or deployment account. Empty: no resource policy.",
    )
    retrain_schedule: CronExpression | None = Field(
        default=None,
        description="EventBridge cron expression that starts the pipeline on a schedule; null: run on demand only.",
    )

    @field_validator("hyperparameters")
    @classmethod
    def _hyperparameter_keys(cls, value: dict[str, HyperparameterValue]) -> dict[str, HyperparameterValue]:
        for key in value:
            if not _HYPERPARAMETER_KEY.match(key):
                raise ValueError(f"hyperparameter '{key}' must match {_HYPERPARAMETER_KEY.pattern} (snake_case)")
        return value

    @field_validator("registry_account_ids")
    @classmethod
    def _unique_accounts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"registryAccountIds lists an account twice: {list(value)}")
        return value


# ---------------------------------------------------------------------------------------------
# Serving, monitoring and responders (per model)

VariantName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
ModelPackageArn = Annotated[
    str,
    StringConstraints(pattern=r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[a-zA-Z0-9-]{1,63}/\d+$"),
]
ServingStrategy = Literal["single", "ab", "shadow", "serverless"]
MAX_ALARM_METRICS = 10
"""Most metrics one CloudWatch metric-math alarm reads; the 5xx-rate rollback alarm reads 2 per production variant."""
RolloutMode = Literal["all-at-once", "canary", "linear"]


class AutoscalingSettings(_Model):
    """Target-tracking autoscaling of one variant's instance count."""

    min_capacity: int = Field(default=1, ge=1, le=100, description="Fewest instances the variant scales in to.")
    max_capacity: int = Field(default=4, ge=1, le=100, description="Most instances the variant scales out to.")
    target_invocations_per_instance: int = Field(
        default=200,
        ge=1,
        le=100000,
        description="Target of SageMakerVariantInvocationsPerInstance (invocations per instance per minute).",
    )
    scale_in_cooldown_seconds: int = Field(default=300, ge=0, le=3600, description="Wait after a scale-in.")
    scale_out_cooldown_seconds: int = Field(default=60, ge=0, le=3600, description="Wait after a scale-out.")

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSettings:
        if self.max_capacity < self.min_capacity:
            raise ValueError(f"maxCapacity={self.max_capacity} is below minCapacity={self.min_capacity}")
        return self


class VariantSettings(_Model):
    """One production or shadow variant of an endpoint."""

    name: VariantName = Field(description="Variant name (letters, digits, '-'; at most 63); stable across updates.")
    model_package_arn: ModelPackageArn | None = Field(
        default=None,
        description="Model package version this variant serves; null: the latest Approved version of the "
        "model's package group, resolved at `pulumi up` time.",
    )
    instance_type: InstanceType = Field(default="ml.m5.large", description="Instance type (ml.<family>.<size>).")
    instance_count: int = Field(default=1, ge=1, le=100, description="Initial instance count.")
    weight: float = Field(
        default=1.0, description="Traffic weight; each production variant gets weight / sum(weights) of requests."
    )
    autoscaling: AutoscalingSettings | None = Field(
        default=None, description="Target-tracking autoscaling for this variant; null: fixed instance count."
    )


class ServerlessSettings(_Model):
    """Serverless inference (strategy ``serverless``): pay per request, cold starts, no instances."""

    memory_size_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = Field(
        default=2048, description="Memory of each serverless worker: 1024-6144 MB in 1024 MB steps."
    )
    max_concurrency: int = Field(default=5, ge=1, le=200, description="Most concurrent invocations.")
    provisioned_concurrency: int | None = Field(
        default=None, ge=1, le=200, description="Warm workers kept ready (no cold starts); at most maxConcurrency."
    )
    model_package_arn: ModelPackageArn | None = Field(
        default=None, description="Model package version served; null: the latest Approved version at `pulumi up`."
    )


class RolloutSettings(_Model):
    """How an endpoint update shifts traffic: SageMaker deployment guardrails (blue/green)."""

    mode: RolloutMode = Field(
        default="all-at-once",
        description="Blue/green traffic shifting: all-at-once, canary (a slice, then the rest) or linear (equal steps).",
    )
    canary_percent: int = Field(
        default=10, ge=1, le=100, description="Canary: percent of the new fleet's capacity that takes traffic first."
    )
    linear_step_percent: int = Field(
        default=20, ge=1, le=100, description="Linear: percent of capacity shifted at each step."
    )
    wait_interval_seconds: int = Field(
        default=600, ge=0, le=3600, description="Bake time between traffic shifts, while rollback alarms are watched."
    )
    termination_wait_seconds: int = Field(
        default=600, ge=0, le=3600, description="Time the old fleet is kept after full shift (fast rollback)."
    )
    maximum_execution_timeout_seconds: int = Field(
        default=3600, ge=600, le=14400, description="Most time the whole blue/green deployment may take."
    )
    rollback_alarms: bool = Field(
        default=True,
        description="Create 5xx-error and p99-latency alarms on the endpoint and roll the update back when one fires.",
    )
    error_rate_percent_threshold: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="Rollback when a variant's 5xx errors exceed this percent of invocations.",
    )
    latency_p99_ms_threshold: int = Field(
        default=500, ge=1, le=60000, description="Rollback when a variant's p99 ModelLatency exceeds this (ms)."
    )


class DataCaptureSettings(_Model):
    """Capture of requests and responses into the lake's monitoring zone (KMS-encrypted)."""

    enabled: bool = Field(default=True, description="Capture requests and responses (needed by Model Monitor).")
    sampling_percent: int = Field(default=100, ge=1, le=100, description="Percent of requests captured.")


class NetworkSettings(_Model):
    """VPC placement of the model containers."""

    subnet_ids: tuple[Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")], ...] = Field(
        default=(), description="Private subnets for the model containers; empty: SageMaker-managed network."
    )
    security_group_ids: tuple[Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8,17}$")], ...] = Field(
        default=(), description="Security groups of the model containers (needed with subnetIds)."
    )
    network_isolation: bool = Field(
        default=True, description="No outbound network from the model container (it only reads its model)."
    )


class ServingSettings(_Model):
    """A model's real-time endpoint: strategy, variants, rollout guardrails, capture and network."""

    strategy: ServingStrategy = Field(
        default="single",
        description="single (one variant), ab (weighted production variants), shadow (one production variant "
        "plus one shadow variant that gets a copy of traffic) or serverless.",
    )
    variants: tuple[VariantSettings, ...] = Field(
        default=(), description="Production variants (instance strategies; ab needs at least two)."
    )
    shadow_variant: VariantSettings | None = Field(
        default=None, description="The shadow variant (strategy shadow only); its responses are captured, not returned."
    )
    serverless: ServerlessSettings | None = Field(
        default=None, description="Serverless settings (strategy serverless only)."
    )
    rollout: RolloutSettings = Field(
        default_factory=lambda: RolloutSettings(), description="Blue/green deployment guardrails of endpoint updates."
    )
    data_capture: DataCaptureSettings = Field(
        default_factory=lambda: DataCaptureSettings(), description="Request/response capture into the lake."
    )
    network: NetworkSettings = Field(
        default_factory=lambda: NetworkSettings(), description="VPC and network isolation of the model containers."
    )


class DataQualityMonitorSettings(_Model):
    """Model Monitor data-quality schedule: drift of captured features against the training baseline."""

    enabled: bool = Field(default=True, description="Run the data-quality (feature drift) schedule.")
    schedule: CronExpression = Field(
        default="cron(0 * ? * * *)", description="Schedule of the monitoring job (hourly or daily cron expression)."
    )
    instance_type: InstanceType = Field(default="ml.m5.large", description="Instance type of the monitoring job.")
    max_runtime_seconds: int = Field(default=3600, ge=60, le=86400, description="Time limit of each monitoring job.")
    drift_alarm_features: tuple[str, ...] = Field(
        default=(),
        description="Features whose drift metric gets an alarm; empty: every feature of the model's feature spec.",
    )
    drift_threshold: float = Field(
        default=0.1, gt=0, le=1, description="Alarm when a feature's baseline drift distance exceeds this."
    )


class ModelQualityMonitorSettings(_Model):
    """Model Monitor model-quality schedule: predictions joined with ground truth labels."""

    enabled: bool = Field(default=True, description="Run the model-quality schedule (needs ground truth labels).")
    schedule: CronExpression = Field(
        default="cron(0 0 ? * * *)", description="Schedule of the monitoring job (daily by default: labels lag)."
    )
    instance_type: InstanceType = Field(default="ml.m5.large", description="Instance type of the monitoring job.")
    max_runtime_seconds: int = Field(default=3600, ge=60, le=86400, description="Time limit of each monitoring job.")
    ground_truth_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-/=.]+/$")] = Field(
        default="ground-truth/",
        description="Prefix in the monitoring bucket where labelled outcomes land (under <model>/), ending with '/'.",
    )
    probability_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="Probability at or above which a prediction counts as positive."
    )
    metric_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Alarm when the live metric (training.metricName) falls below this; null: training.metricThreshold.",
    )


class BusinessKpiSettings(_Model):
    """A business metric the application publishes to CloudWatch, alarmed like the technical ones."""

    namespace: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^:].*$")] = Field(
        description="CloudWatch namespace the application publishes the KPI to (not AWS/...)."
    )
    metric_name: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        description="Metric name of the KPI."
    )
    dimensions: dict[str, str] = Field(default_factory=dict, description="Dimensions of the KPI metric.")
    statistic: Literal["Average", "Sum", "Minimum", "Maximum", "SampleCount"] = Field(
        default="Average", description="Statistic compared with the threshold."
    )
    comparison: Literal["below", "above"] = Field(
        default="below", description="Alarm when the KPI goes below or above the threshold."
    )
    threshold: float = Field(description="Alarm threshold of the KPI.")
    period_seconds: int = Field(default=3600, ge=60, le=86400, description="Period of the statistic (multiple of 60).")
    evaluation_periods: int = Field(default=3, ge=1, le=100, description="Consecutive breaching periods to alarm.")

    @field_validator("namespace")
    @classmethod
    def _not_aws(cls, value: str) -> str:
        if value.startswith("AWS/"):
            raise ValueError(f"namespace '{value}' is reserved for AWS services; use your application's namespace")
        return value

    @field_validator("period_seconds")
    @classmethod
    def _minute(cls, value: int) -> int:
        if value % 60:
            raise ValueError(f"periodSeconds={value} must be a multiple of 60")
        return value


class RetrainingSettings(_Model):
    """What the retraining responder may do when a drift or quality alarm fires."""

    enabled: bool = Field(default=True, description="Start the training pipeline when a drift or quality alarm fires.")
    cooldown_minutes: int = Field(
        default=360, ge=0, le=10080, description="No new alarm-driven execution within this many minutes of the last."
    )
    max_per_day: int = Field(default=2, ge=1, le=24, description="Most alarm-driven executions per UTC day.")


class MonitoringSettings(_Model):
    """A model's monitoring: Model Monitor schedules, alarms, dashboard and alarm-driven retraining."""

    data_quality: DataQualityMonitorSettings = Field(
        default_factory=lambda: DataQualityMonitorSettings(), description="Data-quality (feature drift) monitoring."
    )
    model_quality: ModelQualityMonitorSettings = Field(
        default_factory=lambda: ModelQualityMonitorSettings(), description="Model-quality monitoring."
    )
    business_kpi: BusinessKpiSettings | None = Field(default=None, description="Business KPI alarm; null: none.")
    retraining: RetrainingSettings = Field(
        default_factory=lambda: RetrainingSettings(), description="Alarm-driven retraining limits."
    )


class DeploymentHookSettings(_Model):
    """Where the approval responder dispatches a deployment when a model version is approved."""

    kind: Literal["none", "github-workflow"] = Field(
        default="none",
        description="none (notify only) or github-workflow (POST a workflow_dispatch that runs `pulumi up`).",
    )
    repository: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")] | None = Field(
        default=None, description="GitHub repository 'owner/name' whose workflow deploys (github-workflow)."
    )
    workflow: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+\.ya?ml$")] | None = Field(
        default=None, description="Workflow file name, e.g. deploy.yml (github-workflow)."
    )
    ref: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        default="main", description="Git ref the workflow runs on."
    )
    token_secret_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")] | None = Field(
        default=None,
        description="Secrets Manager secret holding the GitHub token (created outside Pulumi; never in the stack file).",
    )

    @model_validator(mode="after")
    def _complete(self) -> DeploymentHookSettings:
        if self.kind == "github-workflow":
            missing = [
                k
                for k, v in (
                    ("repository", self.repository),
                    ("workflow", self.workflow),
                    ("tokenSecretName", self.token_secret_name),
                )
                if v is None
            ]
            if missing:
                raise ValueError(f"kind=github-workflow needs {', '.join(missing)}")
        return self


class AlertSettings(_Model):
    """Who hears about alarms, pipeline results and deployments (the encrypted SNS topic for humans)."""

    email_addresses: tuple[Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")], ...] = Field(
        default=(), description="Email subscriptions of the alerts topic (each must confirm by email)."
    )


class ModelSettings(_Model):
    """One model the platform trains, registers, serves and monitors."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*[a-z0-9]$", max_length=24)] = Field(
        description="Model name: lowercase letters, digits and '-', at most 24 characters (it is part of SageMaker names)."
    )
    description: str = Field(default="", description="Free-text description of the model: what it predicts, for whom.")
    feature_spec: str = Field(
        description="Name of the registered feature specification (mlops.features) that feeds this model."
    )
    feature_store: FeatureStoreSettings = Field(
        default_factory=lambda: FeatureStoreSettings(),
        description="The model's feature group: online and offline stores, online TTL, offline table format.",
    )
    training: TrainingSettings = Field(
        default_factory=lambda: TrainingSettings(),
        description="The model's training pipeline: instances, hyperparameters, quality gate, approval, "
        "registry sharing and retraining schedule.",
    )
    serving: ServingSettings | None = Field(
        default=None,
        description="The model's real-time endpoint: strategy, variants, rollout, capture, network; null: not served.",
    )
    monitoring: MonitoringSettings = Field(
        default_factory=lambda: MonitoringSettings(),
        description="Model Monitor schedules, alarms, business KPI and alarm-driven retraining (served models only).",
    )

    @model_validator(mode="after")
    def _features(self) -> ModelSettings:
        from mlops.features import FeatureSpecError, get_spec, registered_specs
        from mlops.features.spec import feature_store_problems

        try:
            spec = get_spec(self.feature_spec)
        except FeatureSpecError:
            raise ValueError(
                f"model '{self.name}': featureSpec '{self.feature_spec}' is not a registered feature spec; "
                f"registered: {', '.join(sorted(registered_specs())) or '(none)'}"
            ) from None
        problems = feature_store_problems(spec)
        if problems:
            raise ValueError(
                f"model '{self.name}': featureSpec '{self.feature_spec}' cannot be a feature group: {'; '.join(problems)}"
            )
        store = self.feature_store
        if not (store.online_store or store.offline_store):
            raise ValueError(
                f"model '{self.name}': featureStore.onlineStore and featureStore.offlineStore are both false; "
                "enable at least one store"
            )
        if store.online_ttl_days is not None and not store.online_store:
            raise ValueError(
                f"model '{self.name}': featureStore.onlineTtlDays={store.online_ttl_days} needs "
                "featureStore.onlineStore=true (the TTL applies to online records only); remove it or enable the online store"
            )
        problems = serving_problems(self, [f.name for f in spec.features])
        if problems:
            raise ValueError("; ".join(problems))
        return self


def serving_problems(model: ModelSettings, feature_names: list[str]) -> list[str]:
    """Invalid serving and monitoring combinations of ``model``, each naming the model and the key."""
    where = f"model '{model.name}'"
    serving = model.serving
    monitoring = model.monitoring
    problems: list[str] = []
    unknown = sorted(set(monitoring.data_quality.drift_alarm_features) - set(feature_names))
    if unknown:
        problems.append(
            f"{where}: monitoring.dataQuality.driftAlarmFeatures lists {unknown}, not features of "
            f"featureSpec '{model.feature_spec}'; allowed: {feature_names}"
        )
    if serving is None:
        return problems
    variants = serving.variants
    shadow: tuple[VariantSettings, ...] = (serving.shadow_variant,) if serving.shadow_variant else ()
    for i, v in enumerate((*variants, *shadow)):
        key = f"serving.variants[{i}]" if i < len(variants) else "serving.shadowVariant"
        if v.weight <= 0:
            problems.append(f"{where}: {key}.weight={v.weight} must be positive (weights are traffic shares)")
        if v.autoscaling and not v.autoscaling.min_capacity <= v.instance_count <= v.autoscaling.max_capacity:
            a = v.autoscaling
            problems.append(
                f"{where}: {key}.instanceCount={v.instance_count} must lie within autoscaling "
                f"minCapacity..maxCapacity ({a.min_capacity}..{a.max_capacity})"
            )
    names = [v.name for v in variants] + ([serving.shadow_variant.name] if serving.shadow_variant else [])
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"{where}: serving variant names must be unique; repeated: {dupes}")
    strategy = serving.strategy
    counts = {"single": (1, 1), "ab": (2, 10), "shadow": (1, 1)}
    if strategy in counts:
        low, high = counts[strategy]
        if not low <= len(variants) <= high:
            allowed = f"exactly {low}" if low == high else f"{low} to {high}"
            extra = " (AWS accepts one production variant beside a shadow variant)" if strategy == "shadow" else ""
            problems.append(
                f"{where}: serving.strategy={strategy} needs {allowed} production variant(s) in serving.variants, "
                f"got {len(variants)}{extra}"
            )
        if serving.serverless is not None:
            problems.append(
                f"{where}: serving.serverless is set but serving.strategy={strategy}; use strategy serverless"
            )
    if strategy == "shadow" and serving.shadow_variant is None:
        problems.append(f"{where}: serving.strategy=shadow needs serving.shadowVariant")
    if strategy != "shadow" and serving.shadow_variant is not None:
        problems.append(f"{where}: serving.shadowVariant is set but serving.strategy={strategy}; use strategy shadow")
    if strategy == "serverless":
        if variants:
            problems.append(
                f"{where}: serving.strategy=serverless takes no serving.variants (serverless endpoints have one "
                "variant and no instances, so no instance autoscaling); use serving.serverless"
            )
        if serving.serverless is None:
            problems.append(f"{where}: serving.strategy=serverless needs serving.serverless")
        elif (
            serving.serverless.provisioned_concurrency is not None
            and serving.serverless.provisioned_concurrency > serving.serverless.max_concurrency
        ):
            problems.append(
                f"{where}: serving.serverless.provisionedConcurrency={serving.serverless.provisioned_concurrency} "
                f"exceeds maxConcurrency={serving.serverless.max_concurrency}"
            )
        if serving.data_capture.enabled:
            problems.append(
                f"{where}: serving.dataCapture.enabled=true is not supported by serverless endpoints; "
                "set serving.dataCapture.enabled=false"
            )
        for key, monitor in (("dataQuality", monitoring.data_quality), ("modelQuality", monitoring.model_quality)):
            if monitor.enabled:
                problems.append(
                    f"{where}: monitoring.{key}.enabled=true needs captured data, which serverless endpoints "
                    f"cannot produce; set monitoring.{key}.enabled=false"
                )
        if serving.network.subnet_ids or serving.network.security_group_ids:
            problems.append(
                f"{where}: serving.network subnets/security groups are not supported by serverless endpoints"
            )
    else:
        for key, monitor in (("dataQuality", monitoring.data_quality), ("modelQuality", monitoring.model_quality)):
            if monitor.enabled and not serving.data_capture.enabled:
                problems.append(
                    f"{where}: monitoring.{key}.enabled=true needs serving.dataCapture.enabled=true "
                    "(Model Monitor reads the captured requests)"
                )
    rollout = serving.rollout
    if rollout.mode == "canary" and rollout.canary_percent > 50:
        problems.append(
            f"{where}: serving.rollout.canaryPercent={rollout.canary_percent} is larger than half the fleet; "
            "allowed: 1..50 (a canary must be the smaller part)"
        )
    if rollout.mode == "linear" and rollout.linear_step_percent > 50:
        problems.append(
            f"{where}: serving.rollout.linearStepPercent={rollout.linear_step_percent} shifts more than half the "
            "fleet per step; allowed: 10..50 (use all-at-once for a single step)"
        )
    if rollout.mode == "linear" and rollout.linear_step_percent < 10:
        problems.append(
            f"{where}: serving.rollout.linearStepPercent={rollout.linear_step_percent} is below SageMaker's minimum "
            "linear step; allowed: 10..50"
        )
    production_variants = 1 if strategy == "serverless" else len(variants)
    if rollout.rollback_alarms and 2 * production_variants > MAX_ALARM_METRICS:
        problems.append(
            f"{where}: serving.rollout.rollbackAlarms=true with {production_variants} production variants: the "
            f"endpoint's 5xx-rate rollback alarm reads 2 metrics per variant ({2 * production_variants}) and a "
            f"CloudWatch alarm reads at most {MAX_ALARM_METRICS}; allowed: at most {MAX_ALARM_METRICS // 2} "
            "production variants"
        )
    if serving.shadow_variant is not None and serving.shadow_variant.autoscaling is not None:
        problems.append(
            f"{where}: serving.shadowVariant.autoscaling is not supported (only production variants scale); "
            "size the shadow with serving.shadowVariant.instanceCount"
        )
    if rollout.mode != "all-at-once" and not rollout.rollback_alarms:
        problems.append(
            f"{where}: serving.rollout.mode={rollout.mode} without rollbackAlarms cannot roll back; "
            "set serving.rollout.rollbackAlarms=true"
        )
    network = serving.network
    if bool(network.subnet_ids) != bool(network.security_group_ids):
        problems.append(f"{where}: serving.network needs both subnetIds and securityGroupIds, or neither")
    return problems


class PlatformConfig(_Model):
    """The whole platform's configuration for one stack (environment)."""

    project: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*[a-z0-9]$", min_length=3, max_length=20)] = (
        Field(
            description="Prefix of every physical name (<project>-<env>-<thing>); S3 names are global, so make it unique to your organisation."
        )
    )
    environment: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]*$", min_length=2, max_length=10)] = Field(
        description="Environment name, second part of every physical name (dev, staging, prod, ...)."
    )
    region: Annotated[str, StringConstraints(pattern=_REGION.pattern)] = Field(
        description="AWS region; read from the 'aws:region' key of the stack."
    )
    owner: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        description="Owning team (tag 'Owner')."
    )
    cost_center: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        description="Cost centre (tag 'CostCenter')."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags on every taggable resource.")
    protect_stateful_resources: bool = Field(
        default=True, description="Protect buckets, keys and catalogs: Pulumi refuses to delete them."
    )
    retain_stateful_on_delete: bool = Field(
        default=True, description="Keep buckets, keys and catalogs in AWS when removed from the program."
    )
    production: bool = Field(
        default=False,
        description="Production environment: endpoints must keep rollback alarms (the policy pack adds more checks).",
    )
    log_retention_days: int = Field(
        default=365, description=f"CloudWatch Logs retention; one of {list(LOG_RETENTION_DAYS)}."
    )
    kms: KmsSettings = Field(default_factory=lambda: KmsSettings(), description="The platform KMS key.")
    lake: LakeSettings = Field(default_factory=lambda: LakeSettings(), description="The S3 data lake.")
    catalog: CatalogSettings = Field(default_factory=lambda: CatalogSettings(), description="The Glue catalog.")
    models: tuple[ModelSettings, ...] = Field(
        default=(), description="Models the platform trains, serves and monitors."
    )
    alerts: AlertSettings = Field(
        default_factory=lambda: AlertSettings(), description="Humans notified of alarms, pipeline results, deployments."
    )
    deployment: DeploymentHookSettings = Field(
        default_factory=lambda: DeploymentHookSettings(),
        description="Deployment dispatched when a model version is approved (it ends in `pulumi up`).",
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        reserved = {"Project", "Environment", "Owner", "CostCenter", "ManagedBy"}
        for key, value in tags.items():
            if key.lower().startswith("aws:"):
                raise ValueError(f"tag key '{key}' uses the reserved 'aws:' prefix")
            if key in reserved:
                raise ValueError(f"tag key '{key}' is set by the platform; allowed: any key except {sorted(reserved)}")
            if not 1 <= len(key) <= 128 or len(value) > 256:
                raise ValueError(f"tag '{key}': keys take 1-128 characters and values at most 256")
        return tags

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention period; allowed: {list(LOG_RETENTION_DAYS)}")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> PlatformConfig:
        if self.protect_stateful_resources and self.lake.force_destroy:
            raise ValueError(
                "lake.forceDestroy=true contradicts protectStatefulResources=true: "
                "a protected lake must not be force-destroyed (set one of them to false)"
            )
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"models declared twice: {dupes}")
        if self.production:
            for m in self.models:
                if m.serving is not None and not m.serving.rollout.rollback_alarms:
                    raise ValueError(
                        f"model '{m.name}': serving.rollout.rollbackAlarms=false is not allowed with production=true "
                        "(a production endpoint update must roll back on errors and latency)"
                    )
        return self

    def model(self, name: str) -> ModelSettings:
        """The settings of the model called ``name`` (KeyError if absent)."""
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------
# Reading the stack


def _expects_plain_string(annotation: Any) -> bool:
    """True when a top-level field takes a plain string (Pulumi passes it unquoted)."""
    if annotation is str:
        return True
    if get_origin(annotation) is Annotated:
        return _expects_plain_string(get_args(annotation)[0])
    if get_origin(annotation) is Literal:
        return all(isinstance(a, str) for a in get_args(annotation))
    return False


def _alias_of(field_name: str) -> str:
    return to_camel(field_name)


def _format_error(err: Any, raw: Mapping[str, Any]) -> str:
    loc = [str(p) for p in err["loc"] if p != "[key]"]
    key = f"{CONFIG_NAMESPACE}:{'.'.join(loc)}" if loc else f"{CONFIG_NAMESPACE}"
    if loc == ["region"]:
        key = "aws:region"
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return f"{key}: unknown key; allowed keys here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{key}: required key is missing"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if isinstance(value, Mapping):  # a rule over several keys: the message names them and their values
        return f"{key}: {msg}"
    shown = json.dumps(value, default=str)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return f"{key}: got {shown}; {msg}"


def _allowed_keys(loc: list[str]) -> list[str]:
    """The camelCase keys the model accepts at ``loc`` (a path of aliases, indexes and dict keys)."""
    model: Any = PlatformConfig
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            break
        field = next((f for n, f in model.model_fields.items() if _alias_of(n) == part), None)
        if field is None:
            continue  # a list index or dict key: stay on the element model resolved below
        model = nested_model(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(_alias_of(n) for n in model.model_fields)
    return []


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The config section class inside a field's annotation (``tuple[TableSpec, ...]`` → ``TableSpec``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = nested_model(arg)
        if found is not None:
            return found
    return None


def parse_stack_config(values: Mapping[str, str], stack: str) -> PlatformConfig:
    """Turn a stack's config map (Pulumi's ``namespace:key`` → string form) into a ``PlatformConfig``.

    Raises :class:`ConfigError` listing every problem (key, bad value, what is allowed).
    """
    problems: list[str] = []
    fields = PlatformConfig.model_fields
    by_alias = {_alias_of(name): name for name in fields}
    data: dict[str, Any] = {}
    for full_key, raw in sorted(values.items()):
        namespace, _, key = full_key.partition(":")
        if namespace != CONFIG_NAMESPACE:
            continue
        if key == "region":
            problems.append(f"{full_key}: unknown key; the region is read from 'aws:region'")
            continue
        if key not in by_alias:
            allowed = sorted(a for a in by_alias if a != "region")
            problems.append(f"{full_key}: unknown key; allowed keys: {', '.join(allowed)}")
            continue
        annotation = fields[by_alias[key]].annotation
        if isinstance(raw, str) and not _expects_plain_string(annotation):
            try:
                data[key] = json.loads(raw)
            except json.JSONDecodeError:
                problems.append(f"{full_key}: got {raw!r}; expected a {_describe(annotation)} (JSON/YAML value)")
                continue
        else:
            data[key] = raw
    region = values.get("aws:region")
    if region is not None:
        data["region"] = region
    if problems:
        raise ConfigError(stack, problems)
    try:
        # JSON mode keeps strict typing (no "3" -> 3) while accepting arrays for tuple fields.
        return PlatformConfig.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        raise ConfigError(stack, [_format_error(e, data) for e in exc.errors()]) from None


def _describe(annotation: Any) -> str:
    origin = get_origin(annotation)
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    if origin in (tuple, list):
        return "list"
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return "mapping"
    return str(annotation)


def load_config() -> PlatformConfig:
    """Read and validate the current stack's config from the Pulumi runtime (the real ``pulumi up`` path)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    values: dict[str, str] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return parse_stack_config(values, pulumi.get_stack())


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the stack config (published as ``docs/config.schema.json``)."""
    return PlatformConfig.model_json_schema(by_alias=True)
