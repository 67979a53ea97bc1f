"""Retrain on alarm or on new data: a drift or model-quality alarm entering ALARM, or a new load of a model's
source table in the curated zone, starts the model's training pipeline, once.

Triggers: the SNS ``retrain`` topic (CloudWatch alarm notification JSON in ``Records[].Sns.Message``), an
EventBridge "CloudWatch Alarm State Change" event, or, for models with ``training.retrainOnNewData``, a batch of
SQS messages (``Records[].eventSource == "aws:sqs"``) whose bodies are S3 "Object Created" EventBridge events of
the model's table (an ``mlops.ingestion`` commit marker, or any data object: ``retrainOnNewData.match``).

New data (see :func:`process_new_data`): the event source mapping gathers a burst for up to its batching window;
the objects of one batch are reduced to loads (a load is a batch id: the commit marker's, or the one in an
ingested file's name) and each model's loads to ONE start request, identified by its newest load. That request
then goes through exactly the alarm path below (idempotency record, running check, the model's ledger claim,
start with a ``ClientRequestToken``, notification): data-driven and alarm-driven starts share one cooldown and
one daily cap per model. ``InputDataUri`` is the whole table (preprocess needs the history, not only the new
partition) and ``DataVersion`` the load's batch id. Failed records are returned in ``batchItemFailures``
(partial batch response): only they are redelivered, then dead-lettered by the queue's redrive policy.

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

Environment (read once at cold start): ``ALERTS_TOPIC_ARN``, ``STATE_TABLE``, ``RETRAIN_TARGETS``,
``NEW_DATA_TARGETS`` (optional; model → its table's bucket and prefix, pipeline and limits).
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
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
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
# A redelivered alarm transition or load is recognised for 14 days: the longest an event can wait anywhere on its
# way here (SQS's maximum retention, of the new-data queues and of the dead-letter queues it may be redriven from).
IDEMPOTENCY_TTL_SECONDS = 14 * 24 * 3600
LEDGER_PREFIX = "retrain#"
RECENT_EXECUTIONS = 50  # newest executions inspected for one still Executing

OBJECT_CREATED_DETAIL_TYPE = "Object Created"  # S3's EventBridge event for every way an object is created
INPUT_DATA_PARAMETER = "InputDataUri"  # pipelines/factory.py INPUT_DATA_URI; passed only if the pipeline defines it
COMMITS_PREFIX = "_commits/"  # mlops/ingestion.py COMMITS_PREFIX: one marker object per committed load
COMMIT_MARKER_SUFFIX = ".json"
MATCH_COMMITS, MATCH_OBJECTS = "commits", "objects"
INGESTED_FILE = re.compile(r"^(?P<batch>[A-Za-z0-9][A-Za-z0-9._-]{0,127})-[0-9]{5}\.snappy\.parquet$")
"""The name ``mlops.ingestion`` gives a committed file: ``<batch id>-<n>.snappy.parquet``."""


# ---------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True, kw_only=True)
class RetrainTarget:
    """What an alarm may retrain: the model, its pipeline and the limits on alarm-driven starts."""

    model: str
    pipeline_name: str
    cooldown_minutes: int
    max_per_day: int


@dataclass(frozen=True, kw_only=True)
class NewDataTarget:
    """Where a model's source table lives in the curated zone, which objects of it start the model's pipeline,
    and the model's limits (the same as its alarms': one ledger per model)."""

    model: str
    pipeline_name: str
    bucket: str
    table_prefix: str
    match: str = MATCH_COMMITS
    cooldown_minutes: int
    max_per_day: int

    @property
    def key_prefix(self) -> str:
        """The keys that announce new data: the table's commit markers, or every object of the table."""
        return f"{COMMITS_PREFIX}{self.table_prefix}" if self.match == MATCH_COMMITS else self.table_prefix

    @property
    def input_data_uri(self) -> str:
        """The whole table: preprocess splits and baselines the model's history, not only the new load."""
        return f"s3://{self.bucket}/{self.table_prefix}"

    @property
    def retrain_target(self) -> RetrainTarget:
        return RetrainTarget(
            model=self.model,
            pipeline_name=self.pipeline_name,
            cooldown_minutes=self.cooldown_minutes,
            max_per_day=self.max_per_day,
        )


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The function's environment, read once at cold start."""

    alerts_topic_arn: str
    state_table: str
    targets: Mapping[str, RetrainTarget]
    new_data: Mapping[str, NewDataTarget] = field(default_factory=dict)
    """Model → where its new data appears (``NEW_DATA_TARGETS``; empty when no model retrains on new data)."""

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
            new_data=_new_data_targets(env),
        )


def _new_data_targets(env: Mapping[str, str]) -> dict[str, NewDataTarget]:
    if not env.get("NEW_DATA_TARGETS", "").strip():
        return {}
    targets: dict[str, NewDataTarget] = {}
    for model, spec in json_object(env, "NEW_DATA_TARGETS").items():
        where = f"NEW_DATA_TARGETS[{model!r}]"
        if not isinstance(spec, dict):
            raise ConfigurationError(f"{where} must be an object, got {spec!r}")
        prefix, match = string_field(spec, "tablePrefix", where), string_field(spec, "match", where)
        if not prefix.endswith("/") or prefix.startswith(("_", "/")):
            raise ConfigurationError(f"{where}.tablePrefix must end with '/' and not start with '_' or '/': {prefix!r}")
        if match not in (MATCH_COMMITS, MATCH_OBJECTS):
            raise ConfigurationError(f"{where}.match must be {MATCH_COMMITS!r} or {MATCH_OBJECTS!r}, got {match!r}")
        targets[model] = NewDataTarget(
            model=model,
            pipeline_name=string_field(spec, "pipelineName", where),
            bucket=string_field(spec, "bucket", where),
            table_prefix=prefix,
            match=match,
            cooldown_minutes=int_field(spec, "cooldownMinutes", where, minimum=0),
            max_per_day=int_field(spec, "maxPerDay", where, minimum=1),
        )
    return targets


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


@dataclass(frozen=True, kw_only=True)
class ObjectCreated:
    """One S3 "Object Created" event, as one SQS message of the new-data queue delivered it."""

    message_id: str
    bucket: str
    key: str
    sequencer: str
    version_id: str
    created_at: datetime
    origin: tuple[str, str]


def is_sqs_batch(event: Any) -> bool:
    """True for an SQS event source mapping's batch (``Records[].eventSource == "aws:sqs"``)."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def parse_object_created(record: Mapping[str, Any]) -> ObjectCreated:
    """The S3 event in one SQS record's body (EventBridge delivers the whole event as the message body).

    Raises :class:`MalformedEventError` naming the field at fault.
    """
    message_id = require_str(record, "messageId", "Records[]")
    try:
        body = json.loads(require_str(record, "body", "Records[]"))
    except (json.JSONDecodeError, RecursionError) as error:
        raise MalformedEventError(f"Records[].body of message {message_id} is not JSON: {error}") from error
    event = eventbridge_event(body, source="aws.s3", detail_type=OBJECT_CREATED_DETAIL_TYPE)
    detail = require_mapping(event.raw_event.get("detail"), "body.detail")
    bucket = require_mapping(detail.get("bucket"), "body.detail.bucket")
    obj = require_mapping(detail.get("object"), "body.detail.object")
    return ObjectCreated(
        message_id=message_id,
        bucket=require_str(bucket, "name", "body.detail.bucket"),
        # S3 URL-encodes keys in its notifications ('=' is '%3D', a space '+'); LocalStack's EventBridge events do
        # too. Decoding is harmless for the names the platform writes (letters, digits, '._-/=').
        key=urllib.parse.unquote_plus(require_str(obj, "key", "body.detail.object")),
        sequencer=optional_str(obj, "sequencer"),
        version_id=optional_str(obj, "version-id"),
        created_at=parse_timestamp(require_str(body, "time", "body"), "body.time"),
        origin=eventbridge_origin(body),
    )


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
    UNKNOWN_DATA = "IgnoredUnknownData"
    NOT_A_LOAD = "IgnoredNotALoad"
    COVERED = "CoveredByNewerLoad"


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
class LoadObject:
    """An object of a model's table and the load it belongs to."""

    target: NewDataTarget
    load: str
    obj: ObjectCreated


def load_of(target: NewDataTarget, obj: ObjectCreated) -> str | None:
    """Pure: the load ``obj`` (under ``target.key_prefix``) belongs to, or None when it announces no data.

    - ``commits``: ``_commits/<table prefix><batch id>.json`` is the load ``<batch id>``;
    - ``objects``: a file named by ``mlops.ingestion`` (``<batch id>-<n>.snappy.parquet``) is the load
      ``<batch id>``; any other file is a load of its own (``<key>@<version>``). Hidden paths (a segment starting
      with ``_`` or ``.``: ``_SUCCESS``, ``_temporary/``, ``.crc``, which readers skip) and folder objects are
      no data.
    """
    relative = obj.key[len(target.key_prefix) :]
    if target.match == MATCH_COMMITS:
        batch = relative.removesuffix(COMMIT_MARKER_SUFFIX)
        return batch if relative.endswith(COMMIT_MARKER_SUFFIX) and batch and "/" not in relative else None
    segments = relative.split("/")
    if not segments[-1] or any(segment.startswith(("_", ".")) for segment in segments):
        return None
    ingested = INGESTED_FILE.match(segments[-1])
    if ingested:
        return ingested["batch"]
    return f"{relative}@{obj.version_id or obj.sequencer or obj.created_at.isoformat()}"[:512]


def route_object(
    obj: ObjectCreated, targets: Mapping[str, NewDataTarget], origin: Origin | None = None
) -> Ignore | list[LoadObject]:
    """Pure: the models whose table ``obj`` is a load of (a table may feed several models), or why none."""
    if origin is not None and not origin.admits(*obj.origin):
        account, region = obj.origin
        return Ignore(
            Outcome.FOREIGN,
            f"object s3://{obj.bucket}/{obj.key} comes from {account or '?'}/{region or '?'}, not this function's "
            f"{origin.account}/{origin.region}",
        )
    matching = [t for _, t in sorted(targets.items()) if obj.bucket == t.bucket and obj.key.startswith(t.key_prefix)]
    if not matching:
        return Ignore(Outcome.UNKNOWN_DATA, f"object s3://{obj.bucket}/{obj.key} is in no model's source table")
    routed = [LoadObject(target=t, load=load, obj=obj) for t in matching if (load := load_of(t, obj)) is not None]
    if not routed:
        return Ignore(Outcome.NOT_A_LOAD, f"object s3://{obj.bucket}/{obj.key} announces no data (marker or file)")
    return routed


@dataclass(frozen=True, kw_only=True)
class DataLoad:
    """What one batch asks of one model: its newest load, which stands for every load of the batch."""

    target: NewDataTarget
    load: str
    newest: ObjectCreated
    loads: tuple[str, ...]
    """Every load of the model in the batch, sorted (the newest included)."""
    message_ids: tuple[str, ...]
    """The SQS messages the request answers for: they fail (and are redelivered) together."""


def data_loads(routed: Sequence[LoadObject]) -> list[DataLoad]:
    """Pure: one request per model, identified by its newest load (event time, then key: the same messages give
    the same request however often they are redelivered). The table is read whole, so the newest load's run
    trains on the older loads of the burst too."""
    by_model: dict[str, list[LoadObject]] = {}
    for item in routed:
        by_model.setdefault(item.target.model, []).append(item)
    loads = []
    for _, items in sorted(by_model.items()):
        newest = max(items, key=lambda i: (i.obj.created_at, i.obj.key, i.obj.sequencer))
        loads.append(
            DataLoad(
                target=newest.target,
                load=newest.load,
                newest=newest.obj,
                loads=tuple(sorted({i.load for i in items})),
                message_ids=tuple(dict.fromkeys(i.obj.message_id for i in items)),
            )
        )
    return loads


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


def _stamp(moment: datetime) -> str:
    """A time in a compact, canonical UTC form (``20240501T120000123Z``)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def chosen_parameters(defined: set[str], wanted: Mapping[str, str]) -> list[dict[str, str]]:
    """Pure: ``wanted`` as ``PipelineParameters``, limited to those the pipeline defines (SageMaker refuses an
    undeclared name), values cut to the API's 1,024 characters, in name order."""
    return [{"Name": name, "Value": value[:1024]} for name, value in sorted(wanted.items()) if name in defined]


def pipeline_parameters(defined: set[str], change: AlarmStateChange) -> list[dict[str, str]]:
    """Pure: the parameters recording why this execution runs, limited to those the pipeline defines."""
    return chosen_parameters(defined, {DATA_VERSION_PARAMETER: f"alarm-{change.alarm_name}-{change.stamp}"})


def data_parameters(defined: set[str], load: DataLoad) -> list[dict[str, str]]:
    """Pure: ``InputDataUri`` (the whole table) and ``DataVersion`` (the load's batch id), if the pipeline has them."""
    return chosen_parameters(
        defined, {INPUT_DATA_PARAMETER: load.target.input_data_uri, DATA_VERSION_PARAMETER: load.load}
    )


@dataclass(frozen=True, kw_only=True)
class StartRequest:
    """One reason to start a model's pipeline, whatever asked (an alarm transition, a load of new data): what the
    idempotency record, the ledger, SageMaker and humans are told. Every start goes through :class:`Retrainer`."""

    target: RetrainTarget
    kind: str
    """``alarm`` or ``newdata``: the idempotency records' key prefix."""
    key: dict[str, str]
    """What identifies the request across deliveries (hashed into the idempotency record's key)."""
    trigger: str
    """Recorded in the ledger item (``last_alarm``) and the logs."""
    token: str
    display_name: str
    description: str
    parameters: Callable[[set[str]], list[dict[str, str]]]
    """The pipeline's declared parameter names → the parameters to pass."""
    context: tuple[str, ...]
    """Lines telling humans what asked for the start."""
    result: dict[str, Any]
    """Fields that identify the request in the outcome (``alarm``/``at``, or ``load``/``loads``)."""


def alarm_request(change: AlarmStateChange, target: RetrainTarget) -> StartRequest:
    """The start an alarm transition asks for."""
    return StartRequest(
        target=target,
        kind="alarm",
        key=change.idempotency_key,
        trigger=change.alarm_name,
        token=client_request_token(change),
        display_name=display_name(change),
        description=(
            f"Started by the {SERVICE} responder: alarm {change.alarm_name} entered {change.state} at "
            f"{change.changed_at.isoformat()}. Reason: {change.reason or 'not given'}"
        )[:3072],
        parameters=lambda defined: pipeline_parameters(defined, change),
        context=(
            f"Alarm: {change.alarm_name} entered {change.state} at {change.changed_at.isoformat()}"
            + (f" (was {change.previous_state})." if change.previous_state else "."),
            f"Reason: {change.reason or 'not given'}",
        ),
        result={"alarm": change.alarm_name, "at": change.stamp},
    )


def data_request(load: DataLoad) -> StartRequest:
    """The start a load of new data asks for (its token and key depend on the model and the load only)."""
    target, newest = load.target, load.newest
    digest = hashlib.sha256(f"{target.model}|{load.load}".encode()).hexdigest()
    older = [other for other in load.loads if other != load.load]
    where = f"s3://{newest.bucket}/{newest.key}"
    return StartRequest(
        target=target.retrain_target,
        kind="newdata",
        key={"model": target.model, "load": load.load},
        trigger=f"new-data:{load.load}"[:1024],
        token=f"data-{digest[:59]}",
        display_name=f"data-{_stamp(newest.created_at)}-{_slug(load.load)}"[:82].rstrip("-"),
        description=(
            f"Started by the {SERVICE} responder: new data in {target.input_data_uri} (load {load.load}, "
            f"{where} created at {newest.created_at.isoformat()})"
            + (f"; also covers loads {', '.join(older)}" if older else "")
        )[:3072],
        parameters=lambda defined: data_parameters(defined, load),
        context=(
            f"New data: load {load.load} of {target.input_data_uri} ({where}, created {newest.created_at.isoformat()}).",
            f"Loads in this batch: {len(load.loads)}; objects: {len(load.message_ids)}.",
        ),
        result={"load": load.load, "loads": list(load.loads)},
    )


def describe_decision(outcome: Outcome, request: StartRequest, detail: str) -> Notification:
    """The notification telling humans what was decided about a retraining request, and why."""
    target = request.target
    verb = "started" if outcome is Outcome.STARTED else "skipped"
    lines = [
        f"Retraining {verb} for model {target.model} (pipeline {target.pipeline_name}).",
        f"Decision: {outcome.value}. {detail}",
        *request.context,
        f"Limits: cooldown {target.cooldown_minutes} min, at most {target.max_per_day} responder-driven runs per UTC "
        "day (alarms and new data together).",
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

    def start(self, pipeline: str, request: StartRequest, parameters: list[dict[str, str]]) -> str:
        """Start an execution recording why; the token makes a repeated start of one request a no-op."""
        response = self._call(
            "start_pipeline_execution",
            PipelineName=pipeline,
            ClientRequestToken=request.token,
            PipelineExecutionDisplayName=request.display_name,
            PipelineExecutionDescription=request.description,
            PipelineParameters=parameters,
        )
        return str(response["PipelineExecutionArn"])


@dataclass
class Retrainer:
    """Acts on one retraining request, at most once per alarm transition or load of new data."""

    settings: Settings
    pipelines: Pipelines
    ledger: Ledger
    notifier: Notifier
    persistence: DynamoDBPersistenceLayer
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    config: IdempotencyConfig = field(init=False)
    _once: dict[str, Callable[..., dict[str, Any]]] = field(init=False)

    def __post_init__(self) -> None:
        self.config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_TTL_SECONDS, response_hook=_mark_duplicate)
        # One record per request, under the prefix of its kind (the persistence layer takes the prefix per call).
        self._once = {
            kind: idempotent_function(
                data_keyword_argument="key", persistence_store=self.persistence, config=self.config, key_prefix=kind
            )(self._respond)
            for kind in ("alarm", "newdata")
        }

    def handle(self, change: AlarmStateChange, target: RetrainTarget) -> dict[str, Any]:
        """Respond once to the alarm transition (see :meth:`handle_request`)."""
        return self.handle_request(alarm_request(change, target))

    def handle_request(self, request: StartRequest) -> dict[str, Any]:
        """Respond once to the request.

        Raises :class:`DeliveryInProgressError` when another invocation holds the request's record (the delivery
        is retried later; by then the holder has finished, or its record has expired with its time), and
        :class:`UpstreamError` when the idempotency record cannot be read or written.
        """
        what = f"{request.kind} request {request.key}"
        try:
            return self._once[request.kind](key=request.key, request=request)
        except IdempotencyAlreadyInProgressError:
            raise DeliveryInProgressError(
                f"{what} is being handled by another invocation; this delivery is retried later"
            ) from None
        except IdempotencyError as error:
            raise UpstreamError(
                f"idempotency record of {what} in {self.settings.state_table} failed: {type(error).__name__}",
                code="IdempotencyStore",
            ) from error

    def _respond(self, *, key: dict[str, str], request: StartRequest) -> dict[str, Any]:
        target = request.target
        result: dict[str, Any] = {**request.result, "model": target.model}
        running = self.pipelines.running_execution(target.pipeline_name, own_display_name=request.display_name)
        if running is not None:
            outcome, detail = Outcome.ALREADY_RUNNING, f"Execution {running} is still Executing."
        else:
            claim = ledger_claim(target, self.clock(), request.token)
            refused = self.ledger.claim(claim, alarm=request.trigger)
            if refused is not None:
                outcome = refused
                detail = (
                    f"The last responder-driven start (alarm or new data) was less than {target.cooldown_minutes} "
                    "minutes ago."
                    if refused is Outcome.COOLDOWN
                    else f"{target.max_per_day} responder-driven starts already today (UTC)."
                )
            else:
                try:
                    parameters = request.parameters(self.pipelines.parameter_names(target.pipeline_name))
                    arn = self.pipelines.start(target.pipeline_name, request, parameters)
                except Exception:
                    # Whatever failed (an AWS error, a network error, a bug), the claim must not outlive it: the
                    # retried event claims again. Should the release fail too, the retry still recognises the
                    # claim by its token.
                    self._release(claim)
                    raise
                outcome, detail = Outcome.STARTED, f"Execution {arn}."
                result["executionArn"] = arn
                result["parameters"] = {p["Name"]: p["Value"] for p in parameters}
        result["outcome"] = outcome.value
        self.notifier.publish(describe_decision(outcome, request, detail))
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
    """Parse, decide and act on every alarm transition in ``event``, or on the new data of an SQS batch
    (:func:`process_new_data`); returns the outcomes.

    With a Lambda ``context``, events from another account or region are ignored (``IgnoredForeignOrigin``).
    """
    origin = Origin.of_context(context)
    if context is not None:
        rt.retrainer.config.register_lambda_context(context)
    if is_sqs_batch(event):
        return process_new_data(event, rt, origin)
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


def process_new_data(event: Mapping[str, Any], rt: Runtime, origin: Origin | None = None) -> dict[str, Any]:
    """Act on a batch of the new-data queues: at most one start request per model (its newest load).

    Returns ``outcomes`` and ``batchItemFailures`` (Lambda's partial batch response): a record that cannot be
    read, or whose model's request failed, is reported (log + ``Failed``) and returned there, so only it is
    redelivered (and dead-lettered by the queue's redrive policy once it keeps failing). A request's failure
    fails every record it answers for: redelivered together, they make the same request again.
    """
    outcomes: list[dict[str, Any]] = []
    failed: list[str] = []
    routed: list[LoadObject] = []
    for record in event["Records"]:
        try:
            obj = parse_object_created(record)
        except MalformedEventError as error:
            report_failure(logger, metrics, SERVICE, error, record, [str(record.get("messageId", ""))])
            failed.append(str(record.get("messageId", "")))
            continue
        decision = route_object(obj, rt.settings.new_data, origin)
        if isinstance(decision, Ignore):
            level = logger.warning if decision.outcome is Outcome.FOREIGN else logger.info
            level(decision.why, extra={"key": obj.key, "outcome": decision.outcome.value})
            outcomes.append({"key": obj.key, "outcome": decision.outcome.value})
            metrics.add_metric(name=decision.outcome.value, unit=MetricUnit.Count, value=1)
            continue
        routed.extend(decision)
    for load in data_loads(routed):
        covered = len(load.loads) - 1
        if covered:
            metrics.add_metric(name=Outcome.COVERED.value, unit=MetricUnit.Count, value=covered)
        try:
            result = rt.retrainer.handle_request(data_request(load))
        except Exception as error:  # this model's records are retried; the other models' are done
            report_failure(logger, metrics, SERVICE, error, {"model": load.target.model, "load": load.load}, [])
            failed.extend(load.message_ids)
            continue
        logger.info("retraining decision", extra=result)
        metrics.add_metric(name=result["outcome"], unit=MetricUnit.Count, value=1)
        outcomes.append(result)
    return {"outcomes": outcomes, "batchItemFailures": [{"itemIdentifier": i} for i in dict.fromkeys(failed)]}


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: report every failure (log + ``Failed``) and re-raise it, so Lambda retries or
    dead-letters the event. An SQS batch gets Lambda's partial batch response (``batchItemFailures`` only)."""
    try:
        result = process(event, runtime(), context)
        return {"batchItemFailures": result["batchItemFailures"]} if "batchItemFailures" in result else result
    except Exception as error:  # every failure, deliberate or not, goes through the failure log and metric
        raised = report_failure(logger, metrics, SERVICE, error, event, event_ids(event))
        if raised is error:
            raise
        raise raised from None
