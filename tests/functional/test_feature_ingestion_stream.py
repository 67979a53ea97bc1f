"""Feature-record ingestion as a stream: bounded memory, one retry layer, deterministic duplicates.

moto has no backend for ``sagemaker-featurestore-runtime`` (in process its calls are not even
intercepted), so ``PutRecord`` is answered here by local fakes:

- for memory and concurrency, a fake client object that records what is held and in flight;
- for retries, a real botocore client made by :func:`runtime_client` whose HTTP requests are answered by a
  ``before-send`` handler (botocore's own retry logic runs; no request leaves the process).

Memory is asserted structurally, never by wall clock or RSS: the source counts the records pulled from it and
the fake client the records finished, so "pulled but not finished" is what ingestion holds at once.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import botocore.retries.standard
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.features import get_spec
from mlops.featurestore import InvalidRecordsError, ingest_records, runtime_client
from mlops.featurestore.ingest import EventIndex

SPEC = get_spec("customer-churn")
GROUP = "acme-mlops-dev-customer-churn-v1"
REGION = "eu-west-1"


def record(
    i: int, *, customer: str | None = None, sessions: int = 2, at: str = "2024-05-01T00:00:00Z"
) -> dict[str, Any]:
    return {
        "customer_id": customer or f"c-{i:06d}",
        "event_time": at,
        "sessions": sessions,
        "minutes_per_session": 1.5,
        "support_tickets": 0,
        "monthly_spend": 9.99,
        "plan_tier": 1,
    }


class Source:
    """A one-shot stream of ``count`` records that counts how many have been pulled from it."""

    def __init__(self, count: int, make: Any = record) -> None:
        self.count = count
        self.make = make
        self.pulled = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(self.count):
            self.pulled += 1
            yield self.make(i)


class FakeRuntime:
    """A ``put_record`` stand-in: records what it wrote, what runs at once and what ingestion holds."""

    def __init__(self, source: Source | None = None, *, delay: float = 0.0, fail: set[str] | None = None) -> None:
        self.source = source
        self.delay = delay
        self.fail = fail or set()
        self.lock = threading.Lock()
        self.calls = 0
        self.finished = 0
        self.running = 0
        self.peak_running = 0
        self.peak_held = 0
        self.written: list[dict[str, str]] = []

    def put_record(self, **kwargs: Any) -> dict[str, Any]:
        values = {v["FeatureName"]: v["ValueAsString"] for v in kwargs["Record"]}
        with self.lock:
            self.calls += 1
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
            if self.source is not None:
                self.peak_held = max(self.peak_held, self.source.pulled - self.finished)
        try:
            if self.delay:
                time.sleep(random.uniform(0, self.delay))
            if values["customer_id"] in self.fail:
                raise ClientError(
                    {"Error": {"Code": "ValidationError", "Message": "refused"}, "ResponseMetadata": {}}, "PutRecord"
                )
            with self.lock:
                self.written.append(values)
            return {"ResponseMetadata": {"RetryAttempts": 0}}
        finally:
            with self.lock:
                self.running -= 1
                self.finished += 1


# --- bounded memory -----------------------------------------------------------------------------


def test_records_are_pulled_lazily_and_few_are_held_at_once() -> None:
    source = Source(5000)
    client = FakeRuntime(source)
    report = ingest_records(client, GROUP, SPEC, source, max_workers=4, chunk_size=50)
    assert (report.total, report.succeeded, report.failed_count) == (5000, 5000, 0)
    # One chunk being validated plus the bounded queue of the writer (two per worker), whatever the batch size.
    assert client.peak_held <= 50 + 2 * 4, client.peak_held


def test_put_record_calls_in_flight_never_exceed_max_workers() -> None:
    client = FakeRuntime(delay=0.002)
    report = ingest_records(client, GROUP, SPEC, (record(i) for i in range(200)), max_workers=3, chunk_size=20)
    assert report.ok and client.calls == 200
    assert 1 < client.peak_running <= 3


def test_failures_are_counted_in_full_but_listed_only_up_to_the_limit_in_input_order() -> None:
    failing = {f"c-{i:06d}" for i in range(0, 300, 2)}  # every other record is refused by the service
    client = FakeRuntime(delay=0.0005, fail=failing)
    report = ingest_records(
        client, GROUP, SPEC, (record(i) for i in range(300)), max_workers=4, max_listed_failures=10, chunk_size=25
    )
    assert (report.succeeded, report.failed_count, len(report.failed)) == (150, 150, 10)
    assert [f.index for f in report.failed] == list(range(0, 20, 2))  # the first ten, however threads finished
    assert report.succeeded + report.duplicates + report.failed_count == report.total
    assert not report.ok


def test_an_invalid_record_in_a_stream_stops_before_its_chunk_is_written() -> None:
    def make(i: int) -> dict[str, Any]:
        return {**record(i), "sessions": "3"} if i == 130 else record(i)  # a string in an Integral feature

    client = FakeRuntime()
    with pytest.raises(InvalidRecordsError) as caught:
        ingest_records(client, GROUP, SPEC, Source(1000, make), max_workers=2, chunk_size=50)
    assert caught.value.written == 100 and client.calls == 100  # chunks 0-49 and 50-99; not 100-149
    assert "record 'c-000130' (#130): field 'sessions'" in str(caught.value)
    assert "100 record(s) of earlier chunks were written" in str(caught.value)


def test_an_invalid_record_in_a_list_refuses_the_whole_list_whatever_its_size() -> None:
    batch = [record(i) for i in range(500)]
    batch[450] = {**batch[450], "sessions": 2**70}
    client = FakeRuntime()
    with pytest.raises(InvalidRecordsError) as caught:
        ingest_records(client, GROUP, SPEC, batch, chunk_size=50)
    assert caught.value.written == 0 and client.calls == 0
    assert "nothing written" in str(caught.value)


def test_a_flood_of_invalid_records_is_summarised_not_listed_whole() -> None:
    batch = [{**record(i), "sessions": "x"} for i in range(5000)]
    with pytest.raises(InvalidRecordsError) as caught:
        ingest_records(FakeRuntime(), GROUP, SPEC, batch, max_listed_failures=5)
    assert caught.value.count == 5000 and len(caught.value.errors) == 5
    assert len(str(caught.value)) < 2000


# --- duplicates: refused or skipped, never left to thread order ----------------------------------


def conflicting_batch() -> list[dict[str, Any]]:
    return [
        record(0, customer="c-1", sessions=1),
        record(1, customer="c-2"),
        record(2, customer="c-1", sessions=9),  # same identifier and event time, other values
        record(3, customer="c-1", sessions=1, at="2024-05-01T00:00:00.000Z"),  # the first one again, spelt otherwise
    ]


@pytest.mark.parametrize("attempt", range(8))
def test_a_conflicting_duplicate_is_refused_and_the_first_record_is_written(attempt: int) -> None:
    client = FakeRuntime(delay=0.003)  # random latencies: the outcome must not depend on them
    report = ingest_records(client, GROUP, SPEC, conflicting_batch(), max_workers=4, on_invalid="report")
    written = sorted((w["customer_id"], w["sessions"]) for w in client.written)
    assert written == [("c-1", "1"), ("c-2", "2")], f"attempt {attempt}"
    (failure,) = report.failed
    assert (failure.index, failure.error_code) == (2, "ConflictingDuplicate")
    assert "#0" in failure.message
    assert (report.succeeded, report.duplicates, report.failed_count, report.total) == (2, 1, 1, 4)


def test_a_conflicting_duplicate_refuses_a_list_before_anything_is_written() -> None:
    client = FakeRuntime()
    with pytest.raises(InvalidRecordsError) as caught:
        ingest_records(client, GROUP, SPEC, conflicting_batch())
    (error,) = caught.value.errors
    assert (error.record, error.field) == ("'c-1' (#2)", "event_time")
    assert client.calls == 0


def test_conflicts_are_found_across_chunks_of_a_stream() -> None:
    def make(i: int) -> dict[str, Any]:
        return record(i, customer="c-x", sessions=i) if i in (3, 777) else record(i)

    client = FakeRuntime()
    report = ingest_records(client, GROUP, SPEC, Source(1000, make), chunk_size=10, on_invalid="report")
    assert [(f.index, f.error_code) for f in report.failed] == [(777, "ConflictingDuplicate")]


def test_the_same_identifier_at_other_event_times_is_not_a_duplicate() -> None:
    batch = [record(0, customer="c-1", at=f"2024-05-0{d}T00:00:00Z", sessions=d) for d in range(1, 6)]
    client = FakeRuntime()
    report = ingest_records(client, GROUP, SPEC, batch)
    assert (report.succeeded, report.duplicates) == (5, 0) and client.calls == 5


def test_the_event_index_stays_exact_across_its_merges() -> None:
    index = EventIndex(buffer_size=16)
    for i in range(1000):
        assert index.first(f"k-{i}", value_digest=i, position=i) is None
    for i in range(0, 1000, 7):  # found again, in the sorted arrays or the buffer
        assert index.first(f"k-{i}", value_digest=0, position=5000) == (i, i)
    assert index.first("k-new", value_digest=1, position=1) is None
    assert len(index) == 1001


# --- one retry layer: botocore's standard mode --------------------------------------------------


class Http:
    """Answers a botocore client's PutRecord requests in process (``before-send``), from a script."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]] | Exception]) -> None:
        self.answers = answers
        self.sent = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        answer = self.answers[min(self.sent, len(self.answers) - 1)]
        self.sent += 1
        if isinstance(answer, Exception):
            raise answer  # botocore treats it as the transport failing
        status, body = answer
        raw = json.dumps(body).encode()
        headers = {"x-amzn-RequestId": f"req-{self.sent}", "Content-Type": "application/json"}
        if status >= 400:
            headers["x-amzn-ErrorType"] = body["__type"]
        return AWSResponse(request.url, status, headers, _Raw(raw))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield self.body


THROTTLED = (400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
OK = (200, {})


@pytest.fixture
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """botocore's standard-mode backoff, counted instead of slept (the count is botocore's retries)."""
    delays: list[int] = []

    def delay_amount(self: Any, context: Any) -> float:
        delays.append(context.attempt_number)
        return 0.0

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", delay_amount)
    return delays


def scripted_client(http: Http, *, max_attempts: int = 3) -> tuple[Any, list[str]]:
    client = runtime_client(region_name=REGION, max_attempts=max_attempts)
    client.meta.events.register("before-send.sagemaker-featurestore-runtime.PutRecord", http)
    calls: list[str] = []
    client.meta.events.register("before-call.sagemaker-featurestore-runtime.PutRecord", lambda **_: calls.append("x"))
    return client, calls


def test_the_runtime_client_uses_botocores_standard_retry_mode() -> None:
    client = runtime_client(region_name=REGION, max_attempts=4)
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert client.meta.config.max_pool_connections >= 8  # ingest_records' default max_workers


def test_throttling_is_retried_once_by_botocore_and_never_again_by_ingestion(no_backoff_sleep: list[int]) -> None:
    http = Http([THROTTLED, THROTTLED, OK])
    client, calls = scripted_client(http)
    report = ingest_records(client, GROUP, SPEC, [record(0)], max_workers=1)
    assert report.ok and report.retries == 2
    assert (len(calls), http.sent, len(no_backoff_sleep)) == (1, 3, 2)  # one API call, three HTTP attempts


def test_throttling_that_outlasts_botocores_attempts_is_reported_not_retried_on_top(
    no_backoff_sleep: list[int],
) -> None:
    http = Http([THROTTLED])
    client, calls = scripted_client(http, max_attempts=3)
    report = ingest_records(client, GROUP, SPEC, [record(0)], max_workers=1)
    (failure,) = report.failed
    assert (failure.error_code, failure.message, failure.attempts) == ("ThrottlingException", "Rate exceeded", 3)
    assert (len(calls), http.sent) == (1, 3)  # a second layer would have multiplied the attempts


def test_a_5xx_is_retried_by_botocore(no_backoff_sleep: list[int]) -> None:
    http = Http([(503, {"__type": "ServiceUnavailable", "message": "Try again"}), OK])
    client, calls = scripted_client(http)
    report = ingest_records(client, GROUP, SPEC, [record(0)], max_workers=1)
    assert report.ok and report.retries == 1 and (len(calls), http.sent) == (1, 2)


def test_a_connection_that_keeps_failing_is_reported_after_botocores_attempts(no_backoff_sleep: list[int]) -> None:
    http = Http([EndpointConnectionError(endpoint_url="https://featurestore-runtime.invalid")])
    client, calls = scripted_client(http, max_attempts=3)
    report = ingest_records(client, GROUP, SPEC, [record(0)], max_workers=1)
    (failure,) = report.failed
    assert (failure.error_code, failure.attempts) == ("EndpointConnectionError", None)  # botocore does not say
    assert (len(calls), http.sent) == (1, 3)


def test_ingestion_itself_calls_put_record_once_per_record() -> None:
    class AlwaysThrottled:
        calls = 0

        def put_record(self, **_: Any) -> Any:
            self.calls += 1
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}, "ResponseMetadata": {}}, "PutRecord"
            )

    client = AlwaysThrottled()
    report = ingest_records(client, GROUP, SPEC, [record(0), record(1)], max_workers=1)
    assert client.calls == 2 and report.failed_count == 2


# --- what happens around the calls --------------------------------------------------------------


def test_an_error_that_is_not_an_aws_error_stops_the_batch_and_is_raised() -> None:
    class Broken(FakeRuntime):
        def put_record(self, **kwargs: Any) -> dict[str, Any]:
            if self.calls >= 5:
                raise RuntimeError("client bug")
            return super().put_record(**kwargs)

    client = Broken()
    with pytest.raises(RuntimeError, match="client bug"):
        ingest_records(client, GROUP, SPEC, (record(i) for i in range(10_000)), max_workers=2, chunk_size=100)
    assert client.calls < 300  # it stopped feeding the client instead of pushing 10,000 records into it


def test_a_source_that_fails_midway_raises_after_every_call_has_finished() -> None:
    def source() -> Iterator[dict[str, Any]]:
        for i in range(250):
            yield record(i)
        raise OSError("the landing file was truncated")

    client = FakeRuntime(delay=0.002)
    with pytest.raises(OSError, match="truncated"):
        ingest_records(client, GROUP, SPEC, source(), max_workers=4, chunk_size=100)
    assert client.running == 0  # no call outlives ingest_records
    assert client.calls == 200  # the two complete chunks; the partial third was never checked whole


# --- the invariants, for any batch --------------------------------------------------------------

CUSTOMERS = st.sampled_from(["c-1", "c-2", "c-3"])
TIMES = st.sampled_from(["2024-05-01T00:00:00Z", "2024-05-01T00:00:00.000Z", "2024-05-02T00:00:00Z"])
ANY_RECORD = st.one_of(
    st.builds(lambda c, t, s: record(0, customer=c, at=t, sessions=s), CUSTOMERS, TIMES, st.integers(0, 2)),
    st.builds(lambda c, t: {**record(0, customer=c, at=t), "sessions": "2"}, CUSTOMERS, TIMES),  # invalid
)


@settings(max_examples=150, deadline=None)
@given(batch=st.lists(ANY_RECORD, max_size=25), chunk_size=st.integers(1, 7), workers=st.integers(1, 4))
def test_any_batch_is_accounted_for_and_writes_each_event_once_with_its_first_values(
    batch: list[dict[str, Any]], chunk_size: int, workers: int
) -> None:
    client = FakeRuntime()
    report = ingest_records(
        client, GROUP, SPEC, iter(batch), max_workers=workers, chunk_size=chunk_size, on_invalid="report"
    )
    assert report.succeeded + report.duplicates + report.failed_count == report.total == len(batch)
    # What a sequential reader would decide: the first valid record of each instant wins.
    first: dict[tuple[str, str], int] = {}
    for r in batch:
        if isinstance(r["sessions"], int):
            first.setdefault((r["customer_id"], r["event_time"].replace(".000Z", "Z")), r["sessions"])
    written = {(w["customer_id"], w["event_time"].replace(".000Z", "Z")): int(w["sessions"]) for w in client.written}
    assert len(client.written) == len(written)  # no instant written twice
    assert written == first
