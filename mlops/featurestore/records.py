"""Validation of feature records against their spec, and their PutRecord payload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops.features.spec import FeatureSpec, FeatureSpecError, coerce_value, format_event_time, is_missing
from mlops.featurestore.errors import InvalidRecordError


def record_label(spec: FeatureSpec, record: Mapping[str, Any], index: int | None) -> str:
    """How errors name a record: its identifier when it has a usable one, else its position."""
    identifier = record.get(spec.record_identifier) if isinstance(record, Mapping) else None
    if isinstance(identifier, str) and identifier:
        return f"'{identifier}'" + (f" (#{index})" if index is not None else "")
    return f"#{index}" if index is not None else "(unnamed)"


def validate_record(spec: FeatureSpec, record: Mapping[str, Any], index: int | None = None) -> dict[str, Any]:
    """Check one feature record and return it normalised (event time as ISO-8601 UTC string, typed values).

    A record must have a non-empty string identifier, an event time (a datetime or an ISO-8601 UTC
    string) and every feature of the spec with a value of the feature's type; it may not carry
    columns the feature group does not have. Strings are not parsed into numbers here: a record
    whose ``Integral`` feature is ``"3"`` is refused, since it signals an upstream type bug.
    Raises :class:`InvalidRecordError` naming the record (identifier or index) and the field.
    """
    label = record_label(spec, record, index)
    if not isinstance(record, Mapping):
        raise InvalidRecordError(
            label, "*", f"expected a mapping of feature name to value, got {type(record).__name__}"
        )
    identifier = record.get(spec.record_identifier)
    if spec.record_identifier not in record or is_missing(identifier):
        raise InvalidRecordError(label, spec.record_identifier, "record identifier is missing")
    if not isinstance(identifier, str) or not identifier:
        raise InvalidRecordError(
            label, spec.record_identifier, f"record identifier must be a non-empty string, got {identifier!r}"
        )
    if spec.event_time not in record or is_missing(record[spec.event_time]):
        raise InvalidRecordError(label, spec.event_time, "event time is missing")
    try:
        event_time = format_event_time(record[spec.event_time], field_name="event time")
    except FeatureSpecError as exc:
        raise InvalidRecordError(label, spec.event_time, str(exc)) from None
    known = {spec.record_identifier, spec.event_time, *spec.feature_names}
    unknown = sorted(set(record) - known)
    if unknown:
        raise InvalidRecordError(label, unknown[0], f"not a feature of spec '{spec.name}' (unknown: {unknown})")
    normalised: dict[str, Any] = {spec.record_identifier: identifier, spec.event_time: event_time}
    for name in spec.feature_names:
        if name not in record or is_missing(record[name]):
            raise InvalidRecordError(label, name, "value is missing")
        value = record[name]
        if isinstance(value, str) and spec.feature_type(name) != "String":
            raise InvalidRecordError(label, name, f"is {spec.feature_type(name)}, got the string {value!r}")
        try:
            normalised[name] = coerce_value(spec, name, value)
        except FeatureSpecError as exc:
            raise InvalidRecordError(label, name, str(exc)) from None
    return normalised


def to_put_record_payload(spec: FeatureSpec, record: Mapping[str, Any]) -> list[dict[str, str]]:
    """The ``Record`` argument of ``put_record`` for a validated record (every value as a string).

    Floats are written with ``repr`` (the shortest string that reads back as the same float), so the
    online store returns exactly the values the offline store and the training set hold.
    """
    payload = [
        {"FeatureName": spec.record_identifier, "ValueAsString": str(record[spec.record_identifier])},
        {"FeatureName": spec.event_time, "ValueAsString": str(record[spec.event_time])},
    ]
    for name in spec.feature_names:
        value = record[name]
        payload.append({"FeatureName": name, "ValueAsString": repr(value) if isinstance(value, float) else str(value)})
    return payload
