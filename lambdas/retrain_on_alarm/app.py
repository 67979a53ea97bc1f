"""Retrain on alarm: a drift or model-quality alarm entering ALARM starts the model's training pipeline, once.

Triggers: the SNS ``retrain`` topic (CloudWatch alarm notification JSON in ``Records[].Sns.Message``) or an
EventBridge "CloudWatch Alarm State Change" event.

Flow (thin handler, pure decision, adapter): the handler parses the event into :class:`AlarmStateChange`; the pure :func:`decide` says
whether the alarm may retrain a model; :class:`Retrainer` then, once per alarm transition (powertools
idempotency keyed on alarm name + state-change time), skips when an execution is already Executing, claims a
slot in the model's ledger with one conditional DynamoDB write (cooldown and daily cap, safe under concurrency),
starts the pipeline with a ``ClientRequestToken`` derived from the transition (idempotent at AWS too) and
publishes what it decided to the alerts topic. If the start fails after the claim, the claim is released so the
retried event can start the pipeline.

Environment (read once at cold start): ``ALERTS_TOPIC_ARN``, ``STATE_TABLE``, ``RETRAIN_TARGETS``.
Errors: malformed events and unexpected AWS errors raise (Lambda retries, then dead-letters); decisions
(state other than ALARM, unknown alarm, cooldown, daily cap, already running, duplicate) are logged and counted.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from botocore.exceptions import ClientError
from responder_common.errors import (
    ConfigurationError,
    MalformedEventError,
    ResponderError,
    UpstreamError,
    report_failure,
)
from responder_common.events import (
    eventbridge_event,
    optional_str,
    parse_timestamp,
    require_mapping,
    require_str,
)
from responder_common.notify import Notification, Notifier
from responder_common.retry import Backoff, call_with_backoff, no_retry_config
from responder_common.settings import int_field, json_object, required, string_field

SERVICE = "retrain_on_alarm"
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "MLOps/Responders")

ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
DATA_VERSION_PARAMETER = "DataVersion"  # pipelines/factory.py DATA_VERSION; passed only if the pipeline defines it
IDEMPOTENCY_TTL_SECONDS = 2 * 24 * 3600  # a redelivered alarm transition is recognised for two days
LEDGER_PREFIX = "retrain#"
RECENT_EXECUTIONS = 50  # newest executions inspected for one still Executing


# ---------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True, kw_only=True)
class RetrainTarget:
    """What an alarm may retrain: the model, its pipeline and the limits on alarm-driven starts."""

    model: str
    pipeline_name: str
    cooldown_minutes: int
    max_per_day: int


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The function's environment, read once at cold start."""

    alerts_topic_arn: str
    state_table: str
    targets: Mapping[str, RetrainTarget]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse the environment; :class:`ConfigurationError` names the bad variable or key."""
        raw = json_object(env, "RETRAIN_TARGETS")
        targets: dict[str, RetrainTarget] = {}
        for alarm, spec in raw.items():
            where = f"RETRAIN_TARGETS[{alarm!r}]"
            if not isinstance(spec, dict):
                raise ConfigurationError(f"{where} must be an object, got {spec!r}")
            targets[alarm] = RetrainTarget(
                model=string_field(spec, "model", where),
                pipeline_name=string_field(spec, "pipelineName", where),
                cooldown_minutes=int_field(spec, "cooldownMinutes", where, minimum=0),
                max_per_day=int_field(spec, "maxPerDay", where, minimum=1),
            )
        return cls(
            alerts_topic_arn=required(env, "ALERTS_TOPIC_ARN"),
            state_table=required(env, "STATE_TABLE"),
            targets=targets,
        )


# ---------------------------------------------------------------------------------------------- events
@dataclass(frozen=True, kw_only=True)
class AlarmStateChange:
    """One alarm transition, whichever way it was delivered (SNS notification or EventBridge event)."""

    alarm_name: str
    state: str
    previous_state: str
    reason: str
    changed_at: datetime

    @property
    def stamp(self) -> str:
        """The transition time in a compact, canonical UTC form (``20240501T120000123Z``)."""
        return self.changed_at.strftime("%Y%m%dT%H%M%S") + f"{self.changed_at.microsecond // 1000:03d}Z"

    @property
    def idempotency_key(self) -> dict[str, str]:
        """What identifies the transition: the same for every redelivery, via SNS or EventBridge."""
        return {"alarm": self.alarm_name, "at": self.stamp}


def _from_sns_message(message: str) -> AlarmStateChange:
    try:
        body = json.loads(message)
    except json.JSONDecodeError as error:
        raise MalformedEventError(f"Records[].Sns.Message is not JSON: {error}") from error
    body = require_mapping(body, "Sns.Message")
    where = "Sns.Message"
    return AlarmStateChange(
        alarm_name=require_str(body, "AlarmName", where),
        state=require_str(body, "NewStateValue", where),
        previous_state=optional_str(body, "OldStateValue"),
        reason=optional_str(body, "NewStateReason"),
        changed_at=parse_timestamp(require_str(body, "StateChangeTime", where), f"{where}.StateChangeTime"),
    )


def _from_eventbridge(event: Mapping[str, Any]) -> AlarmStateChange:
    detail = eventbridge_event(event, source="aws.cloudwatch", detail_type=ALARM_DETAIL_TYPE).detail
    state = require_mapping(detail.get("state"), "detail.state")
    previous = detail.get("previousState")
    return AlarmStateChange(
        alarm_name=require_str(detail, "alarmName", "detail"),
        state=require_str(state, "value", "detail.state"),
        previous_state=optional_str(previous, "value") if isinstance(previous, Mapping) else "",
        reason=optional_str(state, "reason"),
        changed_at=parse_timestamp(require_str(state, "timestamp", "detail.state"), "detail.state.timestamp"),
    )


def parse_event(event: Any) -> list[AlarmStateChange]:
    """The alarm transitions in an SNS event (one per record) or an EventBridge alarm event.

    Raises :class:`MalformedEventError` for anything else, naming the field at fault.
    """
    raw = require_mapping(event, "event")
    if "Records" in raw:
        records = raw["Records"]
        if not isinstance(records, list) or not records:
            raise MalformedEventError("event.Records must be a non-empty list")
        changes = []
        for record in SNSEvent(dict(raw)).records:
            sns = require_mapping(record.raw_event.get("Sns"), "Records[].Sns")
            changes.append(_from_sns_message(require_str(sns, "Message", "Records[].Sns")))
        return changes
    if "detail-type" in raw:
        return [_from_eventbridge(raw)]
    raise MalformedEventError("event is neither an SNS notification nor a CloudWatch Alarm State Change event")


# ---------------------------------------------------------------------------------------------- decisions
class Outcome(enum.StrEnum):
    """What the responder decided; each has a metric of the same name."""

    STARTED = "RetrainStarted"
    NOT_IN_ALARM = "IgnoredNotInAlarm"
    UNKNOWN_ALARM = "IgnoredUnknownAlarm"
    ALREADY_RUNNING = "SkippedAlreadyRunning"
    COOLDOWN = "SkippedCooldown"
    DAILY_CAP = "SkippedDailyCap"
    DUPLICATE = "DuplicateDelivery"


@dataclass(frozen=True)
class Ignore:
    """The transition does not concern retraining."""

    outcome: Outcome
    why: str


@dataclass(frozen=True)
class Retrain:
    """The transition asks to retrain ``target`` (subject to the running, cooldown and cap checks)."""

    target: RetrainTarget


def decide(change: AlarmStateChange, targets: Mapping[str, RetrainTarget]) -> Ignore | Retrain:
    """Pure: only an alarm listed in ``RETRAIN_TARGETS`` entering ALARM asks for retraining."""
    if change.state != "ALARM":
        return Ignore(Outcome.NOT_IN_ALARM, f"alarm {change.alarm_name} is now {change.state}, not ALARM")
    target = targets.get(change.alarm_name)
    if target is None:
        return Ignore(Outcome.UNKNOWN_ALARM, f"alarm {change.alarm_name} is not a retraining trigger")
    return Retrain(target)


@dataclass(frozen=True, kw_only=True)
class LedgerClaim:
    """The conditional write that reserves one alarm-driven start for a model (all times in epoch seconds)."""

    pk: str
    now: int
    today: str
    cutoff: int
    max_per_day: int
    expires_at: int
    token: str


def ledger_claim(target: RetrainTarget, now: datetime, token: str) -> LedgerClaim:
    """Pure: the claim for a start at ``now``; the ledger item outlives both the cooldown and the UTC day."""
    now_utc = now.astimezone(UTC)
    epoch = int(now_utc.timestamp())
    next_midnight = datetime(now_utc.year, now_utc.month, now_utc.day, tzinfo=UTC) + timedelta(days=1)
    cooldown_end = epoch + target.cooldown_minutes * 60
    return LedgerClaim(
        pk=f"{LEDGER_PREFIX}{target.model}",
        now=epoch,
        today=now_utc.strftime("%Y-%m-%d"),
        cutoff=epoch - target.cooldown_minutes * 60,
        max_per_day=target.max_per_day,
        expires_at=max(cooldown_end, int(next_midnight.timestamp())) + 24 * 3600,
        token=token,
    )


def refusal(item: Mapping[str, Any] | None, claim: LedgerClaim) -> Outcome | None:
    """Pure: why the ledger item (plain values) refuses ``claim``, or None when it would accept it now."""
    if item is None:
        return None
    if int(item.get("last_started_at", 0)) > claim.cutoff:
        return Outcome.COOLDOWN
    if item.get("utc_day") == claim.today and int(item.get("day_count", 0)) >= claim.max_per_day:
        return Outcome.DAILY_CAP
    return None


def client_request_token(change: AlarmStateChange) -> str:
    """A ``ClientRequestToken`` (32-128 characters) that is the same for every delivery of one transition."""
    digest = hashlib.sha256(f"{change.alarm_name}|{change.stamp}".encode()).hexdigest()
    return f"alarm-{digest[:58]}"


def display_name(change: AlarmStateChange) -> str:
    """``PipelineExecutionDisplayName``: letters, digits and '-', at most 82 characters, saying why."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", change.alarm_name).strip("-")
    return f"alarm-{change.stamp}-{slug}"[:82].rstrip("-")


def pipeline_parameters(defined: set[str], change: AlarmStateChange) -> list[dict[str, str]]:
    """Pure: the parameters recording why this execution runs, limited to those the pipeline defines."""
    if DATA_VERSION_PARAMETER not in defined:
        return []
    return [{"Name": DATA_VERSION_PARAMETER, "Value": f"alarm-{change.alarm_name}-{change.stamp}"[:1024]}]


def describe_decision(outcome: Outcome, change: AlarmStateChange, target: RetrainTarget, detail: str) -> Notification:
    """The notification telling humans what was decided about a retraining alarm, and why."""
    verb = "started" if outcome is Outcome.STARTED else "skipped"
    lines = [
        f"Retraining {verb} for model {target.model} (pipeline {target.pipeline_name}).",
        f"Decision: {outcome.value}. {detail}",
        f"Alarm: {change.alarm_name} entered {change.state} at {change.changed_at.isoformat()}"
        + (f" (was {change.previous_state})." if change.previous_state else "."),
        f"Reason: {change.reason or 'not given'}",
        f"Limits: cooldown {target.cooldown_minutes} min, at most {target.max_per_day} alarm-driven runs per UTC day.",
    ]
    return Notification(subject=f"[mlops] retraining {verb}: {target.model} ({outcome.value})", body="\n".join(lines))


# ---------------------------------------------------------------------------------------------- adapters
def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item in wire format as plain values (numbers as int, strings as str)."""
    plain: dict[str, Any] = {}
    for key, value in item.items():
        if "N" in value:
            plain[key] = int(value["N"])
        elif "S" in value:
            plain[key] = value["S"]
    return plain


@dataclass(frozen=True)
class Ledger:
    """The cooldown/daily-cap ledger: one item per model (``pk = retrain#<model>``) in the state table."""

    dynamodb: Any
    table: str

    def claim(self, claim: LedgerClaim, *, alarm: str) -> tuple[Outcome | None, dict[str, Any] | None]:
        """Atomically reserve a start; returns (refusal or None, the item as it was before a granted claim).

        Two conditional updates, each atomic: the same UTC day (count below the cap, outside the cooldown), or
        a new day / first start (outside the cooldown). When both fail, the current item says why; if it would
        now accept (it changed between the two writes), the claim is tried again.
        """
        values = {
            ":now": {"N": str(claim.now)},
            ":today": {"S": claim.today},
            ":cutoff": {"N": str(claim.cutoff)},
            ":one": {"N": "1"},
            ":exp": {"N": str(claim.expires_at)},
            ":token": {"S": claim.token},
            ":alarm": {"S": alarm},
        }
        common = "last_started_at = :now, expires_at = :exp, claim_token = :token, last_alarm = :alarm"
        attempts = (
            (
                f"SET {common}, day_count = day_count + :one",
                "utc_day = :today AND day_count < :max AND last_started_at <= :cutoff",
                {**values, ":max": {"N": str(claim.max_per_day)}},
            ),
            (
                f"SET {common}, utc_day = :today, day_count = :one",
                "attribute_not_exists(pk) OR (utc_day <> :today AND last_started_at <= :cutoff)",
                values,
            ),
        )
        for _ in range(3):
            for update, condition, names in attempts:
                try:
                    response = self.dynamodb.update_item(
                        TableName=self.table,
                        Key={"pk": {"S": claim.pk}},
                        UpdateExpression=update,
                        ConditionExpression=condition,
                        ExpressionAttributeValues=names,
                        ReturnValues="ALL_OLD",
                    )
                except ClientError as error:
                    if _code(error) != "ConditionalCheckFailedException":
                        raise UpstreamError(
                            f"ledger claim on {claim.pk} failed: {_code(error)}", code=_code(error)
                        ) from error
                    continue
                old = response.get("Attributes")
                return None, dict(old) if old else None
            reason = refusal(self._current(claim.pk), claim)
            if reason is not None:
                return reason, None
        raise UpstreamError(f"ledger item {claim.pk} kept changing; claim not settled", code="Contention")

    def release(self, claim: LedgerClaim, previous: dict[str, Any] | None) -> None:
        """Undo a granted claim whose start failed (only if no other claim replaced it since)."""
        condition = {
            "ConditionExpression": "claim_token = :token",
            "ExpressionAttributeValues": {":token": {"S": claim.token}},
        }
        try:
            if previous is None:
                self.dynamodb.delete_item(TableName=self.table, Key={"pk": {"S": claim.pk}}, **condition)
            else:
                self.dynamodb.put_item(TableName=self.table, Item=previous, **condition)
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise UpstreamError(
                    f"ledger release on {claim.pk} failed: {_code(error)}", code=_code(error)
                ) from error

    def _current(self, pk: str) -> dict[str, Any] | None:
        try:
            response = self.dynamodb.get_item(TableName=self.table, Key={"pk": {"S": pk}}, ConsistentRead=True)
        except ClientError as error:
            raise UpstreamError(f"ledger read of {pk} failed: {_code(error)}", code=_code(error)) from error
        item = response.get("Item")
        return _plain(item) if item else None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class Pipelines:
    """SageMaker pipeline calls, each retried on throttling with bounded exponential backoff."""

    sagemaker: Any
    backoff: Backoff = field(default_factory=Backoff)
    sleep: Callable[[float], None] = time.sleep

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self.sagemaker, operation)
        try:
            return call_with_backoff(
                lambda: method(**kwargs), operation=operation, backoff=self.backoff, sleep=self.sleep
            )
        except ClientError as error:
            raise UpstreamError(f"SageMaker {operation} failed: {_code(error)}", code=_code(error)) from error

    def running_execution(self, pipeline: str) -> str | None:
        """The ARN of an execution of ``pipeline`` still Executing among the newest ones, or None."""
        response = self._call(
            "list_pipeline_executions",
            PipelineName=pipeline,
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=RECENT_EXECUTIONS,
        )
        for summary in response.get("PipelineExecutionSummaries", []):
            if summary.get("PipelineExecutionStatus") == "Executing":
                return str(summary["PipelineExecutionArn"])
        return None

    def parameter_names(self, pipeline: str) -> set[str]:
        """The names of the parameters the pipeline's current definition declares."""
        definition = self._call("describe_pipeline", PipelineName=pipeline).get("PipelineDefinition") or "{}"
        try:
            parameters = json.loads(definition).get("Parameters", [])
        except (json.JSONDecodeError, AttributeError) as error:
            raise UpstreamError(
                f"pipeline {pipeline} has an unreadable definition", code="InvalidDefinition"
            ) from error
        return {str(p["Name"]) for p in parameters if isinstance(p, dict) and "Name" in p}

    def start(self, pipeline: str, change: AlarmStateChange, parameters: list[dict[str, str]]) -> str:
        """Start an execution recording why; the token makes a repeated start of one transition a no-op."""
        response = self._call(
            "start_pipeline_execution",
            PipelineName=pipeline,
            ClientRequestToken=client_request_token(change),
            PipelineExecutionDisplayName=display_name(change),
            PipelineExecutionDescription=(
                f"Started by the {SERVICE} responder: alarm {change.alarm_name} entered {change.state} at "
                f"{change.changed_at.isoformat()}. Reason: {change.reason or 'not given'}"
            )[:3072],
            PipelineParameters=parameters,
        )
        return str(response["PipelineExecutionArn"])


@dataclass
class Retrainer:
    """Acts on one retraining request, at most once per alarm transition."""

    settings: Settings
    pipelines: Pipelines
    ledger: Ledger
    notifier: Notifier
    persistence: DynamoDBPersistenceLayer
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    config: IdempotencyConfig = field(init=False)
    _once: Callable[..., dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_TTL_SECONDS, response_hook=_mark_duplicate)
        self._once = idempotent_function(
            data_keyword_argument="key", persistence_store=self.persistence, config=self.config, key_prefix="alarm"
        )(self._respond)

    def handle(self, change: AlarmStateChange, target: RetrainTarget) -> dict[str, Any]:
        """Respond once to the transition; a concurrent delivery of the same transition is a decision."""
        try:
            return self._once(key=change.idempotency_key, change=change, target=target)
        except IdempotencyAlreadyInProgressError:
            # The invocation holding the record finishes the work (or fails and is retried by Lambda itself).
            return {"outcome": Outcome.DUPLICATE.value, "alarm": change.alarm_name, "inProgress": True}

    def _respond(self, *, key: dict[str, str], change: AlarmStateChange, target: RetrainTarget) -> dict[str, Any]:
        result: dict[str, Any] = {"alarm": change.alarm_name, "at": key["at"], "model": target.model}
        running = self.pipelines.running_execution(target.pipeline_name)
        if running is not None:
            outcome, detail = Outcome.ALREADY_RUNNING, f"Execution {running} is still Executing."
        else:
            claim = ledger_claim(target, self.clock(), client_request_token(change))
            refused, previous = self.ledger.claim(claim, alarm=change.alarm_name)
            if refused is not None:
                outcome = refused
                detail = (
                    f"The last alarm-driven start was less than {target.cooldown_minutes} minutes ago."
                    if refused is Outcome.COOLDOWN
                    else f"{target.max_per_day} alarm-driven starts already today (UTC)."
                )
            else:
                try:
                    parameters = pipeline_parameters(self.pipelines.parameter_names(target.pipeline_name), change)
                    arn = self.pipelines.start(target.pipeline_name, change, parameters)
                except ResponderError:
                    self.ledger.release(claim, previous)
                    raise
                outcome, detail = Outcome.STARTED, f"Execution {arn}."
                result["executionArn"] = arn
        result["outcome"] = outcome.value
        self.notifier.publish(describe_decision(outcome, change, target, detail))
        return result


def _mark_duplicate(response: Any, idempotent_data: Any) -> Any:
    """Idempotency response hook: a stored result returned again is a duplicate delivery.

    It is reported (and counted, once, by the handler) as ``DuplicateDelivery``; the first delivery's
    outcome stays visible as ``replayedOutcome``, so a duplicate never counts as a second start.
    """
    if isinstance(response, dict):
        return {
            **response,
            "outcome": Outcome.DUPLICATE.value,
            "replayedOutcome": response.get("outcome"),
            "duplicate": True,
        }
    return response


@dataclass(frozen=True)
class Runtime:
    """Everything an invocation needs, built once per container (or by a test, with its own clients)."""

    settings: Settings
    retrainer: Retrainer


def build_runtime(
    settings: Settings,
    *,
    sagemaker: Any,
    dynamodb: Any,
    sns: Any,
    clock: Callable[[], datetime] | None = None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Runtime:
    """Wire the adapters around the given clients (tests inject moto or Stubber clients, a clock and a sleep)."""
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.state_table, key_attr="pk", expiry_attr="expires_at", boto3_client=dynamodb
    )
    retrainer = Retrainer(
        settings=settings,
        pipelines=Pipelines(sagemaker=sagemaker, backoff=backoff or Backoff(), sleep=sleep or time.sleep),
        ledger=Ledger(dynamodb=dynamodb, table=settings.state_table),
        notifier=Notifier(sns=sns, topic_arn=settings.alerts_topic_arn),
        persistence=persistence,
    )
    if clock is not None:
        retrainer.clock = clock
    return Runtime(settings=settings, retrainer=retrainer)


@functools.cache
def runtime() -> Runtime:
    """The cold-start runtime: settings from the environment and default boto3 clients."""
    settings = Settings.from_env(os.environ)
    return build_runtime(
        settings,
        sagemaker=boto3.client("sagemaker", config=no_retry_config()),
        dynamodb=boto3.client("dynamodb"),
        sns=boto3.client("sns"),
    )


# ---------------------------------------------------------------------------------------------- handler
def process(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    """Parse, decide and act on every alarm transition in ``event``; returns the outcomes."""
    if context is not None:
        rt.retrainer.config.register_lambda_context(context)
    outcomes = []
    for change in parse_event(event):
        decision = decide(change, rt.settings.targets)
        if isinstance(decision, Ignore):
            logger.info(decision.why, extra={"alarm": change.alarm_name, "outcome": decision.outcome.value})
            result: dict[str, Any] = {"alarm": change.alarm_name, "outcome": decision.outcome.value}
        else:
            result = rt.retrainer.handle(change, decision.target)
            logger.info("retraining decision", extra=result)
        metrics.add_metric(name=result["outcome"], unit=MetricUnit.Count, value=1)
        outcomes.append(result)
    return {"outcomes": outcomes}


def _records(event: Any) -> Iterator[str]:
    """Message ids of the event, for log context (never the whole payload twice)."""
    if isinstance(event, Mapping):
        if isinstance(event.get("id"), str):
            yield event["id"]
        for record in event.get("Records", []) if isinstance(event.get("Records"), list) else []:
            if isinstance(record, Mapping) and isinstance(record.get("Sns"), Mapping):
                yield str(record["Sns"].get("MessageId", ""))


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: log with context and re-raise every error, so Lambda retries or dead-letters."""
    try:
        return process(event, runtime(), context)
    except ResponderError as error:
        report_failure(logger, metrics, SERVICE, error, event, list(_records(event)))
        raise
