"""Settings of a table's streaming ingestion (stack key ``catalog.tables[].streaming``) and the checks that need the
whole configuration (the event-time column a model's feature spec names, the raw table the stream lands in).

The limits below are AWS's, each with its source:

- Kinesis Data Streams ``CreateStream``/``IncreaseStreamRetentionPeriod``: retention 24-8760 hours (the default 24
  costs nothing extra); ``ShardCount`` only in PROVISIONED mode (at least 1).
- Firehose ``BufferingHints``: ``SizeInMBs`` 1-128 and ``IntervalInSeconds`` 0-900 in the API model, but every
  delivery stream here converts JSON to Parquet and partitions dynamically: AWS refuses a size under 64 MiB with data
  format conversion ("BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled") and
  "Zero buffering feature is not available for dynamic partitioning" (Firehose guide, "Buffer data for dynamic
  partitioning"), so intervals start at 60 seconds.
- Firehose custom prefixes ("Understand custom prefixes for Amazon S3 objects", "Troubleshoot dynamic partitioning
  errors"): a delivery stream with dynamic partitioning needs an error output prefix, and it carries
  ``!{firehose:error-output-type}`` (the component adds it); neither prefix may start with '/'.
- Lambda ``CreateEventSourceMapping`` for Kinesis (API model and "Lambda parameters for Amazon Kinesis Data Streams
  event source mappings"): ``BatchSize`` 1-10000, ``MaximumBatchingWindowInSeconds`` 0-300 (at least 1 when
  ``BatchSize`` is over 10), ``MaximumRetryAttempts`` -1-10000 and ``MaximumRecordAgeInSeconds`` -1 or 60-604800
  (the platform refuses -1, "forever": a poison record would block its shard for up to a week),
  ``ParallelizationFactor`` 1-10.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from infra.types import KeyedValueError, KeyPrefix, Section

if TYPE_CHECKING:
    from infra.catalog import ColumnSpec, TableSpec
    from infra.config import PlatformConfig

STREAM_PARTITION_KEY = "dt"
"""The partition key of a raw table the platform creates for a stream: the event date, ``YYYY-MM-DD``."""
EVENT_TIME_TYPES: tuple[str, ...] = ("timestamp", "date", "string")
"""Column types an event date can be cut from (ISO-8601 text on the stream: ``2024-05-01T12:00:00Z``)."""
DEFAULT_ERROR_ROOT = "_stream_errors/"
"""Where failed records go by default (``_stream_errors/<table>/``): outside every table, excluded from crawling."""

FORMAT_CONVERSION_MIN_BUFFER_MB = 64
MAX_BUFFER_MB = 128
DYNAMIC_PARTITIONING_MIN_INTERVAL_SECONDS = 60
MAX_INTERVAL_SECONDS = 900
MIN_RETENTION_HOURS = 24
MAX_RETENTION_HOURS = 8760
MIN_RECORD_AGE_SECONDS = 60
MAX_RECORD_AGE_SECONDS = 604_800
MAX_RETRY_ATTEMPTS = 10_000


def _buffer_size(value: int) -> int:
    if not FORMAT_CONVERSION_MIN_BUFFER_MB <= value <= MAX_BUFFER_MB:
        raise ValueError(
            f"allowed: {FORMAT_CONVERSION_MIN_BUFFER_MB}-{MAX_BUFFER_MB} MiB (Firehose's maximum is {MAX_BUFFER_MB}, and "
            f"it refuses less than {FORMAT_CONVERSION_MIN_BUFFER_MB} MiB when it converts records to Parquet, as it "
            "does for every stream here)"
        )
    return value


def _buffer_interval(value: int) -> int:
    if not DYNAMIC_PARTITIONING_MIN_INTERVAL_SECONDS <= value <= MAX_INTERVAL_SECONDS:
        raise ValueError(
            f"allowed: {DYNAMIC_PARTITIONING_MIN_INTERVAL_SECONDS}-{MAX_INTERVAL_SECONDS} seconds (Firehose's maximum "
            f"is {MAX_INTERVAL_SECONDS}; zero buffering, under {DYNAMIC_PARTITIONING_MIN_INTERVAL_SECONDS} seconds, is "
            "not available with dynamic partitioning, which partitions every stream here by event date)"
        )
    return value


def _retention(value: int) -> int:
    if not MIN_RETENTION_HOURS <= value <= MAX_RETENTION_HOURS:
        raise ValueError(
            f"allowed: {MIN_RETENTION_HOURS}-{MAX_RETENTION_HOURS} hours (Kinesis Data Streams keeps records 1 to 365 "
            "days)"
        )
    return value


def _retries(value: int) -> int:
    if not 0 <= value <= MAX_RETRY_ATTEMPTS:
        raise ValueError(
            f"allowed: 0-{MAX_RETRY_ATTEMPTS}; -1 (Lambda's 'retry until the record expires') is refused: a record the "
            "function cannot handle would block its shard until it leaves the stream"
        )
    return value


def _record_age(value: int) -> int:
    if not MIN_RECORD_AGE_SECONDS <= value <= MAX_RECORD_AGE_SECONDS:
        raise ValueError(
            f"allowed: {MIN_RECORD_AGE_SECONDS}-{MAX_RECORD_AGE_SECONDS} seconds (Lambda's minimum is 60 and maximum "
            "7 days; -1, 'never discard', is refused: a stuck shard must end in the failure queue, not wait a week)"
        )
    return value


def _error_prefix(value: str) -> str:
    if value.startswith("/"):
        raise ValueError("an S3 key prefix for Firehose must not start with '/' (it would create an empty folder name)")
    return value


BufferSizeMb = Annotated[int, AfterValidator(_buffer_size)]
BufferIntervalSeconds = Annotated[int, AfterValidator(_buffer_interval)]
RetentionHours = Annotated[int, AfterValidator(_retention)]
RetryAttempts = Annotated[int, AfterValidator(_retries)]
RecordAgeSeconds = Annotated[int, AfterValidator(_record_age)]
ErrorPrefix = Annotated[KeyPrefix, AfterValidator(_error_prefix)]
ColumnName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=255)]


class DeliverySettings(Section):
    """How Firehose buffers the stream into the raw zone, and where records it cannot deliver go."""

    buffer_size_mb: BufferSizeMb = Field(
        default=128,
        description=f"Deliver when this many MiB are buffered per partition: {FORMAT_CONVERSION_MIN_BUFFER_MB}-"
        f"{MAX_BUFFER_MB} (Firehose's minimum with Parquet conversion). Larger means fewer, bigger files.",
    )
    buffer_interval_seconds: BufferIntervalSeconds = Field(
        default=300,
        description=f"Deliver at least this often, in seconds: {DYNAMIC_PARTITIONING_MIN_INTERVAL_SECONDS}-"
        f"{MAX_INTERVAL_SECONDS} (no zero buffering with dynamic partitioning). Data lands up to 1.5 times later.",
    )
    error_prefix: ErrorPrefix | None = Field(
        default=None,
        description=f"Raw-zone key prefix for records Firehose could not convert or partition, ending with '/'; "
        f"default '{DEFAULT_ERROR_ROOT}<table>/'. Must not overlap the table's prefix.",
    )


class ConsumerSettings(Section):
    """The event source mapping that feeds the stream to a model's online-feature consumer Lambda."""

    batch_size: int = Field(
        default=100, ge=1, le=10_000, description="Records per invocation, 1-10000 (Lambda's default 100)."
    )
    maximum_batching_window_in_seconds: int = Field(
        default=1,
        ge=0,
        le=300,
        description="Seconds Lambda gathers records before invoking, 0-300; at least 1 when batchSize is over 10.",
    )
    maximum_retry_attempts: RetryAttempts = Field(
        default=3,
        description=f"Retries of a failed batch before its records go to the failure queue, 0-{MAX_RETRY_ATTEMPTS} "
        "(no infinite retries).",
    )
    maximum_record_age_in_seconds: RecordAgeSeconds = Field(
        default=21_600,
        description=f"Records older than this are not applied but sent to the failure queue: {MIN_RECORD_AGE_SECONDS}-"
        f"{MAX_RECORD_AGE_SECONDS} seconds.",
    )
    parallelization_factor: int = Field(
        default=1, ge=1, le=10, description="Concurrent batches per shard, 1-10 (order is kept per partition key)."
    )
    bisect_batch_on_function_error: bool = Field(
        default=True, description="Split a failing batch in two and retry the halves (isolates a bad record)."
    )
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = Field(
        default="TRIM_HORIZON",
        description="Where a new mapping starts reading: TRIM_HORIZON (every retained record; nothing written while "
        "the mapping was replaced is skipped, and the online store ignores older event times) or LATEST.",
    )
    put_max_attempts: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="PutRecord attempts per record in the function (PUT_MAX_ATTEMPTS), 1-10; null: the code's default.",
    )

    @model_validator(mode="after")
    def _batching_window(self) -> ConsumerSettings:
        # CreateEventSourceMapping: "For Kinesis, DynamoDB, and Amazon SQS event sources, when you set BatchSize to a
        # value greater than 10, you must set MaximumBatchingWindowInSeconds to at least 1."
        if self.batch_size > 10 and self.maximum_batching_window_in_seconds < 1:
            raise ValueError(
                f"batchSize={self.batch_size} needs maximumBatchingWindowInSeconds of at least 1 (got "
                f"{self.maximum_batching_window_in_seconds}); Lambda refuses a batch over 10 records without a window"
            )
        return self


class StreamingSettings(Section):
    """Real-time ingestion of one table: a KMS-encrypted Kinesis data stream, delivered by Firehose into the raw zone
    as Parquet partitioned by event date, and read by the online-feature consumer of every model whose sourceTable
    it is and whose feature group has an online store."""

    capacity_mode: Literal["ON_DEMAND", "PROVISIONED"] = Field(
        default="ON_DEMAND",
        description="ON_DEMAND (scales itself, billed per GB) or PROVISIONED (fixed shardCount, billed per shard-hour).",
    )
    shard_count: int | None = Field(
        default=None,
        ge=1,
        description="Shards of a PROVISIONED stream (at least 1); only with capacityMode PROVISIONED.",
    )
    retention_hours: RetentionHours = Field(
        default=MIN_RETENTION_HOURS,
        description=f"Hours the stream keeps records, {MIN_RETENTION_HOURS}-{MAX_RETENTION_HOURS} (over 24 costs extra).",
    )
    event_time_column: ColumnName | None = Field(
        default=None,
        description="The column whose ISO-8601 value dates a record (its first 10 characters become the dt partition): "
        "a timestamp, date or string column of the table. Default: the event time of the feature spec of the models "
        "whose sourceTable this is.",
    )
    delivery: DeliverySettings = Field(
        default_factory=lambda: DeliverySettings(), description="Firehose buffering and the error prefix."
    )
    consumer: ConsumerSettings = Field(
        default_factory=lambda: ConsumerSettings(),
        description="How the online-feature consumers read the stream (batching, retries, record age).",
    )

    @model_validator(mode="after")
    def _capacity(self) -> StreamingSettings:
        if self.capacity_mode == "PROVISIONED" and self.shard_count is None:
            raise ValueError("capacityMode PROVISIONED needs shardCount (at least 1)")
        if self.capacity_mode == "ON_DEMAND" and self.shard_count is not None:
            raise ValueError(
                f"shardCount={self.shard_count} is only for capacityMode PROVISIONED; an ON_DEMAND stream scales its "
                "shards itself (remove shardCount or set capacityMode: PROVISIONED)"
            )
        return self


# --- what the settings mean for one table, and the checks across the config -----------------------------------


@dataclass(frozen=True)
class StreamPlan:
    """What streaming one declared table creates, resolved from the config (no resources)."""

    table: TableSpec
    settings: StreamingSettings
    event_time_column: str
    raw_table: str
    """Name of the raw-zone Glue table the delivery stream writes through (the declared one when it is in raw)."""
    reuses_declared_table: bool
    partition_key: str
    data_prefix: str
    """Raw-zone key prefix of the delivered Parquet files (``<table prefix>``)."""
    error_prefix: str
    models: tuple[str, ...]
    """Models whose online features this stream updates (sourceTable = table, online store on)."""

    @property
    def jq_query(self) -> str:
        """Firehose's JQ metadata extraction: the event date, the first 10 characters of the ISO-8601 event time."""
        return f"{{{self.partition_key}:.{self.event_time_column}[0:10]}}"


def _event_time(table: TableSpec, config: PlatformConfig) -> tuple[str | None, str | None]:
    """(column, problem): the table's event-time column, explicit or from the feature specs of its models."""
    from mlops.features import get_spec  # each model's spec was resolved when its settings were validated

    assert table.streaming is not None
    if table.streaming.event_time_column is not None:
        return table.streaming.event_time_column, None
    named = sorted({get_spec(m.feature_spec).event_time for m in config.models if m.source_table == table.name})
    if len(named) == 1:
        return named[0], None
    if not named:
        return None, (
            "no eventTimeColumn and no model names this table as its sourceTable; set streaming.eventTimeColumn to the "
            f"{'/'.join(EVENT_TIME_TYPES)} column that dates a record"
        )
    return None, (
        f"the models reading this table date records by different columns {named}; set streaming.eventTimeColumn"
    )


def _column(table: TableSpec, name: str) -> ColumnSpec | None:
    return next((c for c in table.columns if c.name == name), None)


def _overlap(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def stream_plan(table: TableSpec, config: PlatformConfig) -> StreamPlan:
    """The resolved plan of a streamed table; ``ValueError`` when :func:`streaming_problems` would report it."""
    problems = _table_problems(table, config)
    if problems:
        raise ValueError(f"table '{table.name}': {problems[0][1]}")
    assert table.streaming is not None
    column, _ = _event_time(table, config)
    assert column is not None
    reuse = table.zone == "raw"
    return StreamPlan(
        table=table,
        settings=table.streaming,
        event_time_column=column,
        raw_table=table.name,
        reuses_declared_table=reuse,
        partition_key=table.partition_keys[0].name if reuse else STREAM_PARTITION_KEY,
        data_prefix=table.location_prefix,
        error_prefix=table.streaming.delivery.error_prefix or f"{DEFAULT_ERROR_ROOT}{table.name}/",
        models=tuple(
            sorted(m.name for m in config.models if m.source_table == table.name and m.feature_store.online_store)
        ),
    )


def stream_plans(config: PlatformConfig) -> list[StreamPlan]:
    """Every streamed table of ``config``, in declaration order."""
    return [stream_plan(t, config) for t in config.catalog.tables if t.streaming is not None]


def _table_problems(table: TableSpec, config: PlatformConfig) -> list[tuple[tuple[str, ...], str]]:
    """(key below ``streaming``, message) for every reason ``table`` cannot stream."""
    assert table.streaming is not None
    found: list[tuple[tuple[str, ...], str]] = []
    column, problem = _event_time(table, config)
    if problem:
        found.append((("eventTimeColumn",), problem))
    elif column is not None:
        spec = _column(table, column)
        if spec is None:
            where = (
                " (a partition key is not in the records)" if column in {p.name for p in table.partition_keys} else ""
            )
            found.append(
                (
                    ("eventTimeColumn",),
                    f"event-time column '{column}' is not a column of table '{table.name}'{where}; columns: "
                    f"{', '.join(c.name for c in table.columns)}",
                )
            )
        elif spec.type not in EVENT_TIME_TYPES:
            found.append(
                (
                    ("eventTimeColumn",),
                    f"event-time column '{column}' is {spec.type}; the event date is cut from an ISO-8601 value, so it "
                    f"must be one of {', '.join(EVENT_TIME_TYPES)}",
                )
            )
    if table.zone == "raw":
        keys = table.partition_keys
        if len(keys) != 1 or keys[0].type not in ("string", "date"):
            found.append(
                (
                    (),
                    f"raw table '{table.name}' receives the stream itself, so it needs exactly one partition key of "
                    f"type string or date (the event date, YYYY-MM-DD); it has {[f'{k.name}:{k.type}' for k in keys]}",
                )
            )
    else:
        if _column(table, STREAM_PARTITION_KEY) is not None:
            found.append(
                (
                    (),
                    f"table '{table.name}' has a column '{STREAM_PARTITION_KEY}', the partition key of the raw table the "
                    "stream lands in; rename the column",
                )
            )
        if any(t.zone == "raw" and t.name == table.name for t in config.catalog.tables):
            found.append(
                (
                    (),
                    f"the stream of {table.zone}.{table.name} lands in raw.{table.name}, which catalog.tables declares "
                    f"too; stream the raw table instead (move streaming to raw.{table.name})",
                )
            )
    error_prefix = table.streaming.delivery.error_prefix or f"{DEFAULT_ERROR_ROOT}{table.name}/"
    if _overlap(error_prefix, table.location_prefix):
        found.append(
            (
                ("delivery", "errorPrefix"),
                f"error prefix '{error_prefix}' overlaps the table's prefix '{table.location_prefix}': error files would "
                "be read as table data; choose a prefix outside it",
            )
        )
    return found


def streaming_problems(config: PlatformConfig) -> list[KeyedValueError]:
    """Every streamed table that cannot stream as configured, keyed from the stack's root
    (``catalog.tables[i].streaming...``), plus raw prefixes two streams would share."""
    problems: list[KeyedValueError] = []
    raw_prefixes: dict[str, str] = {}
    for index, table in enumerate(config.catalog.tables):
        if table.streaming is None:
            continue
        base = ("catalog", "tables", index, "streaming")
        problems += [KeyedValueError((*base, *path), message) for path, message in _table_problems(table, config)]
        for prefix in (
            table.location_prefix,
            table.streaming.delivery.error_prefix or f"{DEFAULT_ERROR_ROOT}{table.name}/",
        ):
            clash = next((other for p, other in raw_prefixes.items() if _overlap(p, prefix)), None)
            if clash is not None and clash != table.name:
                problems.append(
                    KeyedValueError(
                        base,
                        f"table '{table.name}' would write raw-zone prefix '{prefix}', which overlaps the prefixes of "
                        f"streamed table '{clash}'; give one of them another prefix",
                    )
                )
            raw_prefixes[prefix] = table.name
    return problems


def streamed_raw_prefixes(tables: Sequence[TableSpec]) -> list[str]:
    """Raw-zone prefixes the streams write (data and errors): the raw crawler must not catalogue them (the data has
    its Pulumi-managed table; error files are not a table)."""
    prefixes: list[str] = []
    for table in tables:
        if table.streaming is None:
            continue
        prefixes.append(table.location_prefix)
        prefixes.append(table.streaming.delivery.error_prefix or f"{DEFAULT_ERROR_ROOT}{table.name}/")
    return sorted(set(prefixes))


PARQUET_COMPRESSION = "SNAPPY"
PROJECTION_START = "2020-01-01"
"""First day partition projection offers for a stream's raw table (``dt`` up to today)."""


def raw_table_parameters(location: str, partition_key: str) -> dict[str, str]:
    """Glue parameters of a stream's raw table: Parquet, and partition projection of the event date so Athena finds
    new ``<key>=YYYY-MM-DD/`` folders without a crawler or ``MSCK REPAIR``."""
    return {
        "EXTERNAL": "TRUE",
        "classification": "parquet",
        "parquet.compression": PARQUET_COMPRESSION,
        "projection.enabled": "true",
        f"projection.{partition_key}.type": "date",
        f"projection.{partition_key}.format": "yyyy-MM-dd",
        f"projection.{partition_key}.range": f"{PROJECTION_START},NOW",
        f"projection.{partition_key}.interval": "1",
        f"projection.{partition_key}.interval.unit": "DAYS",
        "storage.location.template": f"{location}{partition_key}=${{{partition_key}}}/",
    }
