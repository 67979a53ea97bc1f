"""Settings of a model's real-time endpoint (stack key ``models[].serving``) and the checks AWS would otherwise fail.

The rollout's ``errorRatePercentThreshold`` and ``latencyP99MsThreshold`` are the rollback alarms' thresholds
(:mod:`infra.alarms`), and the defaults of the monitoring layer's sustained alarms.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

from infra.types import InstanceType, Section

if TYPE_CHECKING:  # annotations only: both sections import this module
    from infra.featurestore.settings import FeatureStoreSettings
    from infra.monitoring.settings import MonitoringSettings

VariantName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
ModelPackageArn = Annotated[
    str,
    StringConstraints(pattern=r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[a-zA-Z0-9-]{1,63}/\d+$"),
]


def _explain_model_version(value: Any, handler: ValidatorFunctionWrapHandler) -> str:
    """One message saying what is allowed (pydantic would report each member of the union on its own)."""
    try:
        return handler(value)
    except ValidationError:
        raise ValueError(
            "allowed: latest (the latest Approved version of the model's package group), previous (the Approved "
            "version before the latest) or a model package version ARN "
            "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
        ) from None


ModelVersion = Annotated[Literal["latest", "previous"] | ModelPackageArn, WrapValidator(_explain_model_version)]
"""What a variant serves: ``latest``, ``previous`` or a pinned ARN (resolved by :mod:`infra.model_versions`)."""
MODEL_VERSION_DESCRIPTION = (
    "Model package version served, resolved at `pulumi up`: latest (the latest Approved version of the model's "
    "package group), previous (the Approved version before the latest; the latest while only one is approved) "
    "or a pinned model package version ARN."
)


def _refuse_model_package_arn(data: Any) -> Any:
    """``modelPackageArn`` was replaced by ``modelVersion``: say what to write instead of "unknown key"."""
    if isinstance(data, dict):
        for old in ("modelPackageArn", "model_package_arn"):
            if old in data:
                value = data[old] or "latest"  # null meant the latest Approved version
                raise ValueError(
                    f"{old}={json.dumps(data[old])} is no longer read: it was replaced by modelVersion (latest, "
                    f"previous or a model package version ARN); write modelVersion: {value}"
                )
    return data


ServingStrategy = Literal["single", "ab", "shadow", "serverless"]
MAX_ALARM_METRICS = 10
"""Most metrics one CloudWatch metric-math alarm reads; the 5xx-rate rollback alarm reads 2 per production variant."""
RolloutMode = Literal["all-at-once", "canary", "linear"]


class AutoscalingSettings(Section):
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


class VariantSettings(Section):
    """One production or shadow variant of an endpoint."""

    name: VariantName = Field(description="Variant name (letters, digits, '-'; at most 63); stable across updates.")
    model_version: ModelVersion = Field(default="latest", description=MODEL_VERSION_DESCRIPTION)
    instance_type: InstanceType = Field(default="ml.m5.large", description="Instance type (ml.<family>.<size>).")
    instance_count: int = Field(default=1, ge=1, le=100, description="Initial instance count.")
    weight: float = Field(
        default=1.0, description="Traffic weight; each production variant gets weight / sum(weights) of requests."
    )
    autoscaling: AutoscalingSettings | None = Field(
        default=None, description="Target-tracking autoscaling for this variant; null: fixed instance count."
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_key(cls, data: Any) -> Any:
        return _refuse_model_package_arn(data)


class ServerlessSettings(Section):
    """Serverless inference (strategy ``serverless``): pay per request, cold starts, no instances."""

    memory_size_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = Field(
        default=2048, description="Memory of each serverless worker: 1024-6144 MB in 1024 MB steps."
    )
    max_concurrency: int = Field(default=5, ge=1, le=200, description="Most concurrent invocations.")
    provisioned_concurrency: int | None = Field(
        default=None, ge=1, le=200, description="Warm workers kept ready (no cold starts); at most maxConcurrency."
    )
    model_version: ModelVersion = Field(default="latest", description=MODEL_VERSION_DESCRIPTION)

    @model_validator(mode="before")
    @classmethod
    def _renamed_key(cls, data: Any) -> Any:
        return _refuse_model_package_arn(data)


class RolloutSettings(Section):
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
        default=3600, ge=600, le=28800, description="Most time the whole blue/green deployment may take."
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


class DataCaptureSettings(Section):
    """Capture of requests and responses into the lake's monitoring zone (KMS-encrypted)."""

    enabled: bool = Field(
        default=True,
        description="Capture requests and responses (what drift and quality monitoring read, with either engine).",
    )
    sampling_percent: int = Field(default=100, ge=1, le=100, description="Percent of requests captured.")


class NetworkSettings(Section):
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


RequestMode = Literal["rows", "entity"]


class OnlineLookupSettings(Section):
    """Entity request mode: how the inference container reads a request's features from the online store."""

    timeout_ms: int = Field(
        default=300,
        ge=10,
        le=10000,
        description="Most time a request's feature lookup may take, retries included (then the request gets 504); "
        "also each HTTP attempt's connect and read timeout. It adds to the request's ModelLatency: keep it below "
        "serving.rollout.latencyP99MsThreshold.",
    )
    max_attempts: int = Field(
        default=2,
        ge=1,
        le=3,
        description="Most GetRecord attempts per entity (botocore's standard retry mode: throttling, 5xx, "
        "connection errors), within timeoutMs.",
    )
    cache_ttl_seconds: int = Field(
        default=0,
        ge=0,
        le=3600,
        description="Seconds a looked-up feature vector is reused by the same worker process; 0: no cache (every "
        "request reads the store: the freshest features).",
    )
    cache_max_entries: int = Field(
        default=10000,
        ge=1,
        le=1000000,
        description="Most vectors cached per worker process (least recently used first out); with cacheTtlSeconds > 0.",
    )


class ServingSettings(Section):
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
    request_mode: RequestMode = Field(
        default="rows",
        description="rows (each request carries the raw records the feature spec reads) or entity (each request "
        "carries entity ids, optionally with feature overrides; the container reads the features from the model's "
        "online feature store). entity needs featureStore.onlineStore=true and network.networkIsolation=false; its "
        "drift and quality are monitored by monitoring.engine=platform only, from the features the endpoint returns "
        "in JSON answers.",
    )
    online_lookup: OnlineLookupSettings = Field(
        default_factory=lambda: OnlineLookupSettings(),
        description="Entity request mode's online-store lookup: timeout, attempts and per-process cache.",
    )


def serving_problems(model: str, serving: ServingSettings) -> list[str]:
    """Invalid serving combinations of ``model``'s endpoint, each naming the model and the key."""
    where = f"model '{model}'"
    problems: list[str] = []
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
        if serving.network.subnet_ids or serving.network.security_group_ids:
            problems.append(
                f"{where}: serving.network subnets/security groups are not supported by serverless endpoints"
            )
    rollout = serving.rollout
    problems += _rollout_timing_problems(where, rollout)
    if rollout.mode != "all-at-once":
        if strategy == "serverless":
            problems.append(
                f"{where}: serving.rollout.mode={rollout.mode} shifts a percentage of the variant's instances, and a "
                "serverless endpoint has none; allowed with strategy serverless: all-at-once"
            )
        for i, v in enumerate(variants):
            fewest = min(v.instance_count, v.autoscaling.min_capacity if v.autoscaling else v.instance_count)
            if fewest < 2:
                problems.append(
                    f"{where}: serving.rollout.mode={rollout.mode} on serving.variants[{i}] ('{v.name}') with "
                    f"{fewest} instance: the first traffic step is a percentage of the variant's instances, and one "
                    "instance is the whole fleet (everything shifts at once); give the variant instanceCount >= 2 "
                    "(and autoscaling minCapacity >= 2) or use mode all-at-once"
                )
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
    if serving.request_mode == "rows" and "online_lookup" in serving.model_fields_set:
        problems.append(
            f"{where}: serving.onlineLookup is set but serving.requestMode=rows reads no features from the store; "
            "remove it or set serving.requestMode=entity"
        )
    if serving.request_mode == "entity" and network.network_isolation and strategy != "serverless":
        problems.append(
            f"{where}: serving.requestMode=entity needs serving.network.networkIsolation=false: a network-isolated "
            "model container makes no outbound call, so it cannot reach the Feature Store runtime (GetRecord)"
        )
    return problems


def entity_mode_problems(
    model: str, serving: ServingSettings | None, feature_store: FeatureStoreSettings, monitoring: MonitoringSettings
) -> list[str]:
    """What entity request mode needs of the other layers: an online store, and monitors that can read its captures.

    Entity-mode requests hold entity ids only. The platform engine's drift job reads the features the endpoint
    scored from its captured JSON answers (:mod:`mlops.monitoring.drift.capture`); Model Monitor's record
    preprocessor reads each captured request as raw records, so it is refused in this mode.
    """
    if serving is None or serving.request_mode != "entity":
        return []
    where = f"model '{model}'"
    problems: list[str] = []
    if not feature_store.online_store:
        problems.append(
            f"{where}: serving.requestMode=entity reads features from the online store, but "
            "featureStore.onlineStore=false; set featureStore.onlineStore=true or serving.requestMode=rows"
        )
    readers = [
        f"monitoring.{key}.enabled=true"
        for key, monitor in (("dataQuality", monitoring.data_quality), ("modelQuality", monitoring.model_quality))
        if monitor.enabled
    ]
    # serverless: monitoring_problems already refuses monitors (no capture).
    if readers and monitoring.engine == "model-monitor" and serving.strategy != "serverless":
        problems.append(
            f"{where}: serving.requestMode=entity with monitoring.engine=model-monitor and {' and '.join(readers)}: "
            "Model Monitor's record preprocessor reads each captured request as raw records, and entity-mode "
            "requests hold entity ids only (every request would be skipped); use monitoring.engine=platform (its "
            "drift job reads the features the endpoint returns), set the monitors to false, or keep "
            "serving.requestMode=rows"
        )
    return problems


def baking_periods(rollout: RolloutSettings) -> int:
    """How many times a blue/green deployment waits ``waitIntervalSeconds``: after each traffic step (the last
    is the final baking period before the old fleet is terminated)."""
    if rollout.mode == "canary":
        return 2
    if rollout.mode == "linear":
        return math.ceil(100 / rollout.linear_step_percent)
    return 1


def _rollout_timing_problems(where: str, rollout: RolloutSettings) -> list[str]:
    """AWS refuses a MaximumExecutionTimeoutInSeconds not larger than the deployment's total waiting time."""
    waiting = baking_periods(rollout) * rollout.wait_interval_seconds + rollout.termination_wait_seconds
    if rollout.maximum_execution_timeout_seconds > waiting:
        return []
    return [
        f"{where}: serving.rollout.maximumExecutionTimeoutSeconds={rollout.maximum_execution_timeout_seconds} must "
        f"be larger than the deployment's waiting time, {waiting} s ({baking_periods(rollout)} baking periods of "
        f"waitIntervalSeconds={rollout.wait_interval_seconds} plus terminationWaitSeconds="
        f"{rollout.termination_wait_seconds}); raise it (at most 28800) or shorten the waits"
    ]


# Instance families with local NVMe storage, which SageMaker encrypts in hardware: CreateEndpointConfig
# fails when a KmsKeyId is given for them ("Instance Store Volumes" in the SageMaker docs). Families with a
# 'd' in their suffix (m5d, c5d, r5d, g4dn, p3dn, p4d, m6id, ...) plus these newer ones.
_LOCAL_STORAGE_FAMILIES = frozenset({"g5", "g6", "g6e", "gr6", "p5", "p5e", "p5en", "trn1", "trn1n"})
_D_SUFFIX = re.compile(r"^[a-z]+\d+[a-z]*d[a-z]*$")


def has_local_storage(instance_type: str) -> bool:
    """True when ``instance_type`` (``ml.<family>.<size>``) has instance-store volumes (no KMS key allowed)."""
    family = instance_type.split(".")[1]
    return family in _LOCAL_STORAGE_FAMILIES or bool(_D_SUFFIX.match(family))
