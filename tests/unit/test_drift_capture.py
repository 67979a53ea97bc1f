"""The drift job's capture parser: which request mode a captured line is, and what it scored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops.features import get_spec
from mlops.monitoring.drift.capture import (
    BAD_FEATURES,
    ENTITY_WITHOUT_FEATURES,
    MalformedCaptureError,
    parse_capture_line,
)

SPEC = get_spec("customer-churn")
FEATURES = {"sessions": 4, "minutes_per_session": 12.5, "support_tickets": 1, "monthly_spend": 42.0, "plan_tier": 2}


def line(
    request: str,
    answer: str | None,
    *,
    content_type: str = "application/json",
    response_type: str = "application/json",
) -> str:
    capture: dict[str, Any] = {
        "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": request, "encoding": "JSON"}
    }
    if answer is not None:
        capture["endpointOutput"] = {
            "observedContentType": response_type,
            "mode": "OUTPUT",
            "data": answer,
            "encoding": "CSV" if response_type == "text/csv" else "JSON",
        }
    metadata = {"eventId": "e-1", "inferenceId": "i-1", "inferenceTime": "2024-05-01T12:00:00Z"}
    return json.dumps({"captureData": capture, "eventMetadata": metadata, "eventVersion": "0"})


def answer(count: int, **changes: Any) -> str:
    return json.dumps({"predictions": [0.25] * count, "features": [{**FEATURES, **changes}] * count})


def reason_of(captured_line: str) -> str:
    with pytest.raises(MalformedCaptureError) as caught:
        parse_capture_line(captured_line, SPEC)
    return caught.value.reason


def test_a_json_entity_request_takes_its_features_from_the_answer() -> None:
    captured = parse_capture_line(line('{"entityId": "c-1"}', answer(1)), SPEC)
    assert (captured.mode, captured.records, captured.predictions) == ("entity", [{"entityId": "c-1"}], [0.25])
    assert captured.features == [FEATURES]
    assert [list(f) for f in captured.features or []] == [list(SPEC.feature_names)]  # spec order
    assert captured.join_key == "i-1"


def test_a_batch_of_entities_with_overrides_is_an_entity_request() -> None:
    request = json.dumps({"instances": [{"entityId": "c-1"}, {"entityId": "c-2", "overrides": {"plan_tier": 2}}]})
    captured = parse_capture_line(line(request, answer(2)), SPEC)
    assert captured.mode == "entity" and captured.features == [FEATURES, FEATURES]


def test_csv_ids_answered_in_json_are_an_entity_request() -> None:
    captured = parse_capture_line(line("c-1\nc-2\n", answer(2), content_type="text/csv"), SPEC)
    assert (captured.mode, captured.records) == ("entity", [{"entityId": "c-1"}, {"entityId": "c-2"}])


@pytest.mark.parametrize("content_type", ["application/json", "text/csv"])
def test_an_entity_request_answered_in_csv_has_no_features(content_type: str) -> None:
    request = (
        '{"instances": [{"entityId": "c-1"}, {"entityId": "c-2"}]}' if content_type != "text/csv" else "c-1\nc-2\n"
    )
    assert reason_of(line(request, "0.25\n0.5\n", content_type=content_type, response_type="text/csv")) == (
        ENTITY_WITHOUT_FEATURES
    )


def test_an_entity_request_without_a_captured_answer_has_no_features() -> None:
    assert reason_of(line('{"entityId": "c-1"}', None)) == ENTITY_WITHOUT_FEATURES


def test_a_one_column_rows_request_is_not_taken_for_ids() -> None:
    # Header + one record, one answer: the header line gets no answer of its own, so these are raw records.
    captured = parse_capture_line(
        line("plan\nbasic\n", "0.25\n", content_type="text/csv", response_type="text/csv"), SPEC
    )
    assert (captured.mode, captured.records, captured.features) == ("rows", [{"plan": "basic"}], None)


def test_a_raw_record_beside_an_entity_id_is_read_as_a_raw_record() -> None:
    captured = parse_capture_line(line('{"entityId": "c-1", "plan": "basic"}', '{"predictions": [0.5]}'), SPEC)
    assert captured.mode == "rows" and captured.features is None


@pytest.mark.parametrize(
    "changes",
    [{"plan_tier": 1.5}, {"sessions": "4"}, {"monthly_spend": None}, {"support_tickets": True}, {"plan": 1}],
)
def test_features_that_do_not_match_the_spec_are_refused(changes: dict[str, Any]) -> None:
    assert reason_of(line('{"entityId": "c-1"}', answer(1, **changes))) == BAD_FEATURES


def test_a_feature_missing_from_the_answer_is_refused_naming_it() -> None:
    features = {k: v for k, v in FEATURES.items() if k != "plan_tier"}
    document = json.dumps({"predictions": [0.25], "features": [features]})
    with pytest.raises(MalformedCaptureError, match=r"missing \['plan_tier'\]"):
        parse_capture_line(line('{"entityId": "c-1"}', document), SPEC)
