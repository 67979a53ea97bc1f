"""Notify pipeline: tell humans how a training pipeline execution ended.

Trigger: EventBridge "SageMaker Model Building Pipeline Execution Status Change". For an execution of a
pipeline listed in ``PIPELINES`` reaching a final status (Succeeded, Failed, Stopped), it publishes a message
naming the pipeline, the model, the status and the execution ARN (plus the failure reason from
``DescribePipelineExecution`` when it failed) to ``ALERTS_TOPIC_ARN``. Intermediate statuses (Executing,
Stopping) and pipelines it does not know are decisions: logged and counted, not notified.

Environment (read once at cold start): ``ALERTS_TOPIC_ARN``, ``PIPELINES`` (JSON ``{"<pipeline>": "<model>"}``).
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from responder_common.errors import MalformedEventError, ResponderError, UpstreamError, report_failure
from responder_common.events import eventbridge_event, optional_str, require_str
from responder_common.notify import Notification, Notifier
from responder_common.settings import required, string_map

SERVICE = "notify_pipeline"
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "MLOps/Responders")

DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Status Change"
FINAL_STATUSES = frozenset({"Succeeded", "Failed", "Stopped"})


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The function's environment, read once at cold start."""

    alerts_topic_arn: str
    pipelines: Mapping[str, str]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse the environment; :class:`ConfigurationError` names the bad variable."""
        return cls(alerts_topic_arn=required(env, "ALERTS_TOPIC_ARN"), pipelines=string_map(env, "PIPELINES"))

    def model_of(self, pipeline: str) -> str | None:
        """The model trained by ``pipeline`` (SageMaker may lower-case names in ARNs, so compare case-blind)."""
        lowered = {name.lower(): model for name, model in self.pipelines.items()}
        return lowered.get(pipeline.lower())


@dataclass(frozen=True, kw_only=True)
class PipelineStatusChange:
    """One execution status change, as EventBridge delivers it."""

    pipeline_arn: str
    execution_arn: str
    status: str
    previous_status: str
    display_name: str
    started: str
    ended: str

    @property
    def pipeline_name(self) -> str:
        """The pipeline name, from ``arn:aws:sagemaker:<region>:<account>:pipeline/<name>``."""
        return self.pipeline_arn.rsplit(":pipeline/", 1)[-1].split("/", 1)[0]


def parse_event(event: Any) -> PipelineStatusChange:
    """The status change in the event; :class:`MalformedEventError` when the event is not one."""
    detail = eventbridge_event(event, source="aws.sagemaker", detail_type=DETAIL_TYPE).detail
    pipeline_arn = require_str(detail, "pipelineArn", "detail")
    if ":pipeline/" not in pipeline_arn:
        raise MalformedEventError(f"detail.pipelineArn is not a pipeline ARN: {pipeline_arn!r}")
    return PipelineStatusChange(
        pipeline_arn=pipeline_arn,
        execution_arn=require_str(detail, "pipelineExecutionArn", "detail"),
        status=require_str(detail, "currentPipelineExecutionStatus", "detail"),
        previous_status=optional_str(detail, "previousPipelineExecutionStatus"),
        display_name=optional_str(detail, "pipelineExecutionDisplayName"),
        started=optional_str(detail, "executionStartTime"),
        ended=optional_str(detail, "executionEndTime"),
    )


class Outcome(enum.StrEnum):
    """What the responder decided; each has a metric of the same name."""

    NOTIFIED = "PipelineNotified"
    NOT_FINAL = "IgnoredNotFinal"
    UNKNOWN_PIPELINE = "IgnoredUnknownPipeline"


@dataclass(frozen=True)
class Ignore:
    """The change is not worth a notification."""

    outcome: Outcome
    why: str


@dataclass(frozen=True)
class Notify:
    """Notify about ``change`` of ``model``'s pipeline; ``needs_reason`` when it failed."""

    model: str
    needs_reason: bool


def decide(change: PipelineStatusChange, settings: Settings) -> Ignore | Notify:
    """Pure: notify about final statuses of known pipelines only."""
    model = settings.model_of(change.pipeline_name)
    if model is None:
        return Ignore(Outcome.UNKNOWN_PIPELINE, f"pipeline {change.pipeline_name} is not one of the platform's")
    if change.status not in FINAL_STATUSES:
        return Ignore(Outcome.NOT_FINAL, f"execution is {change.status}, not a final status")
    return Notify(model=model, needs_reason=change.status == "Failed")


def format_message(change: PipelineStatusChange, model: str, failure_reason: str | None) -> Notification:
    """Pure: the notification for a finished execution."""
    lines = [
        f"Training pipeline {change.pipeline_name} (model {model}) finished: {change.status}.",
        f"Execution: {change.execution_arn}",
    ]
    if change.display_name:
        lines.append(f"Display name: {change.display_name}")
    if change.started or change.ended:
        lines.append(f"Started {change.started or '?'}, ended {change.ended or '?'}.")
    if change.status == "Failed":
        lines.append(f"Failure reason: {failure_reason or 'not reported by SageMaker'}")
    if change.status == "Succeeded":
        lines.append("A new model version may be waiting for approval in the model registry.")
    return Notification(subject=f"[mlops] pipeline {change.status}: {model}", body="\n".join(lines))


@dataclass(frozen=True)
class Executions:
    """SageMaker adapter: the failure reason of an execution."""

    sagemaker: Any

    def failure_reason(self, execution_arn: str) -> str | None:
        """``FailureReason`` from ``DescribePipelineExecution`` (None when empty)."""
        try:
            response = self.sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            raise UpstreamError(f"DescribePipelineExecution of {execution_arn} failed: {code}", code=code) from error
        return response.get("FailureReason") or None


@dataclass(frozen=True)
class Runtime:
    """Everything an invocation needs, built once per container (or by a test, with its own clients)."""

    settings: Settings
    executions: Executions
    notifier: Notifier


def build_runtime(settings: Settings, *, sagemaker: Any, sns: Any) -> Runtime:
    """Wire the adapters around the given clients."""
    return Runtime(
        settings=settings,
        executions=Executions(sagemaker),
        notifier=Notifier(sns=sns, topic_arn=settings.alerts_topic_arn),
    )


@functools.cache
def runtime() -> Runtime:
    """The cold-start runtime: settings from the environment and default boto3 clients."""
    return build_runtime(Settings.from_env(os.environ), sagemaker=boto3.client("sagemaker"), sns=boto3.client("sns"))


def process(event: Any, rt: Runtime) -> dict[str, Any]:
    """Parse, decide, look up the failure reason if needed and publish; returns the outcome."""
    change = parse_event(event)
    decision = decide(change, rt.settings)
    result: dict[str, Any] = {"pipeline": change.pipeline_name, "status": change.status}
    if isinstance(decision, Ignore):
        logger.info(decision.why, extra={**result, "outcome": decision.outcome.value})
        result["outcome"] = decision.outcome.value
    else:
        reason = rt.executions.failure_reason(change.execution_arn) if decision.needs_reason else None
        message_id = rt.notifier.publish(format_message(change, decision.model, reason))
        result.update(outcome=Outcome.NOTIFIED.value, model=decision.model, messageId=message_id)
        logger.info("pipeline status notified", extra=result)
    metrics.add_metric(name=result["outcome"], unit=MetricUnit.Count, value=1)
    return result


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: log with context and re-raise every error, so Lambda retries or dead-letters."""
    try:
        return process(event, runtime())
    except ResponderError as error:
        report_failure(logger, metrics, SERVICE, error, event, [event.get("id")] if isinstance(event, Mapping) else [])
        raise
