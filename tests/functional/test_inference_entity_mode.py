"""The inference server in entity request mode, against a local Feature Store runtime over HTTP.

The server runs as a process (as on an endpoint) with its own botocore client, pointed at
:class:`tests.support.featurestore_http.FeatureStoreHttp` (the in-memory fake of ``tests/support/featurestore_fake.py``
behind the runtime's rest-json API) by ``AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME``, the variable botocore
reads for this service. Records are written with the exact ``PutRecord`` payload the ingestion path sends.

Also here: the parity of the online vector with the training set's vector for the same entity and event time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from containers.inference.inference_server.payload import Featurizer
from mlops.features import get_spec
from mlops.features.spec import feature_record, frame_to_vectors, transform_frame
from mlops.featurestore.online import OnlineStoreError, get_online_vector, online_client
from mlops.featurestore.records import to_put_record_payload
from mlops.monitoring.drift.capture import parse_capture_line
from pipelines.local_run import synthetic_customer_activity
from tests.functional.test_inference_server import (
    Reply,
    Server,
    call,
    invoke,
    log_size,
    main_in_process,
    offline_vectors,
    raw_records,
    running_server,
    server_command,
    server_env,
    wait_for_log_line,
    write_artifact,
)
from tests.support.featurestore_fake import FeatureStoreFake
from tests.support.featurestore_http import FeatureStoreHttp

SPEC = get_spec("customer-churn")
GROUP = "acme-mlops-dev-customer-churn-v1"
REGION = "eu-west-1"
SLACK = 3.0  # seconds a busy 2-core machine may add to a deadline
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
RECORDS = raw_records(12, seed=31)
# The cached server's entry lifetime: test_a_cache_entry_expires_after_its_ttl waits it out (plus a margin), and the
# cache tests that expect hits make their few requests well within it, even on a busy machine.
CACHE_TTL = 1.0


def put(client: Any, record: dict[str, object]) -> None:
    """Write one raw record's feature record with the ingestion path's exact PutRecord payload."""
    payload = to_put_record_payload(SPEC, feature_record(SPEC, record))
    client.put_record(FeatureGroupName=GROUP, Record=payload, TargetStores=["OnlineStore"])


@pytest.fixture(scope="module")
def store() -> Iterator[FeatureStoreHttp]:
    fake = FeatureStoreFake()
    fake.add_spec_group(GROUP, SPEC, offline=False)
    with FeatureStoreHttp(fake) as http:
        yield http


@pytest.fixture(scope="module")
def client(store: FeatureStoreHttp) -> Any:
    """A botocore client of the local store, made the way the server makes its own."""
    for key, value in CREDENTIALS.items():
        os.environ.setdefault(key, value)
    return online_client(region_name=REGION, timeout_seconds=2, max_attempts=1, endpoint_url=store.url)


@pytest.fixture(scope="module")
def written(client: Any) -> list[dict[str, object]]:
    for record in RECORDS:
        put(client, record)
    return RECORDS


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LogisticRegression]:
    directory = tmp_path_factory.mktemp("model")
    return directory, write_artifact(directory)


def entity_env(store: FeatureStoreHttp, **settings: str) -> dict[str, str]:
    return {
        **CREDENTIALS,
        "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": store.url,
        "INFERENCE_REQUEST_MODE": "entity",
        "INFERENCE_FEATURE_GROUP": GROUP,
        "INFERENCE_ONLINE_REGION": REGION,
        **settings,
    }


@pytest.fixture(scope="module")
def server(
    artifact: tuple[Path, LogisticRegression], store: FeatureStoreHttp, written: list[Any], tmp_path_factory: Any
) -> Iterator[Server]:
    """Entity mode, no cache, a generous budget (so a retried error is answered as the error, not a timeout)."""
    env = entity_env(store, INFERENCE_ONLINE_TIMEOUT_MS="5000", INFERENCE_ONLINE_MAX_ATTEMPTS="2")
    with running_server(artifact[0], tmp_path_factory.mktemp("logs") / "entity.log", env=env) as started:
        yield started


def score(server: Server, document: Any) -> Reply:
    return invoke(server, json.dumps(document).encode(), "application/json")


def expected(model: LogisticRegression, records: list[dict[str, object]]) -> np.ndarray:
    return model.predict_proba(offline_vectors(records))[:, 1]


def log_entries(server: Server, mark: int, until: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The server's JSON log lines, once one written after byte ``mark`` satisfies ``until`` (a line may trail the
    answer: polled, not a fixed pause; see ``wait_for_log_line``)."""
    wait_for_log_line(server, mark, until)
    return [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]


# --- scoring by entity id ------------------------------------------------------------------------------


def test_scoring_an_entity_id_equals_scoring_its_raw_record(server: Server, artifact: Any) -> None:
    reply = score(server, {"entityId": RECORDS[0]["customer_id"]})
    assert reply.status == 200, reply.body
    np.testing.assert_allclose(reply.json()["predictions"], expected(artifact[1], RECORDS[:1]), rtol=1e-12, atol=0)


def test_a_batch_of_entity_ids_is_scored_in_order(server: Server, artifact: Any) -> None:
    ids = [r["customer_id"] for r in reversed(RECORDS)]
    reply = score(server, {"instances": [{"entityId": i} for i in ids]})
    assert reply.status == 200, reply.body
    np.testing.assert_allclose(reply.json()["predictions"], expected(artifact[1], RECORDS[::-1]), rtol=1e-12)


def test_csv_takes_one_entity_id_per_line_and_answers_like_json(server: Server, artifact: Any) -> None:
    body = "".join(f"{r['customer_id']}\n" for r in RECORDS[:3]).encode()
    reply = invoke(server, body, "text/csv", "text/csv")
    assert (reply.status, reply.content_type) == (200, "text/csv"), reply.body
    got = [float(line) for line in reply.body.decode().splitlines()]
    np.testing.assert_allclose(got, expected(artifact[1], RECORDS[:3]), rtol=1e-12)


def test_overrides_replace_individual_features(server: Server, artifact: Any) -> None:
    record = RECORDS[1]
    reply = score(server, {"entityId": record["customer_id"], "overrides": {"plan_tier": 2, "support_tickets": 5}})
    assert reply.status == 200, reply.body
    vector = offline_vectors([record])[0]
    names = list(SPEC.feature_names)
    vector[names.index("plan_tier")], vector[names.index("support_tickets")] = 2, 5
    want = artifact[1].predict_proba(vector.reshape(1, -1))[:, 1]
    np.testing.assert_allclose(reply.json()["predictions"], want, rtol=1e-12)
    assert reply.json()["predictions"] != pytest.approx(expected(artifact[1], [record]).tolist())


# --- the scored features in the answer (what the drift job reads from the capture) ------------------------


def features_of(vectors: np.ndarray) -> list[dict[str, float]]:
    return [dict(zip(SPEC.feature_names, map(float, vector), strict=True)) for vector in vectors]


def test_a_json_answer_carries_the_scored_features_in_spec_order(server: Server) -> None:
    ids = [r["customer_id"] for r in RECORDS[:4]]
    reply = score(server, {"instances": [{"entityId": i} for i in ids]})
    assert reply.status == 200, reply.body
    answer = reply.json()
    assert list(answer) == ["predictions", "features"]
    assert [list(f) for f in answer["features"]] == [list(SPEC.feature_names)] * 4
    assert answer["features"] == features_of(offline_vectors(RECORDS[:4]))  # the training set's vectors


def test_the_answers_features_are_the_vector_after_overrides(server: Server, artifact: Any) -> None:
    record = RECORDS[2]
    reply = score(server, {"entityId": record["customer_id"], "overrides": {"plan_tier": 2, "support_tickets": 5}})
    assert reply.status == 200, reply.body
    vector = offline_vectors([record])[0]
    names = list(SPEC.feature_names)
    vector[names.index("plan_tier")], vector[names.index("support_tickets")] = 2, 5
    (features,) = reply.json()["features"]
    assert features == features_of(vector.reshape(1, -1))[0]
    # They are what the model scored: predicting them gives the answer's prediction.
    scored = artifact[1].predict_proba(np.array([list(features.values())]))[:, 1]
    np.testing.assert_allclose(reply.json()["predictions"], scored, rtol=1e-12)
    assert isinstance(features["plan_tier"], int) and isinstance(features["monthly_spend"], float)


def test_a_csv_answer_stays_predictions_only(server: Server) -> None:
    # CSV has no room for the features: one probability per line, as before (the drift job counts such requests).
    document = {"instances": [{"entityId": r["customer_id"]} for r in RECORDS[:2]]}
    reply = invoke(server, json.dumps(document).encode(), "application/json", "text/csv")
    assert (reply.status, reply.content_type) == (200, "text/csv"), reply.body
    lines = reply.body.decode().splitlines()
    assert [float(line) for line in lines] == score(server, document).json()["predictions"]


def test_the_capture_of_an_answer_gives_the_drift_job_the_scored_features(server: Server) -> None:
    # The request and answer bodies as SageMaker's data capture stores them; the drift job's parser reads them.
    request = json.dumps({"instances": [{"entityId": r["customer_id"]} for r in RECORDS[:3]]})
    reply = invoke(server, request.encode(), "application/json")
    line = json.dumps(
        {
            "captureData": {
                "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": request,
                                  "encoding": "JSON"},
                "endpointOutput": {"observedContentType": reply.content_type, "mode": "OUTPUT",
                                   "data": reply.body.decode(), "encoding": "JSON"},
            },
            "eventMetadata": {"eventId": "e-1", "inferenceId": "i-1", "inferenceTime": "2024-05-01T12:00:00Z"},
            "eventVersion": "0",
        }
    )  # fmt: skip
    captured = parse_capture_line(line, SPEC)
    assert captured.mode == "entity" and captured.response_problem is None
    assert captured.features == features_of(offline_vectors(RECORDS[:3]))
    assert captured.predictions == reply.json()["predictions"]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"plan": "premium"}, "override 'plan' is not a feature"),  # a raw column, not a feature
        ({"plan_tier": "2"}, "override 'plan_tier' is Integral: send a JSON number, got str"),
        ({"plan_tier": True}, "override 'plan_tier' is Integral: send a JSON number, got a boolean"),
        ({"plan_tier": 1.5}, "override 'plan_tier'"),
        ({"monthly_spend": None}, "override 'monthly_spend' is Fractional: send a JSON number, got null"),
    ],
)
def test_a_wrong_override_is_refused_naming_it(server: Server, overrides: dict[str, Any], named: str) -> None:
    reply = score(server, {"entityId": RECORDS[0]["customer_id"], "overrides": overrides})
    assert reply.status == 400
    assert named in reply.json()["message"]


def test_a_missing_entity_is_404_naming_the_entity_and_the_feature_group(server: Server) -> None:
    mark = log_size(server)
    reply = score(server, {"instances": [{"entityId": RECORDS[0]["customer_id"]}, {"entityId": "c-nobody"}]})
    assert reply.status == 404
    message = reply.json()["message"]
    assert "'c-nobody'" in message and f"'{GROUP}'" in message
    entries = log_entries(server, mark, lambda e: e.get("error") == "entity_not_found")
    entry = [e for e in entries if e.get("message") == "request"][-1]
    assert (entry["status"], entry["error"]) == (404, "entity_not_found")
    assert "c-nobody" not in server.log_path.read_text()  # ids are payload: never logged


@pytest.mark.parametrize(
    "document",
    [
        {key: value for key, value in RECORDS[0].items() if key != "customer_id"},  # a raw record
        {"entityId": 17},
        {"entityId": ""},
        {"instances": []},
        {"entityId": "c-1", "overrides": [1, 2]},
    ],
)
def test_requests_that_are_not_entity_requests_are_refused(server: Server, document: Any) -> None:
    reply = score(server, document)
    assert reply.status == 400, reply.body


def test_a_csv_line_with_several_fields_is_refused(server: Server) -> None:
    reply = invoke(server, b"customer_id,sessions\nc-1,3\n", "text/csv")
    assert reply.status == 400
    assert "one entity id per line" in reply.json()["message"]


# --- the store failing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "attempts"),
    [
        ("ThrottlingException", 503, 2),  # retried (standard mode) up to maxAttempts, then answered
        ("ServiceUnavailable", 503, 2),
        ("AccessForbidden", 502, 1),  # not retryable
    ],
)
def test_a_store_error_is_a_5xx_with_the_reason_logged(
    server: Server, store: FeatureStoreHttp, code: str, status: int, attempts: int
) -> None:
    entity = str(RECORDS[2]["customer_id"])
    store.store.fail_next("GetRecord", code, times=2, message=f"injected {code}")
    before, mark = store.get_counts[entity], log_size(server)
    try:
        reply = score(server, {"entityId": entity})
    finally:
        with store.store._lock:
            store.store._faults.pop("GetRecord", None)
    assert reply.status == status, reply.body
    assert code in reply.json()["message"] and GROUP in reply.json()["message"]
    assert store.get_counts[entity] - before == attempts  # bounded attempts
    entries = log_entries(server, mark, lambda e: e.get("aws_error_code") == code)
    failure = [e for e in entries if e.get("message") == "online lookup failed"][-1]
    assert failure["aws_error_code"] == code
    assert failure["reason"] == f"injected {code}"
    assert failure["feature_group"] == GROUP
    assert failure["level"] == "WARNING"


def test_an_unknown_feature_group_is_a_502(
    artifact: tuple[Path, LogisticRegression], store: FeatureStoreHttp, written: list[Any], tmp_path: Path
) -> None:
    env = entity_env(store, INFERENCE_FEATURE_GROUP="acme-mlops-dev-nothing-v1")
    with running_server(artifact[0], tmp_path / "server.log", env=env) as other:
        reply = score(other, {"entityId": RECORDS[0]["customer_id"]})
    assert reply.status == 502
    assert "ResourceNotFound" in reply.json()["message"]


# --- a slow store: the wait is bounded by the configured timeout --------------------------------------------


def test_a_slow_store_is_answered_504_within_the_configured_timeout(
    artifact: tuple[Path, LogisticRegression], store: FeatureStoreHttp, written: list[Any], tmp_path: Path
) -> None:
    env = entity_env(store, INFERENCE_ONLINE_TIMEOUT_MS="300", INFERENCE_ONLINE_MAX_ATTEMPTS="3")
    with running_server(artifact[0], tmp_path / "server.log", env=env) as slow:
        store.delay_seconds = 2.0  # per attempt: each attempt's read times out, and so does the whole lookup
        try:
            started = time.monotonic()
            reply = score(slow, {"entityId": RECORDS[0]["customer_id"]})
            waited = time.monotonic() - started
        finally:
            store.delay_seconds = 0.0
        assert reply.status == 504, reply.body
        assert "300 ms" in reply.json()["message"]
        assert waited < 0.3 + SLACK
        # Still serving once the store is back.
        assert score(slow, {"entityId": RECORDS[0]["customer_id"]}).status == 200


# --- the cache ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cached(
    artifact: tuple[Path, LogisticRegression], store: FeatureStoreHttp, written: list[Any], tmp_path_factory: Any
) -> Iterator[Server]:
    env = entity_env(store, INFERENCE_ONLINE_CACHE_TTL_SECONDS=str(CACHE_TTL), INFERENCE_ONLINE_CACHE_MAX_ENTRIES="2")
    with running_server(artifact[0], tmp_path_factory.mktemp("logs") / "cached.log", env=env) as started:
        yield started


def test_a_cache_hit_makes_no_second_lookup(cached: Server, store: FeatureStoreHttp) -> None:
    entity = str(RECORDS[3]["customer_id"])
    before = store.get_counts[entity]
    first, second = (score(cached, {"entityId": entity}) for _ in range(2))
    assert first.status == second.status == 200
    assert first.json() == second.json()
    assert store.get_counts[entity] - before == 1


def test_a_cache_entry_expires_after_its_ttl(cached: Server, store: FeatureStoreHttp) -> None:
    entity = str(RECORDS[4]["customer_id"])
    before = store.get_counts[entity]
    assert score(cached, {"entityId": entity}).status == 200
    time.sleep(CACHE_TTL + 0.2)
    assert score(cached, {"entityId": entity}).status == 200
    assert store.get_counts[entity] - before == 2


def test_the_cache_is_bounded_least_recently_used_first(cached: Server, store: FeatureStoreHttp) -> None:
    a, b, c = (str(RECORDS[i]["customer_id"]) for i in (5, 6, 7))
    before = {i: store.get_counts[i] for i in (a, b, c)}
    for entity in (a, b, a, c, a, b):  # max 2 entries: c evicts b (a was used later), then b evicts c
        assert score(cached, {"entityId": entity}).status == 200
    assert {i: store.get_counts[i] - before[i] for i in (a, b, c)} == {a: 1, b: 2, c: 1}


def test_a_cached_vector_still_takes_the_requests_overrides(cached: Server, artifact: Any) -> None:
    record = RECORDS[8]
    plain = score(cached, {"entityId": record["customer_id"]}).json()["predictions"]
    changed = score(cached, {"entityId": record["customer_id"], "overrides": {"support_tickets": 9}})
    assert changed.status == 200
    assert changed.json()["predictions"] != plain
    np.testing.assert_allclose(plain, expected(artifact[1], [record]), rtol=1e-12)


# --- start-up ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"INFERENCE_FEATURE_GROUP": ""}, "INFERENCE_FEATURE_GROUP"),
        ({"INFERENCE_ONLINE_TIMEOUT_MS": "0"}, "INFERENCE_ONLINE_TIMEOUT_MS"),
        ({"INFERENCE_ONLINE_TIMEOUT_MS": "fast"}, "INFERENCE_ONLINE_TIMEOUT_MS"),
        ({"INFERENCE_ONLINE_CACHE_MAX_ENTRIES": "-1"}, "INFERENCE_ONLINE_CACHE_MAX_ENTRIES"),
        ({"INFERENCE_REQUEST_MODE": "entities"}, "INFERENCE_REQUEST_MODE"),
        ({"INFERENCE_ONLINE_REGION": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": ""}, "INFERENCE_ONLINE_REGION"),
    ],
)
def test_bad_entity_settings_stop_the_server_at_start_naming_the_variable(
    artifact: tuple[Path, LogisticRegression],
    store: FeatureStoreHttp,
    settings: dict[str, str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = server_command(artifact[0], 1)[3:]
    status, stderr = main_in_process(argv, entity_env(store, **settings), monkeypatch, capsys)
    assert status == 3, stderr
    assert named in stderr and "cannot start" in stderr


def test_bad_entity_settings_stop_the_server_process_with_status_3(
    artifact: tuple[Path, LogisticRegression], store: FeatureStoreHttp
) -> None:
    """One case through a real ``python -m inference_server`` process, as SageMaker starts it."""
    env = server_env(**entity_env(store, INFERENCE_ONLINE_TIMEOUT_MS="fast"))
    done = subprocess.run(
        server_command(artifact[0], 1), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 3, done.stderr
    assert "INFERENCE_ONLINE_TIMEOUT_MS" in done.stderr and "cannot start" in done.stderr


def test_the_server_reads_the_region_sagemaker_sets_when_its_own_is_unset(
    artifact: tuple[Path, LogisticRegression], store: FeatureStoreHttp, written: list[Any], tmp_path: Path
) -> None:
    env = {**entity_env(store), "INFERENCE_ONLINE_REGION": "", "AWS_REGION": REGION}
    with running_server(artifact[0], tmp_path / "server.log", env=env) as started:
        assert score(started, {"entityId": RECORDS[0]["customer_id"]}).status == 200
        assert call(started, "GET", "/ping").status == 200


def test_worker_processes_get_the_entity_settings(
    artifact: tuple[Path, LogisticRegression], store: FeatureStoreHttp, written: list[Any], tmp_path: Path
) -> None:
    # With several workers the launcher hands the settings to spawned processes through the environment.
    with running_server(artifact[0], tmp_path / "server.log", workers=2, env=entity_env(store)) as started:
        replies = [score(started, {"entityId": RECORDS[i]["customer_id"]}) for i in range(4)]
    assert [r.status for r in replies] == [200] * 4


def test_the_image_layout_imports_the_lookup_without_boto3(tmp_path: Path) -> None:
    # The image pins botocore, not boto3, and copies two files of mlops/featurestore without its __init__.py.
    from tests.functional.test_inference_container import image_environment, stage_image

    stage_image(tmp_path)
    env, cwd = image_environment(tmp_path)
    code = (
        "import sys, inference_server.app, mlops.featurestore.online as online; "
        "print(online.__file__, 'boto3' in sys.modules, 'mlops.featurestore.ingest' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    path, boto3_loaded, ingest_loaded = done.stdout.split()
    assert path.startswith(str(tmp_path)) and (boto3_loaded, ingest_loaded) == ("False", "False")


# --- parity: the online vector is the training set's vector ------------------------------------------------


def test_online_vectors_equal_the_training_sets_vectors_for_each_entity_and_time(client: Any) -> None:
    """Raw rows → PutRecord (ingestion's exact payload) → GetRecord, against the training path's vectors.

    Several days per customer: the online store keeps each customer's latest event time (the fake applies
    PutRecord's rule), which is the training-set row of that customer at that time.
    """
    raw = synthetic_customer_activity(customers=40, days=3, seed=11)
    raw.loc[raw.index[::7], "plan"] = None  # missing values go through the spec's own rule (unknown tier)
    raw = raw.sample(frac=1.0, random_state=3)  # written out of order: PutRecord keeps the latest event time
    for row in raw.to_dict("records"):
        put(client, {**row, "customer_id": f"parity-{row['customer_id']}"})
    frame = transform_frame(SPEC, raw)
    latest = frame.sort_values(SPEC.event_time).groupby(SPEC.record_identifier, sort=False).tail(1)
    offline = dict(zip(latest[SPEC.record_identifier], frame_to_vectors(SPEC, latest), strict=True))
    assert len(offline) == 40
    for entity, vector in offline.items():
        online = get_online_vector(client, GROUP, SPEC, f"parity-{entity}")
        assert online == vector, entity
        assert [type(v) for v in online] == [type(v) for v in vector], entity  # Integral stays int


def test_the_online_vector_is_what_the_rows_mode_featurizer_computes(client: Any) -> None:
    # The same raw record, as a caller would send it in rows mode, gives the vector the store returns.
    record = {**RECORDS[9], "customer_id": "rows-parity"}
    put(client, record)
    rows = Featurizer(SPEC)([{k: v for k, v in record.items() if k not in ("customer_id", "event_time")}])
    assert [float(v) for v in get_online_vector(client, GROUP, SPEC, "rows-parity")] == rows[0].tolist()


def test_a_record_the_spec_cannot_read_is_a_bad_record_error(client: Any) -> None:
    client.put_record(
        FeatureGroupName=GROUP,
        Record=[
            {"FeatureName": "customer_id", "ValueAsString": "broken"},
            {"FeatureName": "event_time", "ValueAsString": "2024-05-01T00:00:00Z"},
            {"FeatureName": "sessions", "ValueAsString": "three"},
        ],
    )
    with pytest.raises(OnlineStoreError) as raised:
        get_online_vector(client, GROUP, SPEC, "broken")
    assert raised.value.failure == "bad_record"
