"""Notify pipeline: tell humans how a training pipeline execution ended.

Trigger: EventBridge "SageMaker Model Building Pipeline Execution Status Change". For an execution of a
pipeline listed in ``PIPELINES`` reaching a final status (Succeeded, Failed, Stopped), it publishes a message
naming the pipeline, the model, the status and the execution ARN (plus the failure reason from
``DescribePipelineExecution`` when it failed) to ``ALERTS_TOPIC_ARN``. Intermediate statuses (Executing,
Stopping), pipelines it does not know and events from another account or region are decisions: logged and
counted, not notified. A "Failed" is notified even when ``DescribePipelineExecution`` fails: the message then says
the failure reason could not be read, and why.

Environment (read once at cold start): ``ALERTS_TOPIC_ARN``, ``PIPELINES`` (JSON ``{"<pipeline>": "<model>"}``).
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from responder_common.errors import MalformedEventError, UpstreamError, report_failure
from responder_common.events import (
    Origin,
    event_ids,
    eventbridge_event,
    eventbridge_origin,
    optional_str,
    require_str,
)
from responder_common.notify import Notification, Notifier, aws_error_code
from responder_common.redact import install as install_redaction
from responder_common.retry import client
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
    origin: tuple[str, str] = ("", "")

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
        origin=eventbridge_origin(event),
    )


class Outcome(enum.StrEnum):
    """What the responder decided; each has a metric of the same name."""

    NOTIFIED = "PipelineNotified"
    FOREIGN = "IgnoredForeignOrigin"
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


def decide(change: PipelineStatusChange, settings: Settings, origin: Origin | None = None) -> Ignore | Notify:
    """Pure: notify about final statuses of known pipelines of the function's own account and region only."""
    if origin is not None and not origin.admits(*change.origin):
        account, region = change.origin
        return Ignore(
            Outcome.FOREIGN,
            f"event comes from {account or '?'}/{region or '?'}, not this function's {origin.account}/{origin.region}",
        )
    model = settings.model_of(change.pipeline_name)
    if model is None:
        return Ignore(Outcome.UNKNOWN_PIPELINE, f"pipeline {change.pipeline_name} is not one of the platform's")
    if change.status not in FINAL_STATUSES:
        return Ignore(Outcome.NOT_FINAL, f"execution is {change.status}, not a final status")
    return Notify(model=model, needs_reason=change.status == "Failed")


def format_message(
    change: PipelineStatusChange, model: str, failure_reason: str | None, *, unreadable: str = ""
) -> Notification:
    """Pure: the notification for a finished execution; ``unreadable`` says why the failure reason is missing."""
    lines = [
        f"Training pipeline {change.pipeline_name} (model {model}) finished: {change.status}.",
        f"Execution: {change.execution_arn}",
    ]
    if change.display_name:
        lines.append(f"Display name: {change.display_name}")
    if change.started or change.ended:
        lines.append(f"Started {change.started or '?'}, ended {change.ended or '?'}.")
    if change.status == "Failed" and unreadable:
        lines.append(f"Failure reason: could not be read ({unreadable}); see the execution's steps in SageMaker.")
    elif change.status == "Failed":
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
        except (ClientError, BotoCoreError) as error:
            code = aws_error_code(error)
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
    """The cold-start runtime: settings from the environment, the responders' clients (standard retries)."""
    install_redaction(logger)
    return build_runtime(Settings.from_env(os.environ), sagemaker=client("sagemaker"), sns=client("sns"))


def process(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    """Parse, decide, look up the failure reason if needed and publish; returns the outcome.

    With a Lambda ``context``, events from another account or region are ignored (``IgnoredForeignOrigin``).
    """
    change = parse_event(event)
    decision = decide(change, rt.settings, Origin.of_context(context))
    result: dict[str, Any] = {"pipeline": change.pipeline_name, "status": change.status}
    if isinstance(decision, Ignore):
        level = logger.warning if decision.outcome is Outcome.FOREIGN else logger.info
        level(decision.why, extra={**result, "outcome": decision.outcome.value})
        result["outcome"] = decision.outcome.value
    else:
        reason, unreadable = None, ""
        if decision.needs_reason:
            try:
                reason = rt.executions.failure_reason(change.execution_arn)
            except UpstreamError as error:  # the failure is news either way: notify with what the event says
                unreadable = f"DescribePipelineExecution failed: {error.code}"
                logger.warning("failure reason not read", extra={**result, "error": str(error)})
                metrics.add_metric(name="FailureReasonUnread", unit=MetricUnit.Count, value=1)
        message_id = rt.notifier.publish(format_message(change, decision.model, reason, unreadable=unreadable))
        result.update(outcome=Outcome.NOTIFIED.value, model=decision.model, messageId=message_id)
        logger.info("pipeline status notified", extra=result)
    metrics.add_metric(name=result["outcome"], unit=MetricUnit.Count, value=1)
    return result


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: report every failure (log + ``Failed``) and re-raise it, so Lambda retries or
    dead-letters the event."""
    try:
        return process(event, runtime(), context)
    except Exception as error:  # every failure, deliberate or not, goes through the failure log and metric
        raised = report_failure(logger, metrics, SERVICE, error, event, event_ids(event))
        if raised is error:
            raise
        raise raised from None
