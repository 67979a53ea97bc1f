"""Ingestion into the curated zone: validate a frame against its table declaration, then write it idempotently.

:func:`write_curated_dataset` writes a pandas frame as partitioned Parquet under the table's
location (``s3://<bucket>/<table prefix>``) and creates the Glue table or adds its partitions.
Everything is checked before the first byte is written, so a refused frame leaves no objects, no
table and no partitions behind:

- the frame has rows (:class:`EmptyDatasetError`);
- its columns are exactly the declared columns plus partition keys (:class:`SchemaMismatchError`);
- partition keys hold no nulls and form valid S3 path segments (:class:`PartitionValueError`);
- every value converts losslessly to its column's Glue type (:class:`ColumnTypeError`). Strings are
  never parsed into numbers, booleans or timestamps: a string in an ``int`` column is refused;
- an existing Glue table has the declared schema and location (:class:`CatalogMismatchError`).

**Retries are safe.** A frame is written as one *batch* with an id (the caller's ``batch_id``, else a
digest of the frame's rows, so the same rows in any order are the same batch). Calling again with
the same arguments after any failure leaves the table holding the batch's rows exactly once: after
failed attempts followed by one that succeeds, the table is as one successful attempt leaves it. How,
given that S3 has no atomic rename and Glue no transaction spanning S3:

1. *stage*: the batch is serialised and uploaded under ``_staging/<table prefix><batch id>/<attempt>/``,
   outside every table's location, so the long, failure-prone part never leaves a file where readers
   list the table (a fault here used to leave orphan files that a re-run then duplicated);
2. *commit*: each staged file is copied (server side) to a name derived from the batch id and its
   partition, ``<partition>/<batch id>-<n>.snappy.parquet``. A fault between copies leaves part of the
   batch visible until the re-run, which copies to the same names (it overwrites, never adds);
3. files the batch replaces are deleted after the copies (an earlier attempt's extra files; in
   ``overwrite_partitions`` mode every other file of the batch's partitions), so a reader may briefly
   see old and new rows, never neither;
4. the Glue table is created if missing and the partitions added if missing (both idempotent);
5. the batch's *commit marker* is written: ``_commits/<table prefix><batch id>.json`` (a small JSON manifest:
   table, batch id, mode, rows, files, partitions), outside every table's location. It appears once the batch is
   in place and catalogued, one object per load, so it is what announces the load (S3 → EventBridge → the
   retraining responder, ``training.retrainOnNewData``) however many files the load has. A re-run rewrites it;
6. the batch's staging prefix is emptied, leftovers of earlier failed attempts included.

A re-run under the same batch id replaces the batch's files in the partitions it writes; a corrected
batch that no longer has rows in a partition leaves its old file there (use ``overwrite_partitions``
for that partition). Two writers of the same batch at the same time are not supported.

The table declaration is anything shaped like :class:`TableDeclaration`; ``infra.config.TableSpec``
(the stack file's ``catalog.tables`` entries) fits. This module does not import Pulumi: it runs in
jobs, containers and functions.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import awswrangler as wr
import boto3
import numpy as np
import pandas as pd
from botocore.exceptions import ClientError
from pandas.core.util.hashing import hash_pandas_object

WriteMode = Literal["append", "overwrite_partitions"]
WRITE_MODES: tuple[str, ...] = ("append", "overwrite_partitions")

_INT_RANGES: dict[str, tuple[int, int, str]] = {
    "tinyint": (-(2**7), 2**7 - 1, "Int8"),
    "smallint": (-(2**15), 2**15 - 1, "Int16"),
    "int": (-(2**31), 2**31 - 1, "Int32"),
    "bigint": (-(2**63), 2**63 - 1, "Int64"),
}
_FLOATS: dict[str, str] = {"float": "float32", "double": "float64"}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_ARRAY = re.compile(r"^array<(.+)>$")


# ---------------------------------------------------------------------------------------------
# Declarations and results


class ColumnDeclaration(Protocol):
    """One declared column: a Glue name and a Hive type (``int``, ``decimal(10,2)``, ``array<string>``)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...


class TableDeclaration(Protocol):
    """A declared table: its columns, its partition keys and the S3 prefix of its files."""

    @property
    def name(self) -> str: ...

    @property
    def columns(self) -> Sequence[ColumnDeclaration]: ...

    @property
    def partition_keys(self) -> Sequence[ColumnDeclaration]: ...

    @property
    def location_prefix(self) -> str: ...


@dataclass(frozen=True)
class IngestionReport:
    """What one call wrote: the table, its location, the row count, files, partition prefixes, batch id and the
    batch's commit marker."""

    database: str
    table: str
    location: str
    mode: WriteMode
    rows: int
    files: tuple[str, ...]
    partitions: tuple[str, ...]
    batch_id: str
    commit_marker: str = ""


# ---------------------------------------------------------------------------------------------
# Errors


class IngestionError(Exception):
    """A frame was refused; nothing was written."""


class EmptyDatasetError(IngestionError):
    """The frame has no rows."""


class SchemaMismatchError(IngestionError):
    """The frame's columns are not exactly the declared columns and partition keys."""

    def __init__(
        self, table: str, missing: Sequence[str], extra: Sequence[str], duplicated: Sequence[str] = ()
    ) -> None:
        self.table = table
        self.missing = tuple(missing)
        self.extra = tuple(extra)
        self.duplicated = tuple(duplicated)
        parts = []
        if self.missing:
            parts.append(f"missing column(s) {list(self.missing)}")
        if self.extra:
            parts.append(f"undeclared column(s) {list(self.extra)}")
        if self.duplicated:
            parts.append(f"duplicated column(s) {list(self.duplicated)}")
        super().__init__(f"frame for table '{table}' does not match its declaration: {'; '.join(parts)}")


class ColumnTypeError(IngestionError):
    """Values of one or more columns cannot be converted to their declared Glue types.

    ``problems`` maps each bad column to what is wrong with it.
    """

    def __init__(self, table: str, problems: dict[str, str]) -> None:
        self.table = table
        self.problems = dict(problems)
        listing = "; ".join(f"{column}: {reason}" for column, reason in self.problems.items())
        super().__init__(f"frame for table '{table}' has values of the wrong type: {listing}")

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.problems)


class PartitionValueError(IngestionError):
    """A partition key holds a null, an empty value or a value with '/' (it would not form a path)."""

    def __init__(self, table: str, column: str, reason: str) -> None:
        self.table = table
        self.column = column
        super().__init__(f"partition key '{column}' of table '{table}' {reason}")


class CatalogMismatchError(IngestionError):
    """The Glue table already exists with another schema or location than declared."""


class IngestionCommitError(Exception):
    """S3 refused to delete objects while a batch was committed; re-running the batch finishes it.

    Not an :class:`IngestionError`: the frame was valid and part of the batch may already be in place.
    """


# ---------------------------------------------------------------------------------------------
# Validation (pure)


def validate_frame(df: pd.DataFrame, table: TableDeclaration) -> pd.DataFrame:
    """Check ``df`` against ``table`` and return a copy with every column converted to its type.

    Columns come back in declaration order (columns, then partition keys). Raises a subclass of
    :class:`IngestionError`; never modifies ``df``.
    """
    if len(df.index) == 0:
        raise EmptyDatasetError(f"frame for table '{table.name}' has no rows; refusing to write an empty dataset")

    declared = [*table.columns, *table.partition_keys]
    declared_names = [c.name for c in declared]
    present = [str(c) for c in df.columns]
    duplicated = sorted({c for c in present if present.count(c) > 1})
    missing = [c for c in declared_names if c not in present]
    extra = [c for c in present if c not in declared_names]
    if missing or extra or duplicated:
        raise SchemaMismatchError(table.name, missing, sorted(set(extra)), duplicated)

    frame = df.rename(columns=str)
    # Names are unique (checked above), so each lookup is a Series.
    columns = {name: cast(pd.Series, frame[name]) for name in declared_names}
    for key in table.partition_keys:
        nulls = int(columns[key.name].isna().to_numpy().sum())
        if nulls:
            raise PartitionValueError(table.name, key.name, f"is null in {nulls} row(s); every row needs a partition")

    converted: dict[str, pd.Series] = {}
    problems: dict[str, str] = {}
    for column in declared:
        try:
            converted[column.name] = convert_column(columns[column.name], column.type)
        except _UnconvertibleError as exc:
            problems[column.name] = f"declared {column.type}, {exc}"
    if problems:
        raise ColumnTypeError(table.name, problems)

    for key in table.partition_keys:
        segments = converted[key.name].astype(str)
        if (segments == "").any():
            raise PartitionValueError(table.name, key.name, "has an empty value; it would not form a partition path")
        if segments.str.contains("/", regex=False).any():
            raise PartitionValueError(table.name, key.name, "has a value containing '/'; it would nest partitions")
    return pd.DataFrame(converted, index=frame.index)


class _UnconvertibleError(ValueError):
    """Internal: a series cannot take a Glue type (the message says why)."""


def convert_column(series: pd.Series, glue_type: str) -> pd.Series:
    """Convert ``series`` losslessly to the pandas representation of ``glue_type``.

    Nulls stay null. Raises ``ValueError`` (an internal subclass) saying which value is wrong.
    """
    glue_type = glue_type.strip().lower()
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred == "empty":  # only nulls: any type holds them
        return _all_null(series, glue_type)
    if glue_type in _INT_RANGES:
        return _to_int(series, glue_type, inferred)
    if glue_type in _FLOATS:
        if inferred not in ("integer", "floating", "mixed-integer-float"):
            raise _UnconvertibleError(_found(series, inferred, "numbers", _is_number))
        return series.astype(_FLOATS[glue_type])
    if glue_type == "boolean":
        if inferred != "boolean":
            raise _UnconvertibleError(_found(series, inferred, "booleans", _is_bool))
        return series.astype("boolean")
    if glue_type == "string":
        if inferred != "string":
            raise _UnconvertibleError(_found(series, inferred, "strings", _is_str))
        return series.astype("string")
    if glue_type == "timestamp":
        return _to_timestamp(series, inferred)
    if glue_type == "date":
        return _to_date(series, inferred)
    if glue_type == "binary":
        if inferred != "bytes":
            raise _UnconvertibleError(_found(series, inferred, "bytes", _is_bytes))
        return series
    if match := _DECIMAL.match(glue_type):
        return _to_decimal(series, int(match.group(1)), int(match.group(2)), inferred)
    if match := _ARRAY.match(glue_type):
        return _to_array(series, match.group(1))
    raise _UnconvertibleError(f"type '{glue_type}' is not supported by ingestion")


def _found(series: pd.Series, inferred: str, wanted: str, accepts: Callable[[Any], bool]) -> str:
    """Say what was expected and show the first value that does not fit."""
    sample = next((v for v in series if not _is_null(v) and not accepts(v)), None)
    return f"expected {wanted} but found {inferred} values (e.g. {sample!r})"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not _is_bool(value)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bytes(value: Any) -> bool:
    return isinstance(value, bytes | bytearray)


def _is_temporal(value: Any) -> bool:
    return isinstance(value, dt.date | np.datetime64)


def _is_decimal(value: Any) -> bool:
    return isinstance(value, decimal.Decimal) or (isinstance(value, int | np.integer) and not _is_bool(value))


def _is_null(value: Any) -> bool:
    if isinstance(value, list | tuple | dict | bytes):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # array-likes
        return False


def _all_null(series: pd.Series, glue_type: str) -> pd.Series:
    if glue_type in _INT_RANGES:
        return series.astype(_INT_RANGES[glue_type][2])
    if glue_type in _FLOATS:
        return series.astype(_FLOATS[glue_type])
    if glue_type == "boolean":
        return series.astype("boolean")
    if glue_type == "string":
        return series.astype("string")
    if glue_type == "timestamp":
        return pd.to_datetime(series)
    return series.astype(object)


def _to_int(series: pd.Series, glue_type: str, inferred: str) -> pd.Series:
    low, high, target = _INT_RANGES[glue_type]
    if inferred not in ("integer", "floating", "mixed-integer-float"):
        raise _UnconvertibleError(_found(series, inferred, "whole numbers", _is_number))
    values = series.dropna()
    if inferred != "integer":
        fractional = [v for v in values if not (math.isfinite(float(v)) and float(v).is_integer())]
        if fractional:
            raise _UnconvertibleError(f"found non-whole number {fractional[0]!r}")
    too_big = [v for v in values if not low <= int(v) <= high]
    if too_big:
        raise _UnconvertibleError(f"value {too_big[0]!r} is outside the {glue_type} range [{low}, {high}]")
    return series.astype(target)


def _to_timestamp(series: pd.Series, inferred: str) -> pd.Series:
    if inferred not in ("datetime64", "datetime", "date"):
        raise _UnconvertibleError(_found(series, inferred, "datetimes (strings are not parsed)", _is_temporal))
    try:
        converted = pd.to_datetime(series, utc=True) if _has_timezone(series) else pd.to_datetime(series)
    except (TypeError, ValueError) as exc:
        raise _UnconvertibleError(f"cannot convert to timestamps: {exc}") from None
    if getattr(converted.dt, "tz", None) is not None:
        converted = converted.dt.tz_convert("UTC").dt.tz_localize(None)  # Glue timestamps are UTC, no zone
    return converted


def _has_timezone(series: pd.Series) -> bool:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return True
    return any(getattr(v, "tzinfo", None) is not None for v in series if not _is_null(v))


def _to_date(series: pd.Series, inferred: str) -> pd.Series:
    if inferred == "date":
        bad = [v for v in series if not _is_null(v) and isinstance(v, dt.datetime) and v.time() != dt.time()]
        if bad:
            raise _UnconvertibleError(f"value {bad[0]!r} has a time of day")
        return series.map(lambda v: None if _is_null(v) else (v.date() if isinstance(v, dt.datetime) else v))
    if inferred in ("datetime64", "datetime"):
        stamps = pd.to_datetime(series)
        times = stamps.dropna()
        if not (times == times.dt.normalize()).all():
            raise _UnconvertibleError("datetimes with a time of day cannot become dates")
        return stamps.map(lambda v: None if pd.isna(v) else v.date()).astype(object)
    raise _UnconvertibleError(_found(series, inferred, "dates (strings are not parsed)", _is_temporal))


def _to_decimal(series: pd.Series, precision: int, scale: int, inferred: str) -> pd.Series:
    if not all(_is_decimal(v) for v in series if not _is_null(v)):
        raise _UnconvertibleError(
            _found(series, inferred, "decimal.Decimal or int values (floats are inexact)", _is_decimal)
        )
    quantum = decimal.Decimal(1).scaleb(-scale)

    def convert(value: Any) -> decimal.Decimal | None:
        if _is_null(value):
            return None
        exact = decimal.Decimal(int(value)) if not isinstance(value, decimal.Decimal) else value
        if not exact.is_finite():
            raise _UnconvertibleError(f"value {value!r} is not finite")
        try:
            scaled = exact.quantize(quantum, context=decimal.Context(prec=precision))
        except decimal.InvalidOperation:  # the result needs more than `precision` digits
            raise _UnconvertibleError(f"value {value!r} has more than {precision} digit(s)") from None
        if scaled != exact:
            raise _UnconvertibleError(f"value {value!r} has more than {scale} decimal place(s)")
        if len(scaled.as_tuple().digits) > precision:
            raise _UnconvertibleError(f"value {value!r} has more than {precision} digit(s)")
        return scaled

    return series.map(convert).astype(object)


def _to_array(series: pd.Series, element_type: str) -> pd.Series:
    values = [v for v in series if not _is_null(v)]
    not_lists = [v for v in values if not isinstance(v, list | tuple) and not hasattr(v, "tolist")]
    if not_lists:
        raise _UnconvertibleError(f"expected lists but found {not_lists[0]!r}")
    elements = pd.Series([e for v in values for e in list(v)], dtype=object)
    if not elements.empty:
        try:
            convert_column(elements, element_type)
        except _UnconvertibleError as exc:
            raise _UnconvertibleError(f"array element: {exc}") from None
    return series.map(lambda v: None if _is_null(v) else list(v)).astype(object)


# ---------------------------------------------------------------------------------------------
# Catalog check and write (the adapters)


def table_location(bucket: str, table: TableDeclaration) -> str:
    """``s3://<bucket>/<prefix>``: where the table's files live (the prefix ends with '/')."""
    return f"s3://{bucket}/{table.location_prefix}"


def _existing_table(glue: Any, database: str, table: str) -> dict[str, Any] | None:
    try:
        return glue.get_table(DatabaseName=database, Name=table)["Table"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
            return None
        raise


def _normal_type(glue_type: str) -> str:
    return glue_type.replace(" ", "").lower()


def check_catalog(existing: dict[str, Any] | None, table: TableDeclaration, location: str, database: str) -> None:
    """Refuse to write when the Glue table exists with other columns, partition keys or location."""
    if existing is None:
        return
    descriptor = existing.get("StorageDescriptor", {})
    found_columns = [(c["Name"], _normal_type(c["Type"])) for c in descriptor.get("Columns", [])]
    found_keys = [(c["Name"], _normal_type(c["Type"])) for c in existing.get("PartitionKeys", [])]
    wanted_columns = [(c.name, _normal_type(c.type)) for c in table.columns]
    wanted_keys = [(c.name, _normal_type(c.type)) for c in table.partition_keys]
    problems = []
    if found_columns != wanted_columns:
        problems.append(f"columns are {found_columns}, declared {wanted_columns}")
    if found_keys != wanted_keys:
        problems.append(f"partition keys are {found_keys}, declared {wanted_keys}")
    found_location = str(descriptor.get("Location", "")).rstrip("/")
    if found_location != location.rstrip("/"):
        problems.append(f"location is '{found_location}/', expected '{location}'")
    if problems:
        raise CatalogMismatchError(
            f"Glue table {database}.{table.name} differs from its declaration: {'; '.join(problems)}"
        )


STAGING_PREFIX = "_staging/"
"""Where a batch's files are written before they are committed into the table (outside every table's location)."""
COMMITS_PREFIX = "_commits/"
"""Where each committed batch's marker is written (outside every table's location; readers skip '_' paths)."""

_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PARQUET_SUFFIX = ".snappy.parquet"


def batch_id_of(frame: pd.DataFrame, table: TableDeclaration) -> str:
    """A batch's identity derived from its content: the same rows (in any order) give the same id.

    The digest covers the table's declared columns and types and the multiset of rows, so a retry of
    the same frame lands on the same object names and replaces them instead of adding rows.
    ``frame`` should be the output of :func:`validate_frame` (values already converted to their types).
    """
    digest = hashlib.sha256()
    declared = [(c.name, _normal_type(c.type)) for c in (*table.columns, *table.partition_keys)]
    digest.update(repr((table.name, declared)).encode())
    columns = {}
    for name in frame.columns:
        series = cast(pd.Series, frame[name])
        # Lists, decimals, dates and bytes are not hashable by pandas: hash an exact text form instead.
        columns[name] = series.map(_canonical).astype(str) if series.dtype == object else series
    rows = hash_pandas_object(pd.DataFrame(columns, index=frame.index), index=False, categorize=False)
    digest.update(np.sort(rows.to_numpy(dtype=np.uint64)).tobytes())  # sorted: row order is not identity
    return digest.hexdigest()[:32]


def _canonical(value: Any) -> str:
    if hasattr(value, "tolist"):  # numpy arrays (from Parquet) and scalars: repr() of an array elides items
        value = value.tolist()
    if not isinstance(value, list | tuple) and _is_null(value):
        return "\x00null"
    return repr(value)


def _check_batch_id(batch_id: str) -> str:
    if not _BATCH_ID.match(batch_id):
        raise ValueError(
            f"batch_id {batch_id!r} must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (it names the batch's objects; Athena skips files whose names start with '_' or '.')"
        )
    return batch_id


@dataclass(frozen=True)
class _StagedFile:
    staged_key: str
    final_key: str


def _plan_commit(
    staged_paths: Sequence[str], *, bucket: str, staging_prefix: str, table_prefix: str, batch_id: str
) -> list[_StagedFile]:
    """Deterministic final names: ``<table prefix><partition path><batch id>-<n>.snappy.parquet``.

    ``n`` numbers the batch's files within one partition in the order of their staged names, so a
    re-run of the same batch writes the same keys (awswrangler names staged files with random UUIDs).
    """
    by_partition: dict[str, list[str]] = {}
    for path in staged_paths:
        key = path.removeprefix(f"s3://{bucket}/")
        relative = key.removeprefix(staging_prefix)
        partition = relative.rsplit("/", 1)[0] + "/" if "/" in relative else ""
        by_partition.setdefault(partition, []).append(key)
    planned = []
    for partition, keys in sorted(by_partition.items()):
        for n, key in enumerate(sorted(keys)):
            planned.append(_StagedFile(key, f"{table_prefix}{partition}{batch_id}-{n:05d}{_PARQUET_SUFFIX}"))
    return planned


def _list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def _delete_keys(s3: Any, bucket: str, keys: Sequence[str]) -> None:
    for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
        chunk = keys[start : start + 1000]
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
        errors = response.get("Errors") or []
        if errors:
            raise IngestionCommitError(f"could not delete {len(errors)} object(s) of s3://{bucket}/: {errors[:3]}")


def write_curated_dataset(
    df: pd.DataFrame,
    table: TableDeclaration,
    *,
    bucket: str,
    database: str,
    boto3_session: boto3.Session | None = None,
    mode: WriteMode = "append",
    kms_key_arn: str | None = None,
    batch_id: str | None = None,
) -> IngestionReport:
    """Validate ``df`` against ``table``, then write it as partitioned Parquet and catalogue it, idempotently.

    ``bucket`` is the curated zone's bucket and ``database`` its Glue database. The frame is one
    *batch*, named by ``batch_id`` (default: a digest of its rows, :func:`batch_id_of`); pass the
    source's identity (the landed object's key, a run id) when a corrected re-run of the same source
    must replace what it wrote before. Modes:

    - ``"append"`` (default): the batch's rows are added to the table; a re-run of the same batch
      replaces the batch's files instead of adding them again (other batches are kept);
    - ``"overwrite_partitions"``: the partitions present in ``df`` end up holding exactly this batch
      (every other file in them is deleted after the batch is in place).

    ``kms_key_arn`` asks for SSE-KMS with that key explicitly (the lake's buckets otherwise apply
    their default platform key). Creates the Glue table with the declared types if it does not
    exist, else adds partitions only (it never changes an existing table's schema).

    Raises :class:`IngestionError` subclasses before anything is written; a ``ValueError`` for an
    unknown ``mode`` or an unusable ``batch_id``. An AWS error during the write propagates: calling
    again with the same arguments finishes the batch without duplicating a row.
    """
    if mode not in WRITE_MODES:
        raise ValueError(f"mode {mode!r} is not one of {list(WRITE_MODES)}")
    if batch_id is not None:
        _check_batch_id(batch_id)
    for reserved in (STAGING_PREFIX, COMMITS_PREFIX):
        if table.location_prefix.startswith(reserved):
            raise ValueError(f"table '{table.name}' lives under {reserved!r}, which ingestion uses for itself")
    frame = validate_frame(df, table)
    batch = batch_id or batch_id_of(frame, table)
    location = table_location(bucket, table)
    session = boto3_session or boto3.Session()
    existing = _existing_table(session.client("glue"), database, table.name)
    check_catalog(existing, table, location, database)
    s3 = session.client("s3")
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else None
    columns_types = {c.name: c.type for c in table.columns}
    partitions_types = {k.name: k.type for k in table.partition_keys}

    # 1. Stage. The whole batch is serialised and uploaded outside the table's location, under a
    #    prefix of its own attempt. Uploading is the long, failure-prone part; a fault here leaves no
    #    file where readers (Athena, Spark, awswrangler) list the table, and no Glue partition.
    batch_staging = f"{STAGING_PREFIX}{table.location_prefix}{batch}/"
    attempt_staging = f"{batch_staging}{uuid.uuid4().hex}/"
    staged = wr.s3.to_parquet(
        df=frame,
        path=f"s3://{bucket}/{attempt_staging}",
        dataset=True,
        partition_cols=list(partitions_types) or None,
        mode="append",  # a fresh prefix: nothing to replace
        dtype={**columns_types, **partitions_types},
        boto3_session=session,
        s3_additional_kwargs=sse,
    )

    # 2. Commit: copy each staged file to its deterministic name in the table. S3 has no atomic rename
    #    (nor a multi-object transaction), so a fault between copies leaves part of the batch visible;
    #    but every copy is idempotent (same key, same bytes), so the re-run converges to the batch, once.
    plan = _plan_commit(
        staged["paths"],
        bucket=bucket,
        staging_prefix=attempt_staging,
        table_prefix=table.location_prefix,
        batch_id=batch,
    )
    for item in plan:
        s3.copy({"Bucket": bucket, "Key": item.staged_key}, bucket, item.final_key, ExtraArgs=sse)

    # 3. Remove what the batch replaces: in "append", files an earlier attempt of this batch wrote
    #    that this one did not (a corrected batch may have fewer files); in "overwrite_partitions",
    #    every other file of the batch's partitions. Deleting after copying means a reader may see
    #    old and new rows for a moment, never neither, and a fault here loses nothing.
    final_keys = {item.final_key for item in plan}
    partition_prefixes = sorted({item.final_key.rsplit("/", 1)[0] + "/" for item in plan})
    # A listing by prefix also returns other batches whose id extends this one ("b-1" lists "b-1-7-..."):
    # only names this batch can have are its own.
    own_name = re.compile(rf"{re.escape(batch)}-[0-9]{{5}}{re.escape(_PARQUET_SUFFIX)}")
    stale: list[str] = []
    for prefix in partition_prefixes:
        for key in _list_keys(s3, bucket, f"{prefix}{batch}-" if mode == "append" else prefix):
            name = key[len(prefix) :]
            if key not in final_keys and "/" not in name and (mode != "append" or own_name.fullmatch(name)):
                stale.append(key)
    _delete_keys(s3, bucket, stale)

    # 4. Catalogue. Glue calls are idempotent too: the table is created only when missing, and a
    #    partition that already exists (same location, by construction) is left as it is.
    if existing is None:
        wr.catalog.create_parquet_table(
            database=database,
            table=table.name,
            path=location,
            columns_types=columns_types,
            partitions_types=partitions_types or None,
            compression="snappy",
            mode="append",  # a table created meanwhile by another writer is kept (and was checked by its writer)
            boto3_session=session,
        )
    staged_root = f"s3://{bucket}/{attempt_staging}"
    partitions_values = {
        f"{location}{path.removeprefix(staged_root)}": list(values)
        for path, values in staged.get("partitions_values", {}).items()
    }
    if partitions_types:
        wr.catalog.add_parquet_partitions(
            database=database,
            table=table.name,
            partitions_values=partitions_values,
            compression="snappy",
            columns_types=columns_types,
            boto3_session=session,
        )

    report = IngestionReport(
        database=database,
        table=table.name,
        location=location,
        mode=mode,
        rows=len(frame.index),
        files=tuple(f"s3://{bucket}/{item.final_key}" for item in plan),
        partitions=tuple(sorted(partitions_values)) if partitions_types else (),
        batch_id=batch,
        commit_marker=f"s3://{bucket}/{commit_marker_key(table, batch)}",
    )

    # 5. Announce the load: one marker object, once the batch is in place and catalogued (what the retraining
    #    responder matches: one event per load, however many files it has). A re-run writes the same key.
    s3.put_object(
        Bucket=bucket,
        Key=commit_marker_key(table, batch),
        Body=commit_manifest(report).encode(),
        ContentType="application/json",
        **(sse or {}),
    )

    # 6. Clean the staging area of this batch: this attempt's files and any an earlier, failed attempt
    #    left. Until this succeeds, leftovers sit outside the table and a re-run removes them.
    _delete_keys(s3, bucket, _list_keys(s3, bucket, batch_staging))
    return report


def commit_marker_key(table: TableDeclaration, batch_id: str) -> str:
    """The key of a batch's commit marker: ``_commits/<table prefix><batch id>.json``."""
    return f"{COMMITS_PREFIX}{table.location_prefix}{batch_id}.json"


def commit_manifest(report: IngestionReport) -> str:
    """The marker's body: what the batch committed (deterministic JSON: a re-run writes the same bytes)."""
    return json.dumps(
        {
            "table": report.table,
            "database": report.database,
            "location": report.location,
            "batchId": report.batch_id,
            "mode": report.mode,
            "rows": report.rows,
            "files": list(report.files),
            "partitions": list(report.partitions),
        },
        sort_keys=True,
    )
