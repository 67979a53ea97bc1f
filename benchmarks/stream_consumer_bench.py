"""Benchmark: records per second of the online feature stream consumer against two baselines, same run, same data.

A fixed-seed stream of raw ``customer_activity`` rows (``--records``, default 5,000; ``--customers`` distinct
customers, so an entity recurs within a batch; 1% invalid rows) is cut into Lambda Kinesis events of ``--batch``
records (the event source mapping's default batch size is 100) and fed to:

- ``naive``: a per-record loop: decode, compute the feature record with the shared spec, validate, one
  ``PutRecord`` after the other (what a first version of the function would do);
- ``ingest``: decode and compute the feature records, then :func:`mlops.featurestore.ingest_records` (the batch
  ingestion path: validation, a bounded thread pool of 8 writers) per event, online store only;
- ``consumer``: ``lambdas/update_online_features`` ``process()`` (the handler minus powertools' decorators): the
  same validation, only each entity's newest record per batch written, 8 writers, the failure queue a no-op fake.

Each runs against :class:`tests.support.featurestore_fake.FeatureStoreFake`, first with no latency (the code's
own cost) and then with a fixed ``--latency-ms`` per PutRecord (what the service's round trip adds; moto has no
featurestore-runtime backend and AWS is out of reach here). Every row is the best of ``--repeat`` runs; the
ratio column compares with ``naive`` at the same latency. The online stores of all three are checked to hold the
same records at the end of each run.

    python benchmarks/stream_consumer_bench.py
    python benchmarks/stream_consumer_bench.py --records 5000 --latency-ms 10
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import io
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GROUP = "acme-bench-customer-churn-v1"
PLANS = ("basic", "standard", "premium", "gold")


def raw_rows(count: int, customers: int, seed: int) -> list[dict[str, Any] | bytes]:
    """``count`` rows of ``customers`` customers in stream order (event times mostly increasing), 1% invalid."""
    rng = random.Random(seed)
    rows: list[dict[str, Any] | bytes] = []
    for i in range(count):
        if rng.random() < 0.01:
            rows.append(b"{truncated" if i % 2 else b'{"customer_id": "c-x"}')
            continue
        minute = i // 10 + rng.randint(-3, 3)  # mostly in order; a few arrive a little late
        rows.append(
            {
                "customer_id": f"c-{rng.randrange(customers):06d}",
                "event_time": f"2024-05-01T{minute // 60 % 24:02d}:{minute % 60:02d}:{rng.randint(0, 59):02d}Z",
                "sessions": rng.randint(0, 20),
                "minutes_active": round(rng.uniform(0, 300), 2),
                "support_tickets": rng.randint(0, 3),
                "plan": rng.choice(PLANS),
                "monthly_spend": round(rng.uniform(0, 120), 2),
                "churned": rng.randint(0, 1),
            }
        )
    return rows


class NullSqs:
    """A failure queue that accepts everything (the rejections are not what is measured)."""

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]], "Failed": []}


def _decoded(record: dict[str, Any]) -> dict[str, Any] | None:
    try:
        row = json.loads(base64.b64decode(record["kinesis"]["data"], validate=True))
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


def naive(events: list[dict[str, Any]], store: Any, spec: Any) -> None:
    from mlops.features.spec import feature_record
    from mlops.featurestore.records import to_put_record_payload, validate_record

    for event in events:
        for record in event["Records"]:
            row = _decoded(record)
            if row is None:
                continue
            try:
                valid = validate_record(spec, feature_record(spec, row))
            except (ValueError, TypeError, ArithmeticError):
                continue
            store.put_record(
                FeatureGroupName=GROUP, Record=to_put_record_payload(spec, valid), TargetStores=["OnlineStore"]
            )


def ingest(events: list[dict[str, Any]], store: Any, spec: Any) -> None:
    from mlops.features.spec import feature_record
    from mlops.featurestore import ingest_records

    for event in events:
        features = []
        for record in event["Records"]:
            row = _decoded(record)
            if row is None:
                continue
            try:
                features.append(feature_record(spec, row))
            except (ValueError, TypeError, ArithmeticError):
                continue
        ingest_records(store, GROUP, spec, features, max_workers=8, on_invalid="report", target_stores=("OnlineStore",))


def consumer(app: Any) -> Callable[[list[dict[str, Any]], Any, Any], None]:
    def run(events: list[dict[str, Any]], store: Any, spec: Any) -> None:
        settings = app.Settings.from_env(
            {
                "FEATURE_TARGETS": json.dumps(
                    [{"model": "churn", "featureGroupName": GROUP, "featureSpec": spec.name}]
                ),
                "FAILURE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/bench",
            }
        )
        rt = app.build_runtime(settings, featurestore=store, sqs=NullSqs())
        for event in events:
            result = app.process(event, rt)
            assert not result["batchItemFailures"], result
        app.metrics.clear_metrics()

    return run


def measure(
    variant: Callable[[list[dict[str, Any]], Any, Any], None],
    events: list[dict[str, Any]],
    spec: Any,
    latency: float,
    repeat: int,
) -> tuple[float, Any, int]:
    """Best wall-clock seconds of ``repeat`` runs, the last run's store and its PutRecord calls."""
    from tests.support.featurestore_fake import FeatureStoreFake

    best, store = float("inf"), None
    for _ in range(repeat):
        store = FeatureStoreFake(latency_seconds=latency)
        store.add_spec_group(GROUP, spec)
        with contextlib.redirect_stdout(io.StringIO()):  # powertools' EMF lines: printed in Lambda, not here
            started = time.perf_counter()
            variant(events, store, spec)
            best = min(best, time.perf_counter() - started)
    assert store is not None
    return best, store, len(store.calls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000, help="stream records per run (default 5,000)")
    parser.add_argument("--customers", type=int, default=2_000, help="distinct customers (default 2,000)")
    parser.add_argument("--batch", type=int, default=100, help="records per Lambda event (default 100)")
    parser.add_argument("--latency-ms", type=float, default=5.0, help="fixed PutRecord latency (default 5 ms)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per row, the best is kept (default 2)")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    if args.records < args.batch or args.batch < 1 or args.customers < 1 or args.repeat < 1:
        parser.error("--records must be at least --batch, and --batch, --customers, --repeat at least 1")

    sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")  # one WARNING line per rejected row
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "update_online_features")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MLOps/Streaming")
    import logging

    logging.getLogger("mlops").setLevel(logging.ERROR)  # ingest_records warns about the invalid rows
    from mlops.features import get_spec
    from tests.support.kinesis_events import synthetic_event

    app = importlib.import_module("lambdas.update_online_features.app")
    spec = get_spec("customer-churn")
    rows = raw_rows(args.records, args.customers, args.seed)
    events = [
        synthetic_event(rows[start : start + args.batch], first_sequence=10**20 + start * 10)
        for start in range(0, len(rows), args.batch)
    ]
    variants: list[tuple[str, Callable[[list[dict[str, Any]], Any, Any], None]]] = [
        ("naive", naive),
        ("ingest", ingest),
        ("consumer", consumer(app)),
    ]
    print(
        f"{'variant':<9} {'latency ms':>10} {'records':>8} {'PutRecord':>9} {'seconds':>8} {'records/s':>10} "
        f"{'x naive':>8}"
    )
    for latency_ms in (0.0, args.latency_ms):
        base_seconds = None
        stores = []
        for name, variant in variants:
            seconds, store, calls = measure(variant, events, spec, latency_ms / 1000, args.repeat)
            base_seconds = base_seconds or seconds
            stores.append(store.groups[GROUP].online)
            print(
                f"{name:<9} {latency_ms:10.1f} {len(rows):8,} {calls:9,} {seconds:8.3f} {len(rows) / seconds:10,.0f} "
                f"{base_seconds / seconds:8.2f}"
            )
        assert all(s == stores[0] for s in stores), "the variants left different online stores"
    print(
        f"(best of {args.repeat} runs; {len(events)} events of {args.batch} records, {args.customers:,} customers, "
        f"seed {args.seed}; records/s counts every stream record, invalid ones included; PutRecord is a local fake "
        "store, with no latency and then with a fixed sleep per call; 'x naive' is the speed-up over the naive loop "
        "at the same latency; all three leave the same online store)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
