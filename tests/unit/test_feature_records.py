"""Feature-record validation against Feature Store's types and limits (pure code, no AWS).

What a feature group accepts is AWS's "Quotas, naming rules and data types" page of the Feature Store
guide: Integral is a 64-bit signed integer, Fractional an IEEE 754 double, String UTF-8 (a value at most
350 KB, a record identifier at most 2 KB), and a String event time is ISO-8601 UTC
(``yyyy-MM-dd'T'HH:mm:ssZ`` or ``yyyy-MM-dd'T'HH:mm:ss.SSSZ``) within 0000-01-01 and 9999-12-31T23:59:59.999Z.
Values outside those are refused here, naming the record and the field, instead of failing one by one at
``PutRecord`` (or worse, being accepted by a fake and failing in production).

The property tests feed arbitrary mappings (and non-mappings) to ``validate_record``: each must either come
back valid, with a payload the online store would return as the same vector, or be refused with an
:class:`InvalidRecordError` naming the record and the field; never any other exception.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.features import get_spec
from mlops.features.spec import Feature, FeatureSpec, coerce_value
from mlops.featurestore import InvalidRecordError, to_put_record_payload, validate_record
from mlops.featurestore.records import (
    MAX_IDENTIFIER_BYTES,
    MAX_RECORD_BYTES,
    MAX_VALUE_BYTES,
    canonical_event_time,
)

CHURN = get_spec("customer-churn")  # Integral and Fractional features
TEXT = FeatureSpec(
    name="text-test",
    version=1,
    record_identifier="id",
    event_time="at",
    features=(Feature("label", "String"), Feature("count", "Integral"), Feature("score", "Fractional")),
    transform=lambda raw: dict(raw),
)
EVENT_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z\Z")
LOOSE_EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")  # any script's digits


def churn(**change: Any) -> dict[str, Any]:
    record = {
        "customer_id": "c-1",
        "event_time": "2024-05-01T00:00:00Z",
        "sessions": 3,
        "minutes_per_session": 1.5,
        "support_tickets": 0,
        "monthly_spend": 9.99,
        "plan_tier": 1,
    }
    return {**record, **change}


def text(**change: Any) -> dict[str, Any]:
    return {"id": "r-1", "at": "2024-05-01T00:00:00Z", "label": "ok", "count": 1, "score": 0.5, **change}


def refused(spec: FeatureSpec, record: Any, field: str) -> str:
    with pytest.raises(InvalidRecordError) as caught:
        validate_record(spec, record, 7)
    assert caught.value.field == field, str(caught.value)
    return str(caught.value)


# --- event time -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2024-02-30T00:00:00Z",  # no such day
        "2023-02-29T00:00:00Z",  # not a leap year
        "2024-13-01T00:00:00Z",
        "2024-00-10T00:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:60:00Z",
        "2024-05-01T23:59:60Z",  # a leap second: not in the yyyy-MM-dd'T'HH:mm:ss grammar's range
        "0000-01-01T00:00:00Z",  # inside AWS's range but not a date Python or the offline readers can hold
        "2024-05-01T00:00:00Z\n",  # `$` in a pattern lets a trailing newline through
        "\u0662\u0660\u0662\u0664-05-01T00:00:00Z",  # Arabic-Indic digits: `\d` matches them, AWS does not
        "2024-05-01T00:00:00.1234Z",
    ],
)
def test_impossible_event_times_are_refused(value: str) -> None:
    message = refused(CHURN, churn(event_time=value), "event_time")
    assert repr(value) in message and "record 'c-1' (#7)" in message


@pytest.mark.parametrize(
    "value",
    [
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),  # 04:00Z in the year 10000
        datetime(1, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=5))),  # 20:00Z on 31 December of year 0
    ],
)
def test_datetimes_whose_utc_instant_is_out_of_range_are_refused(value: datetime) -> None:
    refused(CHURN, churn(event_time=value), "event_time")


@pytest.mark.parametrize("value", [1714521600, 1714521600.5, True])
def test_numeric_event_times_are_refused_since_the_groups_event_time_is_a_string(value: object) -> None:
    assert "ISO-8601" in refused(CHURN, churn(event_time=value), "event_time")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        ("2024-02-29T12:00:00Z", "2024-02-29T12:00:00Z"),
        (datetime(2024, 5, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))), "2024-05-01T00:00:00Z"),
        (datetime(2024, 5, 1, 0, 0, 0, 123456), "2024-05-01T00:00:00.123Z"),
    ],
)
def test_real_event_times_within_the_range_are_accepted(value: object, expected: str) -> None:
    assert validate_record(CHURN, churn(event_time=value))["event_time"] == expected


def test_the_same_instant_written_two_ways_has_one_canonical_form() -> None:
    assert canonical_event_time("2024-05-01T00:00:00Z") == canonical_event_time("2024-05-01T00:00:00.000Z")
    assert canonical_event_time("2024-05-01T00:00:00Z") != canonical_event_time("2024-05-01T00:00:00.001Z")


# --- Integral: a 64-bit signed integer ----------------------------------------------------------


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**70, -(2**70), 1e19, np.uint64(2**64 - 1)])
def test_integers_outside_64_bits_are_refused(value: object) -> None:
    assert "64-bit" in refused(CHURN, churn(sessions=value), "sessions")


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), np.int64(-5), 7.0])
def test_integers_within_64_bits_are_accepted(value: Any) -> None:
    assert validate_record(CHURN, churn(sessions=value))["sessions"] == int(value)


# --- Fractional: an IEEE 754 double -------------------------------------------------------------


@pytest.mark.parametrize("value", [2**1100, -(2**1100)])
def test_integers_too_large_for_a_double_are_refused(value: int) -> None:
    refused(CHURN, churn(monthly_spend=value), "monthly_spend")


def test_integers_a_double_would_round_are_refused() -> None:
    assert "exactly" in refused(CHURN, churn(monthly_spend=2**53 + 1), "monthly_spend")
    assert validate_record(CHURN, churn(monthly_spend=2**53))["monthly_spend"] == float(2**53)


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinite_fractions_are_refused(value: float) -> None:
    refused(CHURN, churn(monthly_spend=value), "monthly_spend")


# --- String: UTF-8, size limits -----------------------------------------------------------------


def test_strings_that_are_not_unicode_text_are_refused() -> None:
    assert "UTF-8" in refused(TEXT, text(label="bad \ud800 half"), "label")


def test_a_string_value_over_the_size_limit_is_refused() -> None:
    refused(TEXT, text(label="é" * (MAX_VALUE_BYTES // 2 + 1)), "label")  # 2 bytes each in UTF-8
    assert validate_record(TEXT, text(label="x" * 1000))["label"] == "x" * 1000


def test_a_record_identifier_over_2_kb_is_refused() -> None:
    message = refused(TEXT, text(id="i" * (MAX_IDENTIFIER_BYTES + 1)), "id")
    assert len(message) < 500  # the label shows a prefix of the identifier, not all of it


def test_an_identifier_that_is_not_unicode_text_is_refused() -> None:
    refused(TEXT, text(id="\udfff"), "id")


def test_keys_that_are_not_strings_are_named_without_crashing() -> None:
    message = refused(CHURN, {**churn(), 1: "x", None: "y"}, "1")
    assert "not a feature" in message


def test_control_characters_in_an_identifier_do_not_reach_the_message_raw() -> None:
    message = refused(CHURN, churn(customer_id="c-1\nFAKE LOG LINE", sessions=None), "sessions")
    assert "\n" not in message


# --- properties ---------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=20),  # lone surrogates included
    st.binary(max_size=8),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.decimals(allow_nan=True),
    st.lists(st.integers(), max_size=3),
    st.sampled_from(["2024-05-01T00:00:00Z", "2024-02-30T00:00:00Z", "9999-12-31T23:59:59.999Z", "3", "1.5"]),
)


CHARACTERS = st.characters(exclude_categories=())  # every code point, lone surrogates included
ZONES = st.one_of(
    st.none(), st.timezones(), st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
)


def iso(moment: datetime, millis: bool) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{moment.microsecond // 1000:03d}" if millis else "") + "Z"


def typed(spec: FeatureSpec, name: str) -> st.SearchStrategy[Any]:
    """Values of the field's own kind, the whole range of it: the boundaries are where records break."""
    if name == spec.record_identifier:
        return st.text(CHARACTERS, min_size=1, max_size=12)
    if name == spec.event_time:
        return st.one_of(
            st.datetimes(timezones=ZONES),
            st.builds(iso, st.datetimes(), st.booleans()),
            st.from_regex(LOOSE_EVENT_TIME, fullmatch=True),  # often impossible (month 47), or not ASCII
        )
    kind = spec.feature_type(name)
    if kind == "Integral":
        return st.one_of(
            st.integers(),
            st.integers(-(2**63), 2**63 - 1),
            st.integers(-(2**63), 2**63 - 1).map(np.int64),
            st.floats(),
        )
    if kind == "Fractional":
        return st.one_of(st.floats(), st.integers(), st.floats(width=32).map(np.float32))
    return st.text(CHARACTERS, max_size=20)


def records_for(spec: FeatureSpec) -> st.SearchStrategy[Any]:
    """Mostly well-typed records with a field or two replaced, removed or added, and some non-mappings."""
    names = [spec.record_identifier, spec.event_time, *spec.feature_names]
    keys = st.one_of(st.sampled_from(names), st.text(CHARACTERS, max_size=5), st.integers(), st.none())

    def assemble(base: dict[Any, Any], changes: dict[Any, Any], removed: set[str]) -> dict[Any, Any]:
        return {k: v for k, v in {**base, **changes}.items() if k not in removed}

    typed_record = st.fixed_dictionaries({n: typed(spec, n) for n in names})
    return st.one_of(
        typed_record,
        st.builds(
            assemble,
            typed_record,
            st.dictionaries(keys, SCALARS, max_size=2),
            st.sets(st.sampled_from(names), max_size=1),
        ),
        SCALARS,  # not a mapping at all
    )


def check_outcome(spec: FeatureSpec, record: Any) -> None:
    """Either valid (and the payload reads back as the same values) or refused naming record and field."""
    try:
        normalised = validate_record(spec, record, 3)
    except InvalidRecordError as exc:
        assert (str(exc).startswith("record ") and "(#3)" in str(exc)) or str(exc).startswith("record #3")
        assert exc.field and f"field '{exc.field}'" in str(exc)
        return
    assert EVENT_TIME.match(normalised[spec.event_time])
    datetime.strptime(normalised[spec.event_time][:19], "%Y-%m-%dT%H:%M:%S")  # a real calendar instant
    for name in spec.feature_names:
        value = normalised[name]
        kind = spec.feature_type(name)
        if kind == "Integral":
            assert type(value) is int and -(2**63) <= value < 2**63
        elif kind == "Fractional":
            assert type(value) is float and math.isfinite(value)
        else:
            assert type(value) is str and len(value.encode("utf-8")) <= MAX_VALUE_BYTES
    # The online store answers with the payload's strings: they must read back as exactly these values,
    # which is what the serving path (coerce_value) will compute from them.
    payload = {item["FeatureName"]: item["ValueAsString"] for item in to_put_record_payload(spec, normalised)}
    assert {n: coerce_value(spec, n, payload[n]) for n in spec.feature_names} == {
        n: normalised[n] for n in spec.feature_names
    }


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=records_for(CHURN))
def test_any_churn_record_is_valid_or_refused_naming_record_and_field(record: Any) -> None:
    check_outcome(CHURN, record)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=records_for(TEXT))
def test_any_record_with_a_string_feature_is_valid_or_refused_naming_record_and_field(record: Any) -> None:
    check_outcome(TEXT, record)


@settings(max_examples=200, deadline=None)
@given(moment=st.datetimes(timezones=st.one_of(st.none(), st.timezones())))
def test_any_datetime_is_accepted_as_its_utc_instant_or_refused(moment: datetime) -> None:
    try:
        normalised = validate_record(CHURN, churn(event_time=moment))
    except InvalidRecordError as exc:
        assert exc.field == "event_time"
        return
    written = datetime.strptime(
        normalised["event_time"], "%Y-%m-%dT%H:%M:%S.%fZ" if "." in normalised["event_time"] else "%Y-%m-%dT%H:%M:%SZ"
    )
    instant = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    assert abs(written.replace(tzinfo=UTC) - instant) < timedelta(milliseconds=1)


def test_a_record_over_the_record_size_limit_is_refused_though_each_value_fits() -> None:
    wide = FeatureSpec(
        name="wide-test",
        version=1,
        record_identifier="id",
        event_time="at",
        features=(Feature("a", "String"), Feature("b", "String")),
        transform=lambda raw: dict(raw),
    )
    half = "x" * (MAX_VALUE_BYTES // 2 + 10)
    record = {"id": "r-1", "at": "2024-05-01T00:00:00Z", "a": half, "b": half}
    assert f"at most {MAX_RECORD_BYTES}" in refused(wide, record, "*")  # '*': the whole record, not one field
    assert validate_record(wide, {**record, "b": "short"})["b"] == "short"
