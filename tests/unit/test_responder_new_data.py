"""New-data retraining, the pure parts: reading the S3 events of an SQS batch, which objects are loads, how a
burst becomes one start request, and what that request asks SageMaker for."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.local import import_app
from mlops.ingestion import COMMITS_PREFIX as INGESTION_COMMITS_PREFIX
from tests.support.new_data_events import BUCKET, object_created, sqs_batch, sqs_record

retrain = import_app("retrain_on_alarm")

from responder_common.errors import ConfigurationError, MalformedEventError  # noqa: E402
from responder_common.events import Origin  # noqa: E402

T0 = datetime(2024, 5, 2, 3, 0, tzinfo=UTC)
PIPELINE = "acme-mlops-dev-customer-churn"
PREFIX = "customer_activity/"
DISPLAY_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$")  # SageMaker's PipelineExecutionDisplayName


def target(match: str = "commits", *, model: str = "customer-churn") -> Any:
    return retrain.NewDataTarget(
        model=model,
        pipeline_name=PIPELINE,
        bucket=BUCKET,
        table_prefix=PREFIX,
        match=match,
        cooldown_minutes=60,
        max_per_day=4,
    )


def obj(key: str, at: datetime = T0, **kwargs: Any) -> Any:
    return retrain.parse_object_created(sqs_record(object_created(key, at, **kwargs)))


def marker(batch: str) -> str:
    return f"_commits/{PREFIX}{batch}.json"


def loads_of(batch: Any, targets: dict[str, Any]) -> list[Any]:
    routed = []
    for record in batch["Records"]:
        decision = retrain.route_object(retrain.parse_object_created(record), targets)
        assert not isinstance(decision, retrain.Ignore), decision
        routed.extend(decision)
    return retrain.data_loads(routed)


# ------------------------------------------------------------------------------------------ settings
def test_the_commits_prefix_is_ingestions() -> None:
    assert retrain.COMMITS_PREFIX == INGESTION_COMMITS_PREFIX


def test_new_data_targets_are_read_from_the_environment() -> None:
    env = {
        "ALERTS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alerts",
        "STATE_TABLE": "state",
        "RETRAIN_TARGETS": "{}",
        "NEW_DATA_TARGETS": json.dumps(
            {
                "customer-churn": {
                    "pipelineName": PIPELINE,
                    "bucket": BUCKET,
                    "tablePrefix": PREFIX,
                    "match": "commits",
                    "cooldownMinutes": 60,
                    "maxPerDay": 4,
                }
            }
        ),
    }
    assert retrain.Settings.from_env(env).new_data == {"customer-churn": target()}


def test_without_new_data_targets_nothing_retrains_on_data() -> None:
    env = {"ALERTS_TOPIC_ARN": "arn", "STATE_TABLE": "state", "RETRAIN_TARGETS": "{}"}
    assert retrain.Settings.from_env(env).new_data == {}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("match", "files", r"match must be 'commits' or 'objects'"),
        ("tablePrefix", "_staging/customer_activity/", r"tablePrefix must end with '/' and not start with '_'"),
        ("tablePrefix", "customer_activity", r"tablePrefix must end with '/'"),
        ("maxPerDay", 0, r"maxPerDay must be an integer >= 1"),
    ],
)
def test_a_bad_new_data_target_is_refused_naming_the_field(field: str, value: Any, message: str) -> None:
    spec = {"pipelineName": PIPELINE, "bucket": BUCKET, "tablePrefix": PREFIX, "match": "commits",
            "cooldownMinutes": 60, "maxPerDay": 4, field: value}  # fmt: skip
    env = {
        "ALERTS_TOPIC_ARN": "a",
        "STATE_TABLE": "s",
        "RETRAIN_TARGETS": "{}",
        "NEW_DATA_TARGETS": json.dumps({"m": spec}),
    }
    with pytest.raises(ConfigurationError, match=r"NEW_DATA_TARGETS\['m'\]\." + message):
        retrain.Settings.from_env(env)


# ------------------------------------------------------------------------------------------ events
def test_an_sqs_batch_is_told_from_sns_and_eventbridge_events() -> None:
    assert retrain.is_sqs_batch(sqs_batch(object_created(marker("b"), T0)))
    assert not retrain.is_sqs_batch({"Records": [{"EventSource": "aws:sns"}]})
    assert not retrain.is_sqs_batch({"detail-type": "Object Created"})
    assert not retrain.is_sqs_batch({"Records": []})


def test_the_documented_s3_event_is_parsed() -> None:
    parsed = obj(marker("load-1"), sequencer="00617F08299329D189")
    assert (parsed.bucket, parsed.key, parsed.sequencer) == (BUCKET, marker("load-1"), "00617F08299329D189")
    assert parsed.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert parsed.created_at == T0
    assert parsed.origin == ("123456789012", "eu-west-1")


def test_a_body_that_is_not_json_is_malformed() -> None:
    with pytest.raises(MalformedEventError, match=r"^Records\[\]\.body of message m-1 is not JSON"):
        retrain.parse_object_created(sqs_record("{nope", message_id="m-1"))


def test_an_event_without_an_object_key_is_malformed() -> None:
    event = object_created(marker("b"), T0)
    del event["detail"]["object"]["key"]
    with pytest.raises(MalformedEventError, match=r"body\.detail\.object\.key must be a non-empty string"):
        retrain.parse_object_created(sqs_record(event))


def test_an_object_deleted_event_is_malformed() -> None:
    event = object_created(marker("b"), T0)
    event["detail-type"] = "Object Deleted"
    with pytest.raises(MalformedEventError, match="detail-type must be 'Object Created'"):
        retrain.parse_object_created(sqs_record(event))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(["version", "id", "source", "detail-type", "time", "account", "region", "detail",
                              "detail.bucket", "detail.bucket.name", "detail.object", "detail.object.key",
                              "detail.object.sequencer", "detail.object.version-id"]), value=JSON)  # fmt: skip
def test_any_field_of_the_event_replaced_by_any_json_parses_or_is_malformed(path: str, value: Any) -> None:
    event = object_created(marker("b"), T0)
    *parents, leaf = path.split(".")
    node = event
    for part in parents:
        node = node[part]
    node[leaf] = value
    with contextlib.suppress(MalformedEventError):
        retrain.parse_object_created(sqs_record(event))


# ------------------------------------------------------------------------------------------ which objects are loads
def test_a_commit_marker_is_the_load_of_its_batch() -> None:
    assert retrain.load_of(target(), obj(marker("load-2024-05-02"))) == "load-2024-05-02"


@pytest.mark.parametrize(
    "key",
    [f"_commits/{PREFIX}dt=2024-05-02/b.json", f"_commits/{PREFIX}b.txt", f"_commits/{PREFIX}.json"],
)
def test_anything_else_under_the_markers_folder_is_no_load(key: str) -> None:
    assert retrain.load_of(target(), obj(key)) is None


def test_an_ingested_file_is_the_load_of_its_batch() -> None:
    key = f"{PREFIX}dt=2024-05-02/load-2024-05-02-00003.snappy.parquet"
    assert retrain.load_of(target("objects"), obj(key)) == "load-2024-05-02"


def test_a_foreign_file_is_a_load_of_its_own_version() -> None:
    key = f"{PREFIX}dt=2024-05-02/part-00000-1b2c.c000.snappy.parquet"
    assert retrain.load_of(target("objects"), obj(key)) == "dt=2024-05-02/part-00000-1b2c.c000.snappy.parquet@" + (
        "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    )


@pytest.mark.parametrize(
    "key", [f"{PREFIX}_SUCCESS", f"{PREFIX}_temporary/0/part-1.parquet", f"{PREFIX}dt=1/.part-1.crc", f"{PREFIX}dt=1/"]
)
def test_hidden_files_and_folder_objects_are_no_load(key: str) -> None:
    assert retrain.load_of(target("objects"), obj(key)) is None


def test_a_staged_file_is_in_no_models_table() -> None:
    decision = retrain.route_object(obj(f"_staging/{PREFIX}b/attempt/dt=1/x.snappy.parquet"), {"m": target("objects")})
    assert isinstance(decision, retrain.Ignore) and decision.outcome is retrain.Outcome.UNKNOWN_DATA


def test_an_object_of_another_bucket_is_in_no_models_table() -> None:
    decision = retrain.route_object(obj(marker("b"), bucket="someone-else"), {"m": target()})
    assert isinstance(decision, retrain.Ignore) and decision.outcome is retrain.Outcome.UNKNOWN_DATA


def test_an_object_of_another_account_is_ignored() -> None:
    origin = Origin("210987654321", "eu-west-1")
    decision = retrain.route_object(obj(marker("b")), {"m": target()}, origin)
    assert isinstance(decision, retrain.Ignore) and decision.outcome is retrain.Outcome.FOREIGN


def test_a_table_feeding_two_models_retrains_both() -> None:
    targets = {"a": target(model="a"), "b": target(model="b")}
    routed = retrain.route_object(obj(marker("load-1")), targets)
    assert not isinstance(routed, retrain.Ignore)
    assert [(r.target.model, r.load) for r in routed] == [("a", "load-1"), ("b", "load-1")]


# ------------------------------------------------------------------------------------------ debounce
def test_many_files_of_one_load_make_one_request_answering_for_every_message() -> None:
    keys = [f"{PREFIX}dt=2024-05-0{d}/load-7-{n:05d}.snappy.parquet" for d in (1, 2) for n in range(50)]
    batch = sqs_batch(*(object_created(k, T0 + timedelta(milliseconds=i)) for i, k in enumerate(keys)))
    (load,) = loads_of(batch, {"customer-churn": target("objects")})
    assert (load.load, load.loads) == ("load-7", ("load-7",))
    assert set(load.message_ids) == {r["messageId"] for r in batch["Records"]}


def test_several_loads_in_one_batch_make_one_request_for_the_newest() -> None:
    batch = sqs_batch(object_created(marker("load-1"), T0), object_created(marker("load-2"), T0 + timedelta(minutes=1)))
    (load,) = loads_of(batch, {"customer-churn": target()})
    assert (load.load, load.loads) == ("load-2", ("load-1", "load-2"))


@settings(max_examples=50, deadline=None)
@given(st.permutations(list(range(6))))
def test_the_request_does_not_depend_on_the_order_of_the_batch(order: list[int]) -> None:
    events = [object_created(marker(f"load-{i % 3}"), T0 + timedelta(seconds=i % 3)) for i in range(6)]
    (load,) = loads_of(sqs_batch(*(events[i] for i in order)), {"customer-churn": target()})
    assert (load.load, load.loads) == ("load-2", ("load-0", "load-1", "load-2"))


# ------------------------------------------------------------------------------------------ the request
def test_the_request_is_identified_by_model_and_load_only() -> None:
    first = retrain.data_request(loads_of(sqs_batch(object_created(marker("load-1"), T0)), {"m": target()})[0])
    again = retrain.data_request(
        loads_of(sqs_batch(object_created(marker("load-1"), T0 + timedelta(hours=1))), {"m": target()})[0]
    )
    assert (first.kind, first.key, first.token) == (
        "newdata",
        {"model": "customer-churn", "load": "load-1"},
        again.token,
    )
    assert 32 <= len(first.token) <= 128


@settings(max_examples=100, deadline=None)
@given(batch=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", fullmatch=True))
def test_display_name_and_token_meet_sagemakers_limits_for_any_batch_id(batch: str) -> None:
    request = retrain.data_request(loads_of(sqs_batch(object_created(marker(batch), T0)), {"m": target()})[0])
    assert DISPLAY_NAME.match(request.display_name), request.display_name
    assert 32 <= len(request.token) <= 128 and len(request.description) <= 3072


def test_the_pipeline_gets_the_whole_table_and_the_batch_id() -> None:
    (load,) = loads_of(sqs_batch(object_created(marker("load-1"), T0)), {"m": target()})
    assert retrain.data_parameters({"InputDataUri", "DataVersion", "CodeVersion"}, load) == [
        {"Name": "DataVersion", "Value": "load-1"},
        {"Name": "InputDataUri", "Value": f"s3://{BUCKET}/{PREFIX}"},
    ]


def test_parameters_the_pipeline_does_not_define_are_not_passed() -> None:
    (load,) = loads_of(sqs_batch(object_created(marker("load-1"), T0)), {"m": target()})
    assert retrain.data_parameters({"CodeVersion"}, load) == []


def test_an_url_encoded_key_is_decoded_as_s3_encodes_it() -> None:
    event = object_created(f"{PREFIX}dt%3D2024-05-02/load-7-00000.snappy.parquet", T0)
    parsed = retrain.parse_object_created(sqs_record(event))
    assert parsed.key == f"{PREFIX}dt=2024-05-02/load-7-00000.snappy.parquet"
    assert retrain.load_of(target("objects"), parsed) == "load-7"


def test_the_request_is_within_start_pipeline_executions_api_model() -> None:
    """StartPipelineExecution's limits, from botocore's model of the SageMaker API (what AWS validates)."""
    import botocore.session

    operation = botocore.session.get_session().get_service_model("sagemaker").operation_model("StartPipelineExecution")
    shapes = cast(Any, operation.input_shape).members  # botocore's shapes are untyped
    batch = "b" * 128  # the longest batch id ingestion accepts
    (load,) = loads_of(sqs_batch(object_created(marker(batch), T0)), {"m": target()})
    request = retrain.data_request(load)
    for name, value in (("ClientRequestToken", request.token), ("PipelineExecutionDisplayName", request.display_name),
                        ("PipelineExecutionDescription", request.description)):  # fmt: skip
        meta = shapes[name].metadata
        assert meta["min"] <= len(value) <= meta["max"], name
        assert re.fullmatch(meta.get("pattern", ".*"), value), name
    value_limit = shapes["PipelineParameters"].member.members["Value"].metadata["max"]
    assert all(len(p["Value"]) <= value_limit for p in retrain.data_parameters({"InputDataUri", "DataVersion"}, load))
