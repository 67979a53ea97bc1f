"""Validation of feature records against their spec and Feature Store's limits, and their PutRecord payload.

A record is checked against what its feature group accepts, so a batch fails here, record by record
with the record and the field named, instead of at ``PutRecord`` (AWS's "Quotas, naming rules and
data types" page of the Feature Store guide):

- ``Integral``: a 64-bit signed integer, ``[-2**63, 2**63 - 1]``;
- ``Fractional``: an IEEE 754 double. NaN is a missing value and infinities are refused (neither is a
  feature value the model can use), and so is an integer a double cannot hold exactly (``2**53 + 1``);
- ``String``: Unicode text with a UTF-8 encoding (a Python string holding a lone surrogate has none),
  a value at most 350 KB; the record identifier (a String) at most 2 KB;
- the event time: the platform's feature groups declare it as a ``String`` feature
  (:func:`mlops.features.spec.feature_definitions`), which Feature Store accepts as ISO-8601 UTC,
  ``yyyy-MM-dd'T'HH:mm:ssZ`` or ``yyyy-MM-dd'T'HH:mm:ss.SSSZ``, within
  ``[0000-01-01T00:00:00.000Z, 9999-12-31T23:59:59.999Z]``. It must also be a real calendar date and
  time (no 30 February, no hour 24, no second 60). Year 0000 is refused although AWS accepts it:
  Python's ``datetime``, and so the training-set code, start at year 1. Unix seconds are what a
  ``Fractional`` event-time feature takes; these groups' is a String, so numbers are refused rather
  than guessed at (seconds? milliseconds?).

Limits are measured as the UTF-8 size of the value strings sent (``ValueAsString``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mlops.features.spec import FeatureSpec, FeatureSpecError, coerce_value, is_missing
from mlops.featurestore.errors import InvalidRecordError

INTEGRAL_MIN = -(2**63)
INTEGRAL_MAX = 2**63 - 1
MAX_VALUE_BYTES = 350 * 1024
"""Feature Store's limit on one feature value: 350 KB."""
MAX_RECORD_BYTES = 350 * 1024
"""Feature Store's limit on a whole record: 350 KB (here: the UTF-8 size of all its values)."""
MAX_IDENTIFIER_BYTES = 2 * 1024
"""Feature Store's limit on a record identifier value: 2 KB."""
# Feature Store's two String event-time forms: yyyy-MM-dd'T'HH:mm:ssZ and yyyy-MM-dd'T'HH:mm:ss.SSSZ.
_EVENT_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z\Z")
_LABEL_CHARS = 64  # how much of an identifier an error message shows
_MAX_NUMBER_CHARS = 24  # len(repr(-2.2250738585072014e-308)) and len(str(-(2**63))) are 24 and 20


def _shown(value: Any) -> str:
    """A value as error messages show it: quoted, escaped (no raw newline reaches a log), shortened."""
    text = repr(value)
    return text if len(text) <= _LABEL_CHARS else f"{text[: _LABEL_CHARS - 4]}...{text[-1]}"


def _field(key: Any) -> str:
    """A mapping key as a field name: itself when it is a short printable string, else its repr."""
    if isinstance(key, str) and key and key.isprintable() and len(key) <= _LABEL_CHARS:
        return key
    return _shown(key)


def record_label(spec: FeatureSpec, record: Mapping[str, Any], index: int | None) -> str:
    """How errors name a record: its identifier when it has a usable one, else its position."""
    identifier = record.get(spec.record_identifier) if isinstance(record, Mapping) else None
    if isinstance(identifier, str) and identifier:
        return _shown(identifier) + (f" (#{index})" if index is not None else "")
    return f"#{index}" if index is not None else "(unnamed)"


def _utf8_size(value: str) -> int | None:
    """The UTF-8 size of ``value``, or ``None`` when it has no UTF-8 encoding (a lone surrogate)."""
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def _format_instant(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS[.mmm]Z`` with a four-digit year (``strftime('%Y')`` gives ``999`` for 999)."""
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    return f"{text}.{moment.microsecond // 1000:03d}Z" if moment.microsecond else f"{text}Z"


def event_time_string(value: Any, *, field_name: str = "event time") -> str:
    """``value`` as the event-time string a String event-time feature accepts; raises ``FeatureSpecError``.

    Datetimes are converted to their UTC instant (naive ones are taken as UTC) and written with
    milliseconds when they have a fraction of a second; strings must already be in that form.
    """
    if isinstance(value, datetime):
        if value != value:  # pandas NaT
            raise FeatureSpecError(f"{field_name} is missing (NaT)")
        try:
            moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        except OverflowError:  # the UTC instant falls before year 1 or after year 9999
            raise FeatureSpecError(
                f"{field_name} {value!r} is outside Feature Store's range once converted to UTC "
                "(0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z)"
            ) from None
        return _format_instant(moment)
    if isinstance(value, bool | int | float):
        raise FeatureSpecError(
            f"{field_name} {value!r} is a number; the feature group's event time is a String feature: "
            "give an ISO-8601 UTC string (YYYY-MM-DDTHH:MM:SS[.mmm]Z) or a datetime"
        )
    if not isinstance(value, str):
        raise FeatureSpecError(
            f"{field_name} {_shown(value)} ({type(value).__name__}) is neither a datetime nor an ISO-8601 string"
        )
    if not _EVENT_TIME.match(value):  # ASCII digits only: Python's \d also matches other scripts' digits
        raise FeatureSpecError(f"{field_name} {_shown(value)} is not ISO-8601 UTC (YYYY-MM-DDTHH:MM:SS[.mmm]Z)")
    try:  # the pattern fixed every field's position; the constructor checks the calendar (and year 0)
        datetime(
            int(value[0:4]), int(value[5:7]), int(value[8:10]), int(value[11:13]), int(value[14:16]), int(value[17:19])
        )
    except ValueError:
        raise FeatureSpecError(
            f"{field_name} {value!r} is not a real date and time between 0001-01-01T00:00:00Z and "
            "9999-12-31T23:59:59.999Z"
        ) from None
    return value


def canonical_event_time(value: str) -> str:
    """One spelling per instant (``...:00Z`` and ``...:00.000Z`` are the same event time): always millis."""
    return value if "." in value else f"{value[:-1]}.000Z"


def validate_record(spec: FeatureSpec, record: Mapping[str, Any], index: int | None = None) -> dict[str, Any]:
    """Check one feature record and return it normalised (event time as ISO-8601 UTC string, typed values).

    A record must have a non-empty string identifier, an event time (a datetime or an ISO-8601 UTC
    string) and every feature of the spec with a value of the feature's type, within Feature Store's
    limits (module docstring); it may not carry columns the feature group does not have. Strings are
    not parsed into numbers here: a record whose ``Integral`` feature is ``"3"`` is refused, since it
    signals an upstream type bug. Raises :class:`InvalidRecordError` naming the record (identifier or
    index) and the field.
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
            label, spec.record_identifier, f"record identifier must be a non-empty string, got {_shown(identifier)}"
        )
    size = _utf8_size(identifier)
    if size is None:
        raise InvalidRecordError(label, spec.record_identifier, "record identifier is not UTF-8 text")
    if size > MAX_IDENTIFIER_BYTES:
        raise InvalidRecordError(
            label,
            spec.record_identifier,
            f"record identifier is {size} bytes in UTF-8; Feature Store takes at most {MAX_IDENTIFIER_BYTES}",
        )
    if spec.event_time not in record or is_missing(record[spec.event_time]):
        raise InvalidRecordError(label, spec.event_time, "event time is missing")
    try:
        event_time = event_time_string(record[spec.event_time], field_name="event time")
    except FeatureSpecError as exc:
        raise InvalidRecordError(label, spec.event_time, str(exc)) from None
    names = spec.feature_names  # a property that builds a tuple: read it once
    known = {spec.record_identifier, spec.event_time, *names}
    unknown = sorted((key for key in record if key not in known), key=_field)  # keys of any type
    if unknown:
        shown = [_field(key) for key in unknown]
        raise InvalidRecordError(label, shown[0], f"not a feature of spec '{spec.name}' (unknown: {shown})")
    normalised: dict[str, Any] = {spec.record_identifier: identifier, spec.event_time: event_time}
    total = size + len(event_time)
    for name in names:
        if name not in record or is_missing(record[name]):
            raise InvalidRecordError(label, name, "value is missing")
        value = record[name]
        kind = spec.feature_type(name)
        if isinstance(value, str) and kind != "String":
            raise InvalidRecordError(label, name, f"is {kind}, got the string {_shown(value)}")
        try:
            normalised[name] = _coerce(spec, name, kind, value)
        except FeatureSpecError as exc:
            raise InvalidRecordError(label, name, str(exc)) from None
        # A number's string is at most 24 characters (repr of a double, str of an int64): count that much
        # and measure only strings, exactly, unless the bound says the record might be too large.
        total += (_utf8_size(normalised[name]) or 0) if kind == "String" else _MAX_NUMBER_CHARS
    if total > MAX_RECORD_BYTES:
        total = sum(len(item["ValueAsString"].encode("utf-8")) for item in to_put_record_payload(spec, normalised))
    if total > MAX_RECORD_BYTES:
        raise InvalidRecordError(
            label, "*", f"the record is {total} bytes in UTF-8; Feature Store takes at most {MAX_RECORD_BYTES}"
        )
    return normalised


def _coerce(spec: FeatureSpec, name: str, kind: str, value: Any) -> Any:
    """The spec's own conversion (shared with serving), then Feature Store's range and encoding rules."""
    try:
        number = coerce_value(spec, name, value)
    except OverflowError:  # float(2**1100)
        raise FeatureSpecError(f"feature '{name}' is {kind}; {_shown(value)} is out of a double's range") from None
    if kind == "Integral":
        if not isinstance(number, int) or not INTEGRAL_MIN <= number <= INTEGRAL_MAX:
            raise FeatureSpecError(
                f"feature '{name}' is Integral, a 64-bit signed integer; {_shown(value)} is out of its range"
            )
        return number
    if kind == "Fractional":
        exact = value.item() if hasattr(value, "item") and not isinstance(value, int | float) else value
        if isinstance(exact, int) and not isinstance(exact, bool) and int(float(number)) != exact:
            raise FeatureSpecError(
                f"feature '{name}' is Fractional, a double, which cannot hold the integer {_shown(value)} exactly"
            )
        return number
    size = _utf8_size(str(number))
    if size is None:
        raise FeatureSpecError(f"feature '{name}' is String, which must be UTF-8 text; {_shown(number)} is not")
    if size > MAX_VALUE_BYTES:
        raise FeatureSpecError(
            f"feature '{name}' is {size} bytes in UTF-8; Feature Store takes at most {MAX_VALUE_BYTES} per value"
        )
    return number


def _as_string(value: Any) -> str:
    """A validated value as ``ValueAsString``: floats with ``repr`` (the shortest exact form)."""
    return repr(value) if isinstance(value, float) else str(value)


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
        payload.append({"FeatureName": name, "ValueAsString": _as_string(record[name])})
    return payload
