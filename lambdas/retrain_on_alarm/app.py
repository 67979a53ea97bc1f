"""Retrain on alarm: a drift or model-quality alarm entering ALARM starts the model's training pipeline, once.

Triggers: the SNS ``retrain`` topic (CloudWatch alarm notification JSON in ``Records[].Sns.Message``) or an
EventBridge "CloudWatch Alarm State Change" event.

Flow (thin handler, pure decision, adapter): the handler parses the event into :class:`AlarmStateChange`; the pure :func:`decide` says
whether the alarm may retrain a model (an alarm of this account and region, listed, entering ALARM);
:class:`Retrainer` then, once per alarm transition (powertools idempotency keyed on alarm name + state-change
time), skips when another execution is Executing, claims a slot in the model's ledger with one conditional
DynamoDB write (cooldown and daily cap, safe under concurrency), starts the pipeline with a
``ClientRequestToken`` derived from the transition (idempotent at AWS too) and publishes what it decided to the
alerts topic.

Exactly one execution per transition, whatever fails: a failed start (any error, network ones included)
releases the claim; a claim or start whose response was lost is recognised on retry as this transition's own
(the ledger item carries the transition's token, the running execution its display name) and completes with
the same ``ClientRequestToken``, which AWS answers with the execution it already started.

Environment (read once at cold start): ``ALERTS_TOPIC_ARN``, ``STATE_TABLE``, ``RETRAIN_TARGETS``.
Errors: every failure is reported (log + ``Failed`` metric) and re-raised (Lambda retries, then dead-letters);
decisions (foreign origin, state other than ALARM, unknown alarm, cooldown, daily cap, already running,
duplicate) are logged and counted.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    BaseError as IdempotencyError,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from botocore.exceptions import BotoCoreError, ClientError
from responder_common.errors import (
    ConfigurationError,
    DeliveryInProgressError,
    MalformedEventError,
    UpstreamError,
    report_failure,
)
from responder_common.events import (
    Origin,
    arn_origin,
    event_ids,
    eventbridge_event,
    eventbridge_origin,
    optional_str,
    parse_timestamp,
    require_mapping,
    require_str,
)
from responder_common.notify import Notification, Notifier, aws_error_code
from responder_common.redact import install as install_redaction
from responder_common.retry import client
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
    """One alarm transition, whichever way it was delivered (SNS notification or EventBridge event).

    ``origins`` are the (account, region) pairs the delivery claims: the SNS topic's and the alarm's ARN, or the
    EventBridge event's ``account`` and ``region``.
    """

    alarm_name: str
    state: str
    previous_state: str
    reason: str
    changed_at: datetime
    origins: tuple[tuple[str, str], ...] = ()

    @property
    def stamp(self) -> str:
        """The transition time in a compact, canonical UTC form (``20240501T120000123Z``)."""
        return self.changed_at.strftime("%Y%m%dT%H%M%S") + f"{self.changed_at.microsecond // 1000:03d}Z"

    @property
    def idempotency_key(self) -> dict[str, str]:
        """What identifies the transition: the same for every redelivery, via SNS or EventBridge."""
        return {"alarm": self.alarm_name, "at": self.stamp}


def _from_sns_message(message: str, topic_arn: str) -> AlarmStateChange:
    try:
        body = json.loads(message)
    except (json.JSONDecodeError, RecursionError) as error:
        raise MalformedEventError(f"Records[].Sns.Message is not JSON: {error}") from error
    body = require_mapping(body, "Sns.Message")
    where = "Sns.Message"
    topic_account, topic_region = arn_origin(topic_arn)
    alarm_arn = optional_str(body, "AlarmArn")
    alarm_origin = arn_origin(alarm_arn) if alarm_arn else (optional_str(body, "AWSAccountId"), topic_region)
    return AlarmStateChange(
        alarm_name=require_str(body, "AlarmName", where),
        state=require_str(body, "NewStateValue", where),
        previous_state=optional_str(body, "OldStateValue"),
        reason=optional_str(body, "NewStateReason"),
        changed_at=parse_timestamp(require_str(body, "StateChangeTime", where), f"{where}.StateChangeTime"),
        origins=((topic_account, topic_region), alarm_origin),
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
        origins=(eventbridge_origin(event),),
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
            raw_record = require_mapping(record.raw_event, "Records[]")
            sns = require_mapping(raw_record.get("Sns"), "Records[].Sns")
            message = require_str(sns, "Message", "Records[].Sns")
            changes.append(_from_sns_message(message, optional_str(sns, "TopicArn")))
        return changes
    if "detail-type" in raw:
        return [_from_eventbridge(raw)]
    raise MalformedEventError("event is neither an SNS notification nor a CloudWatch Alarm State Change event")


# ---------------------------------------------------------------------------------------------- decisions
class Outcome(enum.StrEnum):
    """What the responder decided; each has a metric of the same name."""

    STARTED = "RetrainStarted"
    FOREIGN = "IgnoredForeignOrigin"
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


def decide(
    change: AlarmStateChange, targets: Mapping[str, RetrainTarget], origin: Origin | None = None
) -> Ignore | Retrain:
    """Pure: only an alarm of the function's own account and region (when ``origin`` is known), listed in
    ``RETRAIN_TARGETS``, entering ALARM asks for retraining."""
    if origin is not None and not (change.origins and all(origin.admits(*o) for o in change.origins)):
        claimed = ", ".join(f"{account or '?'}/{region or '?'}" for account, region in change.origins) or "none"
        return Ignore(
            Outcome.FOREIGN,
            f"alarm {change.alarm_name} comes from {claimed}, not this function's {origin.account}/{origin.region}",
        )
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


def _is_conditional_failure(error: ClientError | BotoCoreError) -> bool:
    return isinstance(error, ClientError) and aws_error_code(error) == "ConditionalCheckFailedException"


@dataclass(frozen=True)
class Ledger:
    """The cooldown/daily-cap ledger: one item per model (``pk = retrain#<model>``) in the state table.

    A granted claim also saves what it overwrote (``prev_started_at``, ``prev_day``, ``prev_count``: DynamoDB
    evaluates every operand of an update against the item as it was), so :meth:`release` can restore it, and
    carries the transition's token (``claim_token``), so a retried claim whose first write landed but whose
    response was lost is recognised as granted rather than refused by its own cooldown.
    """

    dynamodb: Any
    table: str

    def claim(self, claim: LedgerClaim, *, alarm: str) -> Outcome | None:
        """Atomically reserve a start; returns the refusal (cooldown, daily cap) or None when granted.

        Two conditional updates, each atomic: the same UTC day (count below the cap, outside the cooldown), or
        a new day / first start (outside the cooldown). When both fail, the current item says why: it is ours
        (granted), it refuses, or it changed between the two writes and the claim is tried again.
        """
        values = {
            ":now": {"N": str(claim.now)},
            ":today": {"S": claim.today},
            ":cutoff": {"N": str(claim.cutoff)},
            ":one": {"N": "1"},
            ":zero": {"N": "0"},
            ":none": {"S": ""},
            ":exp": {"N": str(claim.expires_at)},
            ":token": {"S": claim.token},
            ":alarm": {"S": alarm},
        }
        common = "last_started_at = :now, expires_at = :exp, claim_token = :token, last_alarm = :alarm"
        attempts = (
            (
                f"SET prev_started_at = last_started_at, prev_day = utc_day, prev_count = day_count, {common}, "
                "day_count = day_count + :one",
                "utc_day = :today AND day_count < :max AND last_started_at <= :cutoff",
                {**values, ":max": {"N": str(claim.max_per_day)}},
            ),
            (
                "SET prev_started_at = if_not_exists(last_started_at, :zero), prev_day = if_not_exists(utc_day, :none), "
                f"prev_count = if_not_exists(day_count, :zero), {common}, utc_day = :today, day_count = :one",
                "attribute_not_exists(pk) OR (utc_day <> :today AND last_started_at <= :cutoff)",
                values,
            ),
        )
        for _ in range(3):
            for update, condition, names in attempts:
                try:
                    self.dynamodb.update_item(
                        TableName=self.table,
                        Key={"pk": {"S": claim.pk}},
                        UpdateExpression=update,
                        ConditionExpression=condition,
                        # DynamoDB refuses values an expression does not use.
                        ExpressionAttributeValues={
                            k: names[k] for k in set(re.findall(r":\w+", f"{update} {condition}"))
                        },
                    )
                except (ClientError, BotoCoreError) as error:
                    if not _is_conditional_failure(error):
                        code = aws_error_code(error)
                        raise UpstreamError(f"ledger claim on {claim.pk} failed: {code}", code=code) from error
                    continue
                return None
            current = self._current(claim.pk)
            if current is not None and current.get("claim_token") == claim.token:
                return None  # this transition's own claim: granted earlier, its answer lost on the way back
            reason = refusal(current, claim)
            if reason is not None:
                return reason
        raise UpstreamError(f"ledger item {claim.pk} kept changing; claim not settled", code="Contention")

    def release(self, claim: LedgerClaim) -> None:
        """Undo a granted claim whose start failed, restoring what it overwrote (only if it is still this
        transition's claim: a retried release, or a claim made since, is left alone)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"pk": {"S": claim.pk}},
                UpdateExpression=(
                    "SET last_started_at = prev_started_at, utc_day = prev_day, day_count = prev_count "
                    "REMOVE claim_token"
                ),
                ConditionExpression="claim_token = :token",
                ExpressionAttributeValues={":token": {"S": claim.token}},
            )
        except (ClientError, BotoCoreError) as error:
            if not _is_conditional_failure(error):
                code = aws_error_code(error)
                raise UpstreamError(f"ledger release on {claim.pk} failed: {code}", code=code) from error

    def _current(self, pk: str) -> dict[str, Any] | None:
        try:
            response = self.dynamodb.get_item(TableName=self.table, Key={"pk": {"S": pk}}, ConsistentRead=True)
        except (ClientError, BotoCoreError) as error:
            code = aws_error_code(error)
            raise UpstreamError(f"ledger read of {pk} failed: {code}", code=code) from error
        item = response.get("Item")
        return _plain(item) if item else None


@dataclass(frozen=True)
class Pipelines:
    """SageMaker pipeline calls (botocore's standard retries absorb throttling and transient faults)."""

    sagemaker: Any

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.sagemaker, operation)(**kwargs)
        except (ClientError, BotoCoreError) as error:
            code = aws_error_code(error)
            raise UpstreamError(f"SageMaker {operation} failed: {code}", code=code) from error

    def running_execution(self, pipeline: str, *, own_display_name: str = "") -> str | None:
        """The ARN of another execution of ``pipeline`` still Executing among the newest ones, or None.

        An execution named ``own_display_name`` is this transition's own (started by an earlier attempt whose
        outcome was lost): it does not count, so the retry completes with the same execution.
        """
        response = self._call(
            "list_pipeline_executions",
            PipelineName=pipeline,
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=RECENT_EXECUTIONS,
        )
        for summary in response.get("PipelineExecutionSummaries", []):
            if summary.get("PipelineExecutionStatus") != "Executing":
                continue
            if own_display_name and summary.get("PipelineExecutionDisplayName") == own_display_name:
                continue
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
        """Respond once to the transition.

        Raises :class:`DeliveryInProgressError` when another invocation holds the transition's record (Lambda
        retries this delivery; by then the holder has finished, or its record has expired with its time), and
        :class:`UpstreamError` when the idempotency record cannot be read or written.
        """
        try:
            return self._once(key=change.idempotency_key, change=change, target=target)
        except IdempotencyAlreadyInProgressError:
            raise DeliveryInProgressError(
                f"alarm {change.alarm_name} at {change.stamp} is being handled by another invocation; "
                "this delivery is retried later"
            ) from None
        except IdempotencyError as error:
            raise UpstreamError(
                f"idempotency record of alarm {change.alarm_name} at {change.stamp} in {self.settings.state_table} "
                f"failed: {type(error).__name__}",
                code="IdempotencyStore",
            ) from error

    def _respond(self, *, key: dict[str, str], change: AlarmStateChange, target: RetrainTarget) -> dict[str, Any]:
        result: dict[str, Any] = {"alarm": change.alarm_name, "at": key["at"], "model": target.model}
        running = self.pipelines.running_execution(target.pipeline_name, own_display_name=display_name(change))
        if running is not None:
            outcome, detail = Outcome.ALREADY_RUNNING, f"Execution {running} is still Executing."
        else:
            claim = ledger_claim(target, self.clock(), client_request_token(change))
            refused = self.ledger.claim(claim, alarm=change.alarm_name)
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
                except Exception:
                    # Whatever failed (an AWS error, a network error, a bug), the claim must not outlive it: the
                    # retried event claims again. Should the release fail too, the retry still recognises the
                    # claim by its token.
                    self._release(claim)
                    raise
                outcome, detail = Outcome.STARTED, f"Execution {arn}."
                result["executionArn"] = arn
        result["outcome"] = outcome.value
        self.notifier.publish(describe_decision(outcome, change, target, detail))
        return result

    def _release(self, claim: LedgerClaim) -> None:
        try:
            self.ledger.release(claim)
        except UpstreamError as error:
            logger.warning("ledger claim not released", extra={"pk": claim.pk, "error": str(error)})


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
) -> Runtime:
    """Wire the adapters around the given clients (tests inject moto or Stubber clients and a clock)."""
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.state_table, key_attr="pk", expiry_attr="expires_at", boto3_client=dynamodb
    )
    retrainer = Retrainer(
        settings=settings,
        pipelines=Pipelines(sagemaker=sagemaker),
        ledger=Ledger(dynamodb=dynamodb, table=settings.state_table),
        notifier=Notifier(sns=sns, topic_arn=settings.alerts_topic_arn),
        persistence=persistence,
    )
    if clock is not None:
        retrainer.clock = clock
    return Runtime(settings=settings, retrainer=retrainer)


@functools.cache
def runtime() -> Runtime:
    """The cold-start runtime: settings from the environment, the responders' clients (standard retries)."""
    install_redaction(logger)
    settings = Settings.from_env(os.environ)
    return build_runtime(settings, sagemaker=client("sagemaker"), dynamodb=client("dynamodb"), sns=client("sns"))


# ---------------------------------------------------------------------------------------------- handler
def process(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    """Parse, decide and act on every alarm transition in ``event``; returns the outcomes.

    With a Lambda ``context``, alarms from another account or region are ignored (``IgnoredForeignOrigin``).
    """
    origin = Origin.of_context(context)
    if context is not None:
        rt.retrainer.config.register_lambda_context(context)
    outcomes = []
    for change in parse_event(event):
        decision = decide(change, rt.settings.targets, origin)
        if isinstance(decision, Ignore):
            level = logger.warning if decision.outcome is Outcome.FOREIGN else logger.info
            level(decision.why, extra={"alarm": change.alarm_name, "outcome": decision.outcome.value})
            result: dict[str, Any] = {"alarm": change.alarm_name, "outcome": decision.outcome.value}
        else:
            result = rt.retrainer.handle(change, decision.target)
            logger.info("retraining decision", extra=result)
        metrics.add_metric(name=result["outcome"], unit=MetricUnit.Count, value=1)
        outcomes.append(result)
    return {"outcomes": outcomes}


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
