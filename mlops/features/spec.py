"""The feature specification type and the functions that apply it.

A :class:`FeatureSpec` names a model's features (with SageMaker Feature Store types), its record
identifier and event time, and the pure transform from one raw record to feature values. The same
object builds the feature group, the training set and the inference vector, so training and serving
cannot compute features differently.

This module imports no spec: each spec lives in a module of its own (``customer_churn.py``) and
:mod:`mlops.features.registry` lists them by name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

FeatureType = Literal["Integral", "Fractional", "String"]


class FeatureSpecError(ValueError):
    """A raw record or a feature vector does not match its specification."""


@dataclass(frozen=True)
class Feature:
    """One feature: name (Feature Store rules: letters, digits, '_'), type and meaning."""

    name: str
    type: FeatureType
    description: str = ""


@dataclass(frozen=True)
class FeatureSpec:
    """A model's features and how to compute them from a raw record."""

    name: str
    version: int
    record_identifier: str
    event_time: str
    features: tuple[Feature, ...]
    transform: Callable[[Mapping[str, Any]], dict[str, Any]] = field(compare=False)
    target: str | None = None
    description: str = ""

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the model's input features, in vector order (identifier and event time excluded)."""
        return tuple(f.name for f in self.features)

    def feature_type(self, name: str) -> FeatureType:
        for f in self.features:
            if f.name == name:
                return f.type
        raise KeyError(name)


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# ---------------------------------------------------------------------------------------------
# One representation for training and serving
#
# A feature group holds the record identifier and the event time as ``String`` features, next to
# the spec's features. The event time is ISO-8601 in UTC with a ``Z`` suffix
# (``2024-05-01T12:00:00Z``, or with milliseconds), one of the two string forms Feature Store
# accepts; a string sorts like the instant it names, and Athena reads it with
# ``from_iso8601_timestamp``. The functions below are the only conversions between raw records,
# feature records, put/get payloads and model input vectors; training and serving both use them.

RESERVED_FEATURE_NAMES: frozenset[str] = frozenset({"is_deleted", "write_time", "api_invocation_time"})
"""Columns Feature Store adds to the offline store; a feature may not use these names."""

MAX_FEATURES = 2500  # Feature Store's limit of feature definitions per feature group
_FEATURE_NAME = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
_EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")

Value = int | float | str
"""One feature value in a model input vector."""


def feature_definitions(spec: FeatureSpec) -> tuple[tuple[str, FeatureType], ...]:
    """(name, type) of every feature group column: identifier and event time first, then the features."""
    return (
        (spec.record_identifier, "String"),
        (spec.event_time, "String"),
        *((f.name, f.type) for f in spec.features),
    )


def feature_store_problems(spec: FeatureSpec) -> list[str]:
    """Why ``spec`` cannot become a feature group (empty when it can)."""
    problems: list[str] = []
    names = [name for name, _ in feature_definitions(spec)]
    for name in names:
        if not _FEATURE_NAME.match(name):
            problems.append(
                f"feature name '{name}' must be 1-64 letters, digits, '-' or '_', starting and ending alphanumeric"
            )
        if name.lower() in RESERVED_FEATURE_NAMES:
            problems.append(
                f"feature name '{name}' is reserved by Feature Store ({', '.join(sorted(RESERVED_FEATURE_NAMES))})"
            )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"feature names {dupes} appear more than once (identifier and event time included)")
    if len(names) > MAX_FEATURES:
        problems.append(f"{len(names)} feature definitions; Feature Store allows at most {MAX_FEATURES}")
    if spec.target is not None and spec.target in names:
        problems.append(f"target '{spec.target}' must not also be a feature")
    return problems


def format_event_time(value: Any, *, field_name: str = "event time") -> str:
    """An event time as Feature Store's ISO-8601 UTC string (``YYYY-MM-DDTHH:MM:SS[.mmm]Z``).

    Accepts timezone-aware ``datetime`` values (pandas ``Timestamp`` included), naive ones (taken as
    UTC) and strings already in that form. Raises :class:`FeatureSpecError` otherwise.
    """
    if isinstance(value, str):
        if not _EVENT_TIME.match(value):
            raise FeatureSpecError(f"{field_name} {value!r} is not ISO-8601 UTC (YYYY-MM-DDTHH:MM:SS[.mmm]Z)")
        return value
    if isinstance(value, datetime):
        if value != value:  # pandas NaT
            raise FeatureSpecError(f"{field_name} is missing (NaT)")
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if moment.microsecond:
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    raise FeatureSpecError(
        f"{field_name} {value!r} ({type(value).__name__}) is neither a datetime nor an ISO-8601 string"
    )


def parse_event_time(value: str) -> datetime:
    """The timezone-aware UTC instant of an event-time string written by :func:`format_event_time`."""
    return datetime.fromisoformat(format_event_time(value).replace("Z", "+00:00"))


def coerce_value(spec: FeatureSpec, name: str, value: Any) -> Value:
    """``value`` as the Python type of feature ``name`` (int, float or str).

    Strings are parsed (that is how the online store returns values); booleans, missing values,
    non-integral numbers for ``Integral`` and non-finite numbers are refused with a
    :class:`FeatureSpecError` naming the feature.
    """
    kind = spec.feature_type(name)
    if is_missing(value):
        raise FeatureSpecError(f"feature '{name}' has no value")
    if isinstance(value, bool):
        raise FeatureSpecError(f"feature '{name}' is {kind}, got a boolean {value!r}")
    try:
        if kind == "String":
            if not isinstance(value, str):
                raise TypeError
            return value
        if isinstance(value, str):
            number: Any = int(value) if kind == "Integral" else float(value)
        elif hasattr(value, "item") and not isinstance(value, int | float):  # numpy scalars
            number = value.item()
        else:
            number = value
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise TypeError
        if kind == "Integral":
            if isinstance(number, float):
                if not number.is_integer():
                    raise TypeError
                number = int(number)
            return int(number)
        result = float(number)
        if not math.isfinite(result):
            raise FeatureSpecError(f"feature '{name}' is {kind}, got a non-finite value {value!r}")
        return result
    except (TypeError, ValueError):
        raise FeatureSpecError(f"feature '{name}' is {kind}, got {value!r} ({type(value).__name__})") from None


def compute_features(spec: FeatureSpec, raw: Mapping[str, Any]) -> dict[str, Value]:
    """The spec's transform applied to one raw record, checked and typed per the spec (spec order).

    Raises :class:`FeatureSpecError` naming the raw column the transform could not find, or the
    feature it did not produce or produced with the wrong type.
    """
    try:
        produced = spec.transform(raw)
    except KeyError as exc:
        raise FeatureSpecError(f"raw record lacks column {exc.args[0]!r} needed by spec '{spec.name}'") from None
    missing = [name for name in spec.feature_names if name not in produced]
    if missing:
        raise FeatureSpecError(f"transform of spec '{spec.name}' did not produce feature(s) {missing}")
    return {name: coerce_value(spec, name, produced[name]) for name in spec.feature_names}


def feature_record(spec: FeatureSpec, raw: Mapping[str, Any]) -> dict[str, Value]:
    """The feature group record of one raw record: identifier, event time, then the features."""
    for key in (spec.record_identifier, spec.event_time):
        if key not in raw or is_missing(raw[key]):
            raise FeatureSpecError(f"raw record lacks '{key}'")
    identifier = raw[spec.record_identifier]
    if not isinstance(identifier, str) or not identifier:
        raise FeatureSpecError(
            f"record identifier '{spec.record_identifier}' must be a non-empty string, got {identifier!r}"
        )
    return {
        spec.record_identifier: identifier,
        spec.event_time: format_event_time(raw[spec.event_time], field_name=f"'{spec.event_time}'"),
        **compute_features(spec, raw),
    }


def record_to_vector(spec: FeatureSpec, record: Mapping[str, Any]) -> list[Value]:
    """The model input vector of a feature record: values in ``spec.feature_names`` order, typed per spec.

    ``record`` may hold typed values (a training frame row) or strings (an online-store record);
    both give the same vector. Raises :class:`FeatureSpecError` naming a missing or mistyped feature.
    """
    vector: list[Value] = []
    for name in spec.feature_names:
        if name not in record:
            raise FeatureSpecError(f"record lacks feature '{name}'")
        vector.append(coerce_value(spec, name, record[name]))
    return vector


def transform_frame(spec: FeatureSpec, raw: pd.DataFrame) -> pd.DataFrame:
    """Feature records of a raw frame (the training path): one row per raw row.

    Columns: identifier, event time (ISO-8601 strings), the features in spec order, and the target
    when the raw frame has it. Every row goes through :func:`feature_record`, the same function the
    serving path uses, so the two cannot compute features differently.
    """
    import pandas as pd

    rows = []
    for position, row in enumerate(raw.to_dict("records")):
        try:
            record: dict[str, Any] = feature_record(spec, row)
        except FeatureSpecError as exc:
            raise FeatureSpecError(f"raw row {position}: {exc}") from None
        if spec.target is not None and spec.target in row:
            record[spec.target] = row[spec.target]
        rows.append(record)
    columns = [name for name, _ in feature_definitions(spec)]
    if spec.target is not None and spec.target in raw.columns:
        columns.append(spec.target)
    return pd.DataFrame(rows, columns=columns)


def frame_to_vectors(spec: FeatureSpec, frame: pd.DataFrame) -> list[list[Value]]:
    """Model input vectors of every row of a feature frame (training and batch scoring)."""
    return [record_to_vector(spec, row) for row in frame.to_dict("records")]
