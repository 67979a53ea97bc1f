"""Batch ingestion into a feature group with ``put_record``: bounded concurrency, retries, a full report.

Records are validated against the spec first. With ``on_invalid="raise"`` (the default) a batch
holding an invalid record is refused whole (:class:`InvalidRecordsError`, nothing written); with
``"report"`` invalid records are listed as failures (code ``InvalidRecord``) and the rest written.

Each record is then written by one of at most ``max_workers`` threads. Throttling and transient
service errors are retried with exponential backoff and full jitter, up to ``max_attempts`` calls;
any other error, or a retryable one that outlasts the attempts, is reported in
:attr:`IngestionReport.failed` with the record id, the error code and the message. Nothing is
dropped silently: ``succeeded + len(failed) == total``.

These retries come on top of the client's own (botocore's retry mode), which callers may lower.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from mlops.features.spec import FeatureSpec
from mlops.featurestore.errors import InvalidRecordError, InvalidRecordsError
from mlops.featurestore.records import record_label, to_put_record_payload, validate_record

logger = logging.getLogger(__name__)

RETRYABLE_ERROR_CODES: frozenset[str] = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
    }
)
"""Error codes worth retrying: throttling and transient service failures."""


class PutRecordClient(Protocol):
    """What ingestion needs of a ``sagemaker-featurestore-runtime`` client."""

    def put_record(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class FailedRecord:
    """A record that was not written: its identifier (or ``#<index>``), position, error code and message."""

    record_id: str
    index: int
    error_code: str
    message: str
    attempts: int


@dataclass(frozen=True)
class IngestionReport:
    """The outcome of one batch: ``succeeded`` written records and every ``failed`` one, in input order."""

    feature_group_name: str
    total: int
    succeeded: int
    failed: tuple[FailedRecord, ...]
    retries: int

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class _Outcome:
    index: int
    record_id: str
    attempts: int
    error_code: str | None = None
    message: str = ""


def backoff_delay(attempt: int, *, base_delay: float, max_delay: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff before retry ``attempt`` (1-based): uniform in [0, min(max, base·2^(n-1))]."""
    return rng.uniform(0.0, min(max_delay, base_delay * 2 ** (attempt - 1)))


def _call(client: PutRecordClient, request: dict[str, Any]) -> tuple[str | None, str, bool]:
    """One ``put_record`` call: (error code or ``None``, message, whether to retry)."""
    try:
        client.put_record(**request)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        return code, str(error.get("Message") or exc), code in RETRYABLE_ERROR_CODES
    except BotoCoreError as exc:  # no HTTP response: network trouble is retried, anything else reported
        return type(exc).__name__, str(exc), isinstance(exc, BotoConnectionError | HTTPClientError)
    return None, "", False


def ingest_records(
    client: PutRecordClient,
    feature_group_name: str,
    spec: FeatureSpec,
    records: Iterable[Mapping[str, Any]],
    *,
    max_workers: int = 8,
    max_attempts: int = 5,
    base_delay: float = 0.1,
    max_delay: float = 5.0,
    on_invalid: Literal["raise", "report"] = "raise",
    target_stores: tuple[Literal["OnlineStore", "OfflineStore"], ...] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> IngestionReport:
    """Write ``records`` (feature records: identifier, event time, features) to ``feature_group_name``.

    ``target_stores`` limits the write to one store (for example ``("OfflineStore",)`` for a
    backfill); ``None`` writes every store the group has. ``sleep`` and ``rng`` are injectable for
    tests. Raises :class:`InvalidRecordsError` (``on_invalid="raise"``) before writing anything.
    """
    if max_workers < 1 or max_attempts < 1:
        raise ValueError(f"max_workers ({max_workers}) and max_attempts ({max_attempts}) must be at least 1")
    batch = list(records)
    valid: list[tuple[int, str, dict[str, Any]]] = []
    invalid: list[InvalidRecordError] = []
    rejected: list[FailedRecord] = []
    for index, record in enumerate(batch):
        try:
            normalised = validate_record(spec, record, index)
        except InvalidRecordError as exc:
            invalid.append(exc)
            rejected.append(FailedRecord(exc.record, index, "InvalidRecord", str(exc), attempts=0))
            continue
        valid.append((index, normalised[spec.record_identifier], normalised))
    if invalid and on_invalid == "raise":
        raise InvalidRecordsError(invalid)

    jitter = rng or random.Random()  # noqa: S311 (backoff jitter, not cryptography)

    def put(index: int, record_id: str, record: dict[str, Any]) -> _Outcome:
        request: dict[str, Any] = {
            "FeatureGroupName": feature_group_name,
            "Record": to_put_record_payload(spec, record),
        }
        if target_stores is not None:
            request["TargetStores"] = list(target_stores)
        attempt = 0
        while True:
            attempt += 1
            code, message, retryable = _call(client, request)
            if code is None:
                return _Outcome(index, record_id, attempt)
            if not retryable or attempt >= max_attempts:
                return _Outcome(index, record_id, attempt, code, message)
            delay = backoff_delay(attempt, base_delay=base_delay, max_delay=max_delay, rng=jitter)
            logger.debug("put_record %s: %s, retry %d in %.3fs", record_id, code, attempt, delay)
            sleep(delay)

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="put-record") as pool:
        outcomes = list(pool.map(lambda item: put(*item), valid))

    failed = [
        FailedRecord(record_label(spec, batch[o.index], o.index), o.index, o.error_code, o.message, o.attempts)
        for o in outcomes
        if o.error_code is not None
    ]
    report = IngestionReport(
        feature_group_name=feature_group_name,
        total=len(batch),
        succeeded=sum(1 for o in outcomes if o.error_code is None),
        failed=tuple(sorted([*rejected, *failed], key=lambda f: f.index)),
        retries=sum(o.attempts - 1 for o in outcomes),
    )
    if report.failed:
        logger.warning(
            "ingestion into %s: %d of %d record(s) failed",
            feature_group_name,
            len(report.failed),
            report.total,
        )
    return report
