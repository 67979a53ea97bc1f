"""Entity request mode's pieces in process: parsing, the TTL cache, the lookup's errors and deadline, expiry.

The server over real sockets against the runtime's HTTP API: ``tests/functional/test_inference_entity_mode.py``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

from containers.inference.inference_server.errors import RequestError
from containers.inference.inference_server.lookup import (
    EntityLookup,
    EntityRequest,
    TtlCache,
    entity_matrix,
    entity_rows,
    parse_entity_requests,
    scored_features,
)
from containers.inference.inference_server.payload import format_predictions
from mlops.features import get_spec
from mlops.features.spec import feature_record
from mlops.featurestore.online import _expired, get_online_vector
from mlops.featurestore.records import to_put_record_payload
from tests.support.featurestore_fake import FeatureStoreFake

SPEC = get_spec("customer-churn")
GROUP = "acme-mlops-dev-customer-churn-v1"
RAW = {"event_time": "2024-05-01T00:00:00Z", "sessions": 4, "minutes_active": 10.0, "support_tickets": 1}


def parse(document: Any, content_type: str = "application/json", max_rows: int = 10) -> list[EntityRequest]:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return parse_entity_requests(body, content_type, SPEC, max_rows=max_rows)


def refusal(document: Any, content_type: str = "application/json", max_rows: int = 10) -> RequestError:
    with pytest.raises(RequestError) as raised:
        parse(document, content_type, max_rows)
    return raised.value


# --- parsing ----------------------------------------------------------------------------------------------------


def test_one_entity_with_typed_overrides() -> None:
    (request,) = parse({"entityId": "c-1", "overrides": {"plan_tier": 2.0, "monthly_spend": 30}})
    assert request == EntityRequest("c-1", {"plan_tier": 2, "monthly_spend": 30.0})
    assert type(request.overrides["plan_tier"]) is int and type(request.overrides["monthly_spend"]) is float


def test_instances_keep_their_order() -> None:
    assert [r.entity_id for r in parse({"instances": [{"entityId": "b"}, {"entityId": "a"}]})] == ["b", "a"]


def test_csv_is_one_id_per_line_and_a_quoted_id_may_hold_a_comma() -> None:
    requests = parse(b'c-1\n\n"c,2"\r\nc-3\n', "text/csv")
    assert [r.entity_id for r in requests] == ["c-1", "c,2", "c-3"]


@pytest.mark.parametrize(
    ("document", "status", "words"),
    [
        ({"sessions": 3, "plan": "basic"}, 400, "raw records are not accepted"),
        ({"entityId": "c-1", "plan": "basic"}, 400, "unknown key(s) ['plan']"),
        ({"entityId": 5}, 400, '"entityId" must be a non-empty string'),
        ({"entityId": "x" * 2049}, 400, "exceeds Feature Store's 2048"),
        ({"entityId": "c-1", "overrides": {"nope": 1}}, 400, "override 'nope' is not a feature"),
        ({"entityId": "c-1", "overrides": {"sessions": 1.5}}, 400, "override 'sessions'"),
        ({"entityId": "c-1", "overrides": {"sessions": False}}, 400, "got a boolean"),
        ({"instances": [{"entityId": "a"}], "extra": 1}, 400, "unknown key(s) ['extra']"),
        ({"instances": [{"entityId": str(i)} for i in range(11)]}, 413, "11 entities exceed"),
        ([{"entityId": "c-1"}], 400, "JSON body must be an object"),
    ],
)
def test_refusals_name_the_problem(document: Any, status: int, words: str) -> None:
    error = refusal(document)
    assert error.status == status
    assert words in error.message


def test_other_content_types_are_415() -> None:
    assert refusal(b"c-1", "application/x-npy").status == 415


def test_a_csv_line_with_two_fields_is_refused() -> None:
    assert "one entity id per line" in refusal(b"customer_id,plan\n", "text/csv").message


# --- the cache --------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cache_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = TtlCache(10, 5.0, clock)
    cache.put("a", [1])
    clock.now = 4.9
    assert cache.get("a") == [1]
    clock.now = 5.0
    assert cache.get("a") is None
    assert len(cache) == 0  # an expired entry is dropped when met


def test_cache_is_bounded_least_recently_used_first() -> None:
    cache = TtlCache(2, 60.0, Clock())
    cache.put("a", [1])
    cache.put("b", [2])
    assert cache.get("a") == [1]  # a is now the most recently used
    cache.put("c", [3])
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ([1], None, [3])
    assert len(cache) == 2


# --- the lookup ------------------------------------------------------------------------------------------------


class CountingStore(FeatureStoreFake):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gets: list[str] = []

    def get_record(self, **kwargs: Any) -> dict[str, Any]:
        self.gets.append(kwargs["RecordIdentifierValueAsString"])
        return super().get_record(**kwargs)


@pytest.fixture
def store() -> CountingStore:
    fake = CountingStore()
    fake.add_spec_group(GROUP, SPEC)
    for entity, plan in (("c-1", "basic"), ("c-2", "premium")):
        record = feature_record(SPEC, {**RAW, "customer_id": entity, "plan": plan, "monthly_spend": 20.0})
        fake.put_record(FeatureGroupName=GROUP, Record=to_put_record_payload(SPEC, record))
    return fake


def lookup(store: FeatureStoreFake, *, timeout: float = 2.0, cache: TtlCache | None = None) -> EntityLookup:
    return EntityLookup(store, GROUP, SPEC, timeout_seconds=timeout, concurrency=4, cache=cache)


def test_duplicate_ids_are_looked_up_once(store: CountingStore) -> None:
    vectors = asyncio.run(lookup(store).vectors(["c-1", "c-2", "c-1"]))
    assert sorted(store.gets) == ["c-1", "c-2"]
    matrix = entity_matrix(
        SPEC, [EntityRequest("c-1"), EntityRequest("c-1", {"plan_tier": 2}), EntityRequest("c-2")], vectors
    )
    tier = list(SPEC.feature_names).index("plan_tier")
    assert matrix[:, tier].tolist() == [0.0, 2.0, 2.0]


def test_the_answers_features_are_the_rows_the_model_scored() -> None:
    vectors: dict[str, list[Any]] = {"c-1": [4, 2.5, 1, 20.0, 0]}
    rows = entity_rows(SPEC, [EntityRequest("c-1"), EntityRequest("c-1", {"plan_tier": 2})], vectors)
    features = scored_features(SPEC, rows)
    assert features == [
        {"sessions": 4, "minutes_per_session": 2.5, "support_tickets": 1, "monthly_spend": 20.0, "plan_tier": 0},
        {"sessions": 4, "minutes_per_session": 2.5, "support_tickets": 1, "monthly_spend": 20.0, "plan_tier": 2},
    ]
    assert vectors["c-1"][4] == 0  # an override never changes the (cached) vector
    body = json.loads(format_predictions(np.array([0.1, 0.2]), "application/json", features))
    assert body == {"predictions": [0.1, 0.2], "features": features}


def test_an_integral_beyond_64_bits_is_answered_as_the_float_the_model_saw() -> None:
    # orjson cannot write it as an integer; a 500 would lose the prediction.
    rows = entity_rows(SPEC, [EntityRequest("c-1", {"sessions": 2**70})], {"c-1": [4, 2.5, 1, 20.0, 0]})
    (features,) = scored_features(SPEC, rows)
    assert features["sessions"] == float(2**70) and isinstance(features["sessions"], float)
    json.loads(format_predictions(np.array([0.5]), "application/json", [features]))


def test_a_missing_entity_is_404_and_is_not_cached(store: CountingStore) -> None:
    cache = TtlCache(10, 60.0)
    with pytest.raises(RequestError) as raised:
        asyncio.run(lookup(store, cache=cache).vectors(["c-1", "ghost"]))
    assert raised.value.status == 404 and "'ghost'" in raised.value.message and GROUP in raised.value.message
    assert cache.get("c-1") is not None and cache.get("ghost") is None


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 503),
        ("ServiceUnavailable", 503),
        ("InternalFailure", 503),
        ("AccessForbidden", 502),
        ("ResourceNotFound", 502),
        ("ValidationError", 502),
    ],
)
def test_store_errors_map_to_5xx(store: CountingStore, code: str, status: int, caplog: Any) -> None:
    store.fail_next("GetRecord", code, message="why")
    with pytest.raises(RequestError) as raised:
        asyncio.run(lookup(store).vectors(["c-1"]))
    assert raised.value.status == status and code in raised.value.message
    (entry,) = [r for r in caplog.records if r.getMessage() == "online lookup failed"]
    assert (entry.aws_error_code, entry.reason, entry.feature_group) == (code, "why", GROUP)  # type: ignore[attr-defined]


def test_the_whole_lookup_is_bounded_by_the_timeout(store: CountingStore) -> None:
    store.latency_seconds = 1.0
    started = asyncio.run(_timed(lookup(store, timeout=0.1)))
    assert started < 0.6


async def _timed(entity_lookup: EntityLookup) -> float:
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(RequestError) as raised:
        await entity_lookup.vectors(["c-1", "c-2"])
    assert raised.value.status == 504 and "100 ms" in raised.value.message
    return loop.time() - began


# --- expiry ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires_at", "expired"),
    [
        (None, False),
        ("", False),
        ("2024-05-01T00:00:00Z", True),
        ("2999-01-01T00:00:00Z", False),
        ("2024-05-01T00:00:00.000Z", True),
        (1_700_000_000, True),
        ("not a time", False),
    ],
)
def test_expiry_is_read_from_expires_at(expires_at: Any, expired: bool) -> None:
    assert _expired(expires_at, now=1_800_000_000.0) is expired


def test_a_record_past_its_expires_at_is_not_found(store: CountingStore) -> None:
    class Expiring:
        def get_record(self, **kwargs: Any) -> dict[str, Any]:
            assert kwargs["ExpirationTimeResponse"] == "Enabled"
            return {**store.get_record(**kwargs), "ExpiresAt": "2024-05-08T00:00:00Z"}

    from mlops.featurestore.errors import RecordNotFoundError

    with pytest.raises(RecordNotFoundError):
        get_online_vector(Expiring(), GROUP, SPEC, "c-1")
    assert get_online_vector(Expiring(), GROUP, SPEC, "c-1", now=lambda: 0.0) == [4, 2.5, 1, 20.0, 0]
