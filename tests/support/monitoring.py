"""Queries over an offline plan that the monitoring tests ask (both engines)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from infra.config import ModelSettings, PlatformConfig
from tests.support.plans import prefix, served
from tests.support.types import ALARM, COMPOSITE, MONITORING, PIPELINE, ROLE, ROLE_POLICY
from verify.mock_engine import OfflinePlan, PlannedResource, read_stack_values

SCHEDULER_SCHEDULE = "aws:scheduler/schedule:Schedule"


def of_model(plan: OfflinePlan, model: ModelSettings, type_token: str) -> list[PlannedResource]:
    """Resources of ``type_token`` inside the model's ModelMonitoring component."""
    head = f"{prefix(plan)}-{model.name}-monitoring-"
    return [r for r in plan.of_type(type_token) if r.component == MONITORING and r.name.startswith(head)]


def alarm_name(alarm: PlannedResource) -> str:
    return str(alarm.inputs.get("name") or alarm.inputs.get("alarmName"))


def monitoring_alarms(plan: OfflinePlan) -> list[PlannedResource]:
    return [r for r in plan.resources if r.type in (ALARM, COMPOSITE) and r.component == MONITORING]


def captured(model: ModelSettings) -> bool:
    """The model's endpoint captures requests (an instance endpoint with data capture on)."""
    serving = model.serving
    return serving is not None and serving.strategy != "serverless" and serving.data_capture.enabled


def platform_monitored(plan: OfflinePlan) -> list[ModelSettings]:
    """Served models the platform engine watches (capture on, drift or quality monitored)."""
    return [
        m
        for m in served(plan)
        if captured(m)
        and m.monitoring.engine == "platform"
        and (m.monitoring.data_quality.enabled or m.monitoring.model_quality.enabled)
    ]


def monitoring_pipeline(plan: OfflinePlan, model: ModelSettings) -> PlannedResource:
    (pipeline,) = of_model(plan, model, PIPELINE)
    return pipeline


def step_arguments(pipeline: PlannedResource) -> dict[str, Any]:
    """The ``CreateProcessingJob`` arguments of the monitoring pipeline's one step."""
    (step,) = json.loads(pipeline.inputs["pipelineDefinition"])["Steps"]
    return step["Arguments"]


def cli(pipeline: PlannedResource) -> dict[str, list[Any]]:
    """The drift job's command line as flag → values (``--dimension`` appears twice)."""
    arguments = step_arguments(pipeline)["AppSpecification"]["ContainerArguments"]
    flags: dict[str, list[Any]] = defaultdict(list)
    for flag, value in zip(arguments[::2], arguments[1::2], strict=True):
        flags[flag].append(value)
    return dict(flags)


def role_named(plan: OfflinePlan, arn: str) -> PlannedResource:
    (role,) = [r for r in plan.of_type(ROLE) if r.state.get("arn") == arn]
    return role


def policy_of(plan: OfflinePlan, role: PlannedResource) -> dict[str, dict[str, Any]]:
    """The role's inline policy statements by Sid."""
    (policy,) = [p for p in plan.of_type(ROLE_POLICY) if p.parent == role.urn]
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def stack_models(stack: str) -> list[dict[str, Any]]:
    """The stack file's ``mlops:models`` as plain data (to derive variant plans)."""
    return json.loads(read_stack_values(stack)["mlops:models"])


def to_model_monitor(model: dict[str, Any]) -> None:
    """Switch a stack-file model to ``monitoring.engine: model-monitor`` with Model Monitor's usual schedules:
    what an account that still has Model Monitor would write."""
    monitoring = model.setdefault("monitoring", {})
    monitoring.pop("platform", None)
    monitoring["engine"] = "model-monitor"
    monitoring["dataQuality"] = {
        **monitoring.get("dataQuality", {}),
        "schedule": "cron(0 * ? * * *)",
        "driftThreshold": 0.1,
    }
    monitoring["modelQuality"] = {**monitoring.get("modelQuality", {}), "schedule": "cron(0 0 ? * * *)"}
    to_rows_mode(model)  # Model Monitor reads captured requests as raw records: it cannot watch an entity endpoint


def to_rows_mode(model: dict[str, Any]) -> None:
    """Switch a stack-file model's endpoint to ``serving.requestMode: rows`` (requests carry raw records)."""
    serving = model.get("serving")
    if serving:
        serving["requestMode"] = "rows"
        serving.pop("onlineLookup", None)


def build_monitoring_directly(config: PlatformConfig) -> None:
    """Build the only model's ``ModelMonitoring`` of ``config`` outside the platform program, with a stand-in
    foundation and no code bundle or aws-native provider: what a component test of its own checks refuses."""
    import asyncio

    import pulumi

    from infra import monitoring
    from infra.context import StackContext
    from infra.foundation import Bucket, Foundation
    from infra.model_versions import OfflineVersions
    from infra.serving.component import ServedEndpoint
    from infra.training import QualityGate
    from mlops.features import get_spec
    from verify.mock_engine import MOCK_ACCOUNT_ID, PlatformMocks

    # Outputs need an event loop; under pytest-xdist the calling test may run first in its worker.
    asyncio.set_event_loop(asyncio.new_event_loop())
    (model,) = config.models
    ctx = StackContext.from_config(config, OfflineVersions(region=config.region, account_id=MOCK_ACCOUNT_ID))
    pulumi.runtime.set_mocks(PlatformMocks(config.region), project="mlops", stack="staging", preview=False)
    spec = get_spec(model.feature_spec)
    output = pulumi.Output.from_input
    foundation = Foundation(
        region=config.region,
        account_id=output(MOCK_ACCOUNT_ID),
        key_arn=output("arn:aws:kms:eu-west-1:123456789012:key/k"),
        buckets={"monitoring": Bucket(name=output("bucket"), arn=output("arn:aws:s3:::bucket"))},
        databases={},
        access_log_bucket=output("logs"),
        alerts_topic_arn=output("arn:aws:sns:eu-west-1:123456789012:alerts"),
        retrain_topic_arn=output("arn:aws:sns:eu-west-1:123456789012:retrain"),
    )
    monitoring.ModelMonitoring(
        "direct",
        monitoring.ModelMonitoringArgs(
            context=ctx,
            foundation=foundation,
            names=ctx.naming.model_names(model.name, spec.version),
            settings=model.monitoring,
            spec=spec,
            endpoint=ServedEndpoint(
                name=output("endpoint"),
                variant_names=("current",),
                data_capture_uri=output("s3://bucket/customer-churn/data-capture"),
                served_version_arn=None,
                latency_p99_ms_threshold=500,
                error_rate_percent_threshold=1.0,
            ),
            quality_gate=QualityGate(metric_name="auc", threshold=0.75),
        ),
    )
