"""Update online features: a Kinesis stream of raw source rows → each target model's online feature store.

Trigger: a Kinesis event source mapping with ``FunctionResponseTypes: [ReportBatchItemFailures]``. Each record's
data is one raw row of the source table as JSON (for ``customer-churn``, a ``customer_activity`` row:
``customer_id``, ``event_time``, ``sessions``, ``minutes_active``, ``support_tickets``, ``plan``,
``monthly_spend``, ``churned``).

Flow (thin handler, pure plan, adapters): :func:`parse_event` reads the Lambda Kinesis event into
:class:`StreamRecord` s; the pure :func:`plan_batch` decodes every record and computes, for every target model, its
feature record with the shared feature specification (:func:`mlops.features.spec.feature_record`, the function
the training set is built with, then :func:`mlops.featurestore.records.validate_record` and
:func:`~mlops.featurestore.records.to_put_record_payload`, which batch ingestion uses), keeping per entity only
the record with the newest event time; :class:`OnlineStore` writes them with ``PutRecord``
(``TargetStores=["OnlineStore"]``) and :class:`FailureQueue` sends what was rejected to ``FAILURE_QUEUE_URL``.

- **Online store only.** The offline store is fed by the batch path (the lake → ingestion → training sets), so the
  stream does not write it: writing both would put every event into the offline store twice, and the training
  set's point-in-time join would see two writes of one (identifier, event time).
- **Newest event time wins.** PutRecord writes the online store only when a record's event time is greater than
  the stored record's (PutRecord API reference); an older or equal one succeeds and changes nothing. So records
  arriving out of order (a retried batch after a newer one, late events) never overwrite newer features, and
  within a batch only the newest record of an entity is written (the first in sequence among equals, which is
  what writing them in order would leave): the same outcome as writing every record in order, in fewer calls.
- **Rejected, never retried, never dropped.** A record that cannot become a valid feature record (not base64,
  not UTF-8 JSON, not an object, a missing column, a wrong type, a bad event time, too large, or refused by
  Feature Store with ``ValidationError``) is sent to the failure queue with the reason, the stream, shard and
  sequence number and its payload (truncated past :data:`MAX_PAYLOAD_BYTES`), and counted (``RecordsRejected``).
  The event source mapping's own on-failure destination receives only metadata about a failed batch, not the
  records, which is why the function sends rejected records itself.
- **Retryable failures go back to Lambda.** Throttling, 5xx, timeouts and connection errors are retried by
  botocore (standard mode: exponential backoff with jitter, ``PUT_MAX_ATTEMPTS`` attempts in all, short timeouts);
  a write that still fails, or any other AWS error (a missing feature group, a denied permission), reports its
  records in ``batchItemFailures``, and so does a rejected record whose message the queue did not accept.
  Lambda retries from the lowest reported sequence number (every later record of the shard comes again), so
  rejections after that point are not sent now: they are reported too and sent when they come back, which keeps
  the queue free of duplicates from that retry. Writes after it are repeated harmlessly (an equal event time
  changes nothing). The function adds no retry loop of its own; the mapping's ``MaximumRetryAttempts`` and
  ``MaximumRecordAgeInSeconds`` bound Lambda's.

Environment (read once, at the first invocation): ``FEATURE_TARGETS`` (JSON list of ``{"model",
"featureGroupName", "featureSpec"}``), ``FAILURE_QUEUE_URL``, optional ``PUT_MAX_ATTEMPTS`` (1-10, default 4),
``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``. Metrics (``MLOps/Streaming``, per model too):
``RecordsReceived``, ``RecordsWritten``, ``RecordsSuperseded``, ``RecordsRejected``, ``RecordsRetried`` (records
handed back to Lambda), ``PutRecordRetries`` (botocore's retries), ``FailureQueueErrors``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from responder_common.errors import ConfigurationError, MalformedEventError, report_failure
from responder_common.events import require_mapping, require_str
from responder_common.notify import aws_error_code
from responder_common.retry import AWS_CONNECT_TIMEOUT_SECONDS, AWS_READ_TIMEOUT_SECONDS, client
from responder_common.settings import required, string_field

from mlops.features.registry import get_spec
from mlops.features.spec import FeatureSpec, FeatureSpecError, feature_record
from mlops.featurestore.errors import InvalidRecordError
from mlops.featurestore.records import canonical_event_time, to_put_record_payload, validate_record

SERVICE = "update_online_features"
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "MLOps/Streaming",
    service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE,
)

DEFAULT_PUT_MAX_ATTEMPTS = 4  # the first call and three retries, as for the responders' clients
MAX_PUT_MAX_ATTEMPTS = 10
MAX_WORKERS = 8
"""Concurrent PutRecord calls per invocation (the client's connection pool is sized for them)."""
DEADLINE_MARGIN_MS = (AWS_CONNECT_TIMEOUT_SECONDS + AWS_READ_TIMEOUT_SECONDS) * 1000 + 2000
"""A write is not started with less time left than this (one attempt's timeouts, and time to answer): its records
are handed back to Lambda rather than cut off by the function's timeout, which would fail the whole batch. Give the
function a timeout well above it (60 s or more)."""
MAX_PAYLOAD_BYTES = 16 * 1024
"""How much of a rejected record's data a failure message carries: ten messages of a SendMessageBatch then stay
well under SQS's 256 KiB per batch. The message also carries the data's size and SHA-256, and the stream keeps
the record itself for its retention period."""
SQS_BATCH_SIZE = 10  # SendMessageBatch's limit


# ---------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True, kw_only=True)
class FeatureTarget:
    """One model whose online store the stream updates: its feature group and its feature specification."""

    model: str
    feature_group_name: str
    spec: FeatureSpec


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The function's environment, read once at cold start."""

    targets: tuple[FeatureTarget, ...]
    failure_queue_url: str
    put_max_attempts: int = DEFAULT_PUT_MAX_ATTEMPTS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse the environment; :class:`ConfigurationError` names the bad variable (and entry)."""
        raw = required(env, "FEATURE_TARGETS")
        try:
            entries = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ConfigurationError(f"environment variable FEATURE_TARGETS is not valid JSON: {error}") from error
        if not isinstance(entries, list) or not entries:
            raise ConfigurationError(
                f"environment variable FEATURE_TARGETS must be a non-empty JSON list, got {type(entries).__name__}"
            )
        targets: list[FeatureTarget] = []
        for position, entry in enumerate(entries):
            where = f"FEATURE_TARGETS[{position}]"
            if not isinstance(entry, dict):
                raise ConfigurationError(f"{where} must be an object, got {entry!r}")
            spec_name = string_field(entry, "featureSpec", where)
            try:
                spec = get_spec(spec_name)
            except FeatureSpecError as error:
                raise ConfigurationError(f"{where}.featureSpec: {error}") from None
            targets.append(
                FeatureTarget(
                    model=string_field(entry, "model", where),
                    feature_group_name=string_field(entry, "featureGroupName", where),
                    spec=spec,
                )
            )
        models = [t.model for t in targets]
        twice = sorted({m for m in models if models.count(m) > 1})
        if twice:
            raise ConfigurationError(f"FEATURE_TARGETS names model(s) {twice} more than once")
        return cls(
            targets=tuple(targets),
            failure_queue_url=required(env, "FAILURE_QUEUE_URL"),
            put_max_attempts=_attempts(env),
        )


def _attempts(env: Mapping[str, str]) -> int:
    text = env.get("PUT_MAX_ATTEMPTS", "").strip()
    if not text:
        return DEFAULT_PUT_MAX_ATTEMPTS
    if not text.isdigit() or not 1 <= int(text) <= MAX_PUT_MAX_ATTEMPTS:
        raise ConfigurationError(
            f"environment variable PUT_MAX_ATTEMPTS must be an integer from 1 to {MAX_PUT_MAX_ATTEMPTS}, got {text!r}"
        )
    return int(text)


# ---------------------------------------------------------------------------------------------- events
@dataclass(frozen=True, kw_only=True)
class StreamRecord:
    """One Kinesis record as Lambda delivers it (``data`` still base64, as received)."""

    sequence_number: str
    partition_key: str
    data: str
    event_source_arn: str
    event_id: str
    arrival: float | None

    @property
    def shard_id(self) -> str:
        """The shard, from ``eventID`` (``shardId-000000000000:<sequence number>``)."""
        return self.event_id.split(":", 1)[0] if ":" in self.event_id else ""

    @property
    def position(self) -> int:
        """The sequence number as a number (a decimal string of up to 128 digits: compare numerically)."""
        return int(self.sequence_number)

    def source(self) -> dict[str, Any]:
        """Where the record came from, as failure messages and logs name it."""
        return {
            "eventSourceARN": self.event_source_arn,
            "shardId": self.shard_id,
            "sequenceNumber": self.sequence_number,
            "partitionKey": self.partition_key,
            "eventID": self.event_id,
            "approximateArrivalTimestamp": self.arrival,
        }


def parse_event(event: Any) -> list[StreamRecord]:
    """The records of a Lambda Kinesis event, in delivery (sequence) order.

    Raises :class:`MalformedEventError` when the envelope itself is broken (no ``Records``, a record without a
    decimal ``sequenceNumber``): such a record cannot be reported or rejected on its own, so the batch fails.
    """
    raw = require_mapping(event, "event")
    if not isinstance(raw.get("Records"), list):
        raise MalformedEventError("event.Records must be a list of Kinesis records")
    records = []
    for record in KinesisStreamEvent(dict(raw)).records:
        body = require_mapping(record.raw_event, "Records[]")
        kinesis = require_mapping(body.get("kinesis"), "Records[].kinesis")
        sequence = require_str(kinesis, "sequenceNumber", "Records[].kinesis")
        if not sequence.isdigit():
            raise MalformedEventError(f"Records[].kinesis.sequenceNumber {sequence!r} is not a decimal number")
        data = kinesis.get("data")
        arrival = kinesis.get("approximateArrivalTimestamp")
        records.append(
            StreamRecord(
                sequence_number=sequence,
                partition_key=str(kinesis.get("partitionKey", "")),
                data=data if isinstance(data, str) else "",
                event_source_arn=str(body.get("eventSourceARN", "")),
                event_id=str(body.get("eventID", "")),
                arrival=float(arrival) if isinstance(arrival, int | float) else None,
            )
        )
    return records


# ---------------------------------------------------------------------------------------------- decisions
class Reason(enum.StrEnum):
    """Why a record was rejected (the failure message's ``reason``)."""

    NOT_BASE64 = "NotBase64"
    NOT_UTF8_JSON = "NotUtf8Json"
    NOT_AN_OBJECT = "NotAnObject"
    INVALID_RECORD = "InvalidRecord"
    REFUSED_BY_FEATURE_STORE = "RefusedByFeatureStore"


@dataclass(frozen=True, kw_only=True)
class Rejection:
    """A record that cannot be written (for one target, or for every target when it cannot be decoded)."""

    record: StreamRecord
    reason: Reason
    detail: str
    target: FeatureTarget | None = None
    field: str | None = None


@dataclass(frozen=True, kw_only=True)
class Write:
    """One PutRecord: an entity's newest feature record in the batch, and every record of the batch it covers."""

    target: FeatureTarget
    identifier: str
    event_time: str
    payload: list[dict[str, str]]
    source: StreamRecord
    """The record whose values are written."""
    records: tuple[StreamRecord, ...]
    """Every record of the batch the write covers (``source`` and those it supersedes), in sequence order."""


@dataclass(frozen=True)
class Plan:
    """What a batch asks for: the writes (in order of each entity's first record) and the rejections (in order)."""

    writes: list[Write]
    rejections: list[Rejection]


def decode(record: StreamRecord) -> dict[str, Any] | Rejection:
    """The raw row a record carries (a JSON object in UTF-8, base64 in the event), or why it is not one."""
    try:
        data = base64.b64decode(record.data, validate=True)
    except (binascii.Error, ValueError) as error:
        return Rejection(record=record, reason=Reason.NOT_BASE64, detail=f"kinesis.data is not base64: {error}")
    try:
        row = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        return Rejection(record=record, reason=Reason.NOT_UTF8_JSON, detail=f"data is not UTF-8 JSON: {error}")
    if not isinstance(row, dict):
        return Rejection(
            record=record, reason=Reason.NOT_AN_OBJECT, detail=f"data is JSON {type(row).__name__}, not an object"
        )
    return row


def features(target: FeatureTarget, row: Mapping[str, Any]) -> dict[str, Any]:
    """The validated feature record of ``row`` for ``target``: the training path's ``feature_record``, then
    Feature Store's limits. Raises :class:`InvalidRecordError` naming the field."""
    spec = target.spec
    try:
        record = feature_record(spec, row)
    except InvalidRecordError:
        raise
    except FeatureSpecError as error:
        raise InvalidRecordError(_label(spec, row), _field_of(str(error)), str(error)) from None
    except (TypeError, ValueError, ArithmeticError) as error:  # the spec's transform on a value it cannot use
        problem = f"spec '{spec.name}' cannot compute features: {type(error).__name__}: {error}"
        raise InvalidRecordError(_label(spec, row), "*", problem) from None
    return validate_record(spec, record)


def _label(spec: FeatureSpec, row: Mapping[str, Any]) -> str:
    identifier = row.get(spec.record_identifier)
    return repr(identifier)[:64] if isinstance(identifier, str) and identifier else "(no identifier)"


def _field_of(message: str) -> str:
    """The field a ``FeatureSpecError`` message names between quotes (``'sessions'``), else ``*``."""
    parts = message.split("'")
    return parts[1] if len(parts) >= 3 else "*"


def plan_batch(records: Sequence[StreamRecord], targets: Sequence[FeatureTarget]) -> Plan:
    """Pure: decode and validate every record for every target; per (target, entity) keep the newest event time
    (the first in sequence among equal ones), which covers the entity's other records of the batch."""
    rejections: list[Rejection] = []
    newest: dict[tuple[str, str], tuple[str, list[dict[str, str]], StreamRecord, list[StreamRecord]]] = {}
    order: list[tuple[str, str]] = []
    for record in records:
        row = decode(record)
        if isinstance(row, Rejection):
            rejections.append(row)
            continue
        for target in targets:
            try:
                valid = features(target, row)
            except InvalidRecordError as error:
                rejections.append(
                    Rejection(
                        record=record,
                        reason=Reason.INVALID_RECORD,
                        detail=str(error),
                        target=target,
                        field=error.field,
                    )
                )
                continue
            spec = target.spec
            key = (target.model, valid[spec.record_identifier])
            when = canonical_event_time(valid[spec.event_time])
            held = newest.get(key)
            if held is None:
                newest[key] = (when, to_put_record_payload(spec, valid), record, [record])
                order.append(key)
            elif when > held[0]:  # canonical ISO-8601 strings with 4-digit years sort as their instants
                newest[key] = (when, to_put_record_payload(spec, valid), record, [*held[3], record])
            else:
                held[3].append(record)
    by_model = {t.model: t for t in targets}
    writes = []
    for model, identifier in order:
        when, payload, source, covered = newest[(model, identifier)]
        writes.append(
            Write(
                target=by_model[model],
                identifier=identifier,
                event_time=when,
                payload=payload,
                source=source,
                records=tuple(covered),
            )
        )
    return Plan(writes=writes, rejections=rejections)


# ---------------------------------------------------------------------------------------------- adapters
class Outcome(enum.Enum):
    WRITTEN = "written"
    RETRY = "retry"
    REFUSED = "refused"


@dataclass(frozen=True)
class WriteResult:
    """How one PutRecord ended: written, to be retried by Lambda (with the code), or refused as invalid."""

    write: Write
    outcome: Outcome
    code: str = ""
    message: str = ""
    retries: int = 0


# Feature Store answers ValidationError for a record it will never accept: that record is rejected, not retried.
# Everything else (throttling, 5xx, timeouts, and also a missing feature group or a denied permission, which a
# deployment fixes) goes back to Lambda, so nothing is lost while it lasts.
REFUSAL_CODES = frozenset({"ValidationError", "ValidationException"})


@dataclass
class OnlineStore:
    """Writes feature records to online stores with a ``sagemaker-featurestore-runtime`` client it is given."""

    runtime: Any
    max_workers: int = MAX_WORKERS
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    """Created at the first batch that needs it and kept for the container's life: starting threads per batch
    would cost more than the writes themselves when PutRecord is fast."""

    def put(self, write: Write, deadline: Callable[[], bool] | None = None) -> WriteResult:
        """One ``PutRecord`` (botocore retries inside); never raises for an AWS or connection error."""
        if deadline is not None and deadline():
            return WriteResult(write, Outcome.RETRY, "DeadlineNear", "too little time left to start the write")
        try:
            response = self.runtime.put_record(
                FeatureGroupName=write.target.feature_group_name, Record=write.payload, TargetStores=["OnlineStore"]
            )
        except ClientError as error:
            code = aws_error_code(error)
            retries = int(error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
            message = str(error.response.get("Error", {}).get("Message") or error)
            outcome = Outcome.REFUSED if code in REFUSAL_CODES else Outcome.RETRY
            return WriteResult(write, outcome, code, message, retries)
        except BotoCoreError as error:  # no response after botocore's retries: connection errors, timeouts
            return WriteResult(write, Outcome.RETRY, aws_error_code(error), str(error))
        retries = int(((response or {}).get("ResponseMetadata") or {}).get("RetryAttempts", 0) or 0)
        return WriteResult(write, Outcome.WRITTEN, retries=retries)

    def put_all(self, writes: Sequence[Write], deadline: Callable[[], bool] | None = None) -> list[WriteResult]:
        """Every write, at most ``max_workers`` at a time; results in the order of ``writes``."""
        if len(writes) <= 1 or self.max_workers <= 1:
            return [self.put(w, deadline) for w in writes]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="put-record")
        return list(self._pool.map(lambda w: self.put(w, deadline), writes))


def failure_message(rejection: Rejection) -> dict[str, Any]:
    """The failure queue's message for a rejected record: why, where from, and its data (maybe truncated)."""
    try:
        data = base64.b64decode(rejection.record.data, validate=True)
    except (binascii.Error, ValueError):
        data = None
    raw = data if data is not None else rejection.record.data.encode("utf-8", "replace")
    payload: dict[str, Any] = {
        "bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "truncated": len(raw) > MAX_PAYLOAD_BYTES,
    }
    head = raw[:MAX_PAYLOAD_BYTES]
    if data is None:
        payload.update(encoding="as-received", data=head.decode("utf-8", "replace"))
    else:
        try:
            payload.update(encoding="utf-8", data=head.decode("utf-8"))
        except UnicodeDecodeError as error:
            if payload["truncated"] and error.start >= len(head) - 3:  # a character cut by the truncation
                payload.update(encoding="utf-8", data=head[: error.start].decode("utf-8"))
            else:
                payload.update(encoding="base64", data=base64.b64encode(head).decode("ascii"))
    target = rejection.target
    return {
        "reason": rejection.reason.value,
        "detail": rejection.detail[:2048],
        "field": rejection.field,
        "model": target.model if target else None,
        "featureGroupName": target.feature_group_name if target else None,
        "featureSpec": target.spec.name if target else None,
        "source": rejection.record.source(),
        "payload": payload,
    }


@dataclass(frozen=True)
class FailureQueue:
    """Sends rejected records to the failure queue (``SendMessageBatch``) with the SQS client it is given."""

    sqs: Any
    queue_url: str

    def send(self, rejections: Sequence[Rejection]) -> list[tuple[Rejection, str]]:
        """Send every rejection; returns those SQS did not accept, each with the error code."""
        unsent: list[tuple[Rejection, str]] = []
        for start in range(0, len(rejections), SQS_BATCH_SIZE):
            chunk = list(rejections[start : start + SQS_BATCH_SIZE])
            entries = [
                {
                    "Id": f"r{position}",
                    "MessageBody": json.dumps(failure_message(rejection), sort_keys=True),
                    "MessageAttributes": {
                        "reason": {"DataType": "String", "StringValue": rejection.reason.value},
                        "model": {
                            "DataType": "String",
                            "StringValue": rejection.target.model if rejection.target else "-",
                        },
                    },
                }
                for position, rejection in enumerate(chunk)
            ]
            try:
                response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as error:
                code = aws_error_code(error)
                unsent.extend((rejection, code) for rejection in chunk)
                continue
            for failed in response.get("Failed") or []:
                position = int(str(failed.get("Id", "r-1"))[1:])
                if 0 <= position < len(chunk):
                    unsent.append((chunk[position], str(failed.get("Code") or "SendFailed")))
        return unsent


# ---------------------------------------------------------------------------------------------- runtime
@dataclass(frozen=True)
class Runtime:
    """Everything an invocation needs, built once per container (or by a test, with its own clients)."""

    settings: Settings
    store: OnlineStore
    queue: FailureQueue


def runtime_config(max_attempts: int) -> Config:
    """The Feature Store runtime client's configuration: botocore's standard retries (exponential backoff with
    jitter on throttling, 5xx, timeouts and connection errors), short timeouts, a pool for the writers."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS,
        read_timeout=AWS_READ_TIMEOUT_SECONDS,
        max_pool_connections=MAX_WORKERS,
    )


def build_runtime(settings: Settings, *, featurestore: Any, sqs: Any, max_workers: int = MAX_WORKERS) -> Runtime:
    """Wire the adapters around the given clients (tests inject a local fake store or a Stubber)."""
    return Runtime(
        settings=settings,
        store=OnlineStore(runtime=featurestore, max_workers=max_workers),
        queue=FailureQueue(sqs=sqs, queue_url=settings.failure_queue_url),
    )


@functools.cache
def runtime() -> Runtime:
    """The cold-start runtime: settings from the environment, clients with botocore's standard retries."""
    settings = Settings.from_env(os.environ)
    featurestore = boto3.client("sagemaker-featurestore-runtime", config=runtime_config(settings.put_max_attempts))  # type: ignore[call-overload]
    return build_runtime(settings, featurestore=featurestore, sqs=client("sqs"))


# ---------------------------------------------------------------------------------------------- handler
@dataclass
class Counts:
    """Per-model counts of one invocation (``""``: records that reached no model)."""

    values: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, metric: str, model: str, value: int = 1) -> None:
        if value:
            self.values[(metric, model)] = self.values.get((metric, model), 0) + value

    def total(self, metric: str) -> int:
        return sum(v for (m, _), v in self.values.items() if m == metric)


METRIC_NAMES = (
    "RecordsReceived",
    "RecordsWritten",
    "RecordsSuperseded",
    "RecordsRejected",
    "RecordsRetried",
    "PutRecordRetries",
    "FailureQueueErrors",
)


def process(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    """Write the batch's newest feature records, send its rejections, and say which records Lambda must retry."""
    records = parse_event(event)
    counts = Counts()
    counts.add("RecordsReceived", "", len(records))
    plan = plan_batch(records, rt.settings.targets)
    deadline = _deadline(context)
    results = rt.store.put_all(plan.writes, deadline)

    retry: dict[str, StreamRecord] = {}
    rejections = list(plan.rejections)
    for result in results:
        model = result.write.target.model
        counts.add("PutRecordRetries", model, result.retries)
        if result.outcome is Outcome.WRITTEN:
            counts.add("RecordsWritten", model)
            counts.add("RecordsSuperseded", model, len(result.write.records) - 1)
        elif result.outcome is Outcome.REFUSED:
            written = result.write.source.sequence_number
            detail = f"Feature Store refused the feature record of sequence number {written}: {result.code}: {result.message}"
            rejections.extend(
                Rejection(record=r, reason=Reason.REFUSED_BY_FEATURE_STORE, detail=detail, target=result.write.target)
                for r in result.write.records
            )
        else:
            logger.warning(
                "online feature write failed; records handed back to Lambda",
                extra={
                    "model": model,
                    "feature_group": result.write.target.feature_group_name,
                    "record_id": result.write.identifier,
                    "error_code": result.code,
                    "error": result.message[:512],
                    "sequence_numbers": [r.sequence_number for r in result.write.records],
                },
            )
            retry.update((r.sequence_number, r) for r in result.write.records)

    # Lambda retries from the lowest reported sequence number: rejections after it come again, and are sent then.
    checkpoint = min((r.position for r in retry.values()), default=None)
    to_send = [j for j in rejections if checkpoint is None or j.record.position < checkpoint]
    deferred = [j for j in rejections if checkpoint is not None and j.record.position >= checkpoint]
    retry.update((j.record.sequence_number, j.record) for j in deferred)
    for rejection, code in rt.queue.send(to_send):
        counts.add("FailureQueueErrors", _model(rejection))
        logger.error(
            "rejected record not accepted by the failure queue; handed back to Lambda",
            extra={**_rejection_log(rejection), "error_code": code},
        )
        retry[rejection.record.sequence_number] = rejection.record
    for rejection in to_send:
        if rejection.record.sequence_number not in retry:
            counts.add("RecordsRejected", _model(rejection))
            logger.warning("record rejected", extra=_rejection_log(rejection))

    failures = sorted(retry.values(), key=lambda r: r.position)
    counts.add("RecordsRetried", "", len(failures))
    _emit(counts)
    summary = {
        "received": len(records),
        "written": counts.total("RecordsWritten"),
        "superseded": counts.total("RecordsSuperseded"),
        "rejected": counts.total("RecordsRejected"),
        "retried": len(failures),
    }
    logger.info("batch processed", extra={**summary, "shard": records[0].shard_id if records else ""})
    return {"batchItemFailures": [{"itemIdentifier": r.sequence_number} for r in failures]}


def _deadline(context: Any) -> Callable[[], bool] | None:
    """Whether too little of the invocation's time is left to start a write (None outside Lambda)."""
    method = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(method):
        return None
    remaining: Callable[[], int] = method  # type: ignore[assignment]
    return lambda: remaining() < DEADLINE_MARGIN_MS


def _model(rejection: Rejection) -> str:
    return rejection.target.model if rejection.target else ""


def _rejection_log(rejection: Rejection) -> dict[str, Any]:
    return {
        "reason": rejection.reason.value,
        "detail": rejection.detail[:512],
        "field": rejection.field,
        "model": _model(rejection),
        **rejection.record.source(),
    }


def _emit(counts: Counts) -> None:
    """Totals on the function's metrics (dimension ``service``) and per-model values (``service``, ``model``)."""
    for name in METRIC_NAMES:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts.total(name))
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "MLOps/Streaming"
    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE
    for (name, model), value in sorted(counts.values.items()):
        if model:
            with single_metric(
                name=name,
                unit=MetricUnit.Count,
                value=value,
                namespace=namespace,
                default_dimensions={"service": service, "model": model},
            ):
                pass


def _event_ids(event: Any) -> list[str]:
    """The sequence numbers of an event (what a failure record names instead of the whole, large, event)."""
    if not isinstance(event, Mapping) or not isinstance(event.get("Records"), list):
        return []
    ids = []
    for record in event["Records"]:
        kinesis = record.get("kinesis") if isinstance(record, Mapping) else None
        if isinstance(kinesis, Mapping):
            ids.append(str(kinesis.get("sequenceNumber")))
    return ids


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point. A failure of the whole invocation (bad environment, broken envelope, a bug) is
    reported (log + ``Failed``) and re-raised: Lambda retries the whole batch."""
    try:
        return process(event, runtime(), context)
    except Exception as error:
        ids = _event_ids(event)
        summary = {"records": len(ids), "first": ids[0] if ids else None, "last": ids[-1] if ids else None}
        raised = report_failure(logger, metrics, SERVICE, error, summary, ids[:20])
        if raised is error:
            raise
        raise raised from None
