"""Benchmark: peak memory and time of feature-record ingestion, streaming versus the pre-stream baseline, same run.

Each row is a fresh Python process that feeds ``--records`` feature records (produced lazily by a
generator, as a reader of a large file would) to an ingestion function and reports its peak RSS
(``ru_maxrss``) above the RSS it had before the first record, plus the wall-clock time:

- ``baseline``: the algorithm ``ingest_records`` had before it streamed (kept below, verbatim in
  structure): the batch materialised with ``list()``, every record validated into a list, then one
  future per record through ``ThreadPoolExecutor.map``, every outcome kept;
- ``streaming``: :func:`mlops.featurestore.ingest_records` as it is now (chunks, a bounded queue,
  counts plus a bounded failure list, a 32-byte-per-key duplicate index).

A second ``streaming`` row at a tenth of the records shows what is left that grows with the batch
(the duplicate index). ``PutRecord`` is a local fake that does nothing but count: moto has no backend
for ``sagemaker-featurestore-runtime`` (in process its calls are not even intercepted) and AWS is out
of reach here, so these numbers are ingestion's own memory and CPU, not the service's latency.

    python benchmarks/ingest_bench.py                 # 1,000,000 records (a few minutes)
    python benchmarks/ingest_bench.py --records 200000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GROUP = "acme-mlops-bench-customer-churn-v1"


class CountingRuntime:
    """The fake ``sagemaker-featurestore-runtime`` client: counts calls, keeps nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0

    def put_record(self, **_: Any) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
        return {"ResponseMetadata": {"RetryAttempts": 0}}


def records(count: int) -> Iterator[dict[str, Any]]:
    """``count`` distinct valid customer-churn feature records, made one at a time."""
    for i in range(count):
        yield {
            "customer_id": f"c-{i:09d}",
            "event_time": f"2024-05-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            "sessions": i % 17,
            "minutes_per_session": (i % 97) / 4,
            "support_tickets": i % 3,
            "monthly_spend": 9.99 + i % 50,
            "plan_tier": i % 3,
        }


def baseline_ingest(client: Any, name: str, spec: Any, batch_source: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """The pre-stream ``ingest_records``, reduced to its memory-relevant structure (no failures happen here)."""
    from mlops.featurestore.records import record_label, to_put_record_payload, validate_record

    batch = list(batch_source)  # the whole batch materialised
    valid: list[tuple[int, str, dict[str, Any]]] = []
    for index, record in enumerate(batch):
        normalised = validate_record(spec, record, index)
        valid.append((index, normalised[spec.record_identifier], normalised))

    def put(index: int, record_id: str, record: dict[str, Any]) -> tuple[int, str, int]:
        client.put_record(FeatureGroupName=name, Record=to_put_record_payload(spec, record))
        return index, record_id, 1

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="put-record") as pool:
        outcomes = list(pool.map(lambda item: put(*item), valid))  # one future per record, all kept
    labels = [record_label(spec, batch[i], i) for i, _, _ in outcomes[:1]]
    return len(outcomes), len(labels)


def child(variant: str, count: int) -> dict[str, Any]:
    """Run one variant in this process: RSS (MB) before the first record and at peak, wall and CPU seconds."""
    from mlops.features import get_spec
    from mlops.featurestore import ingest_records

    spec = get_spec("customer-churn")
    client = CountingRuntime()
    # Warm up imports and code paths on a few records, so the idle RSS includes them for both variants.
    ingest_records(CountingRuntime(), GROUP, spec, records(50))
    baseline_ingest(CountingRuntime(), GROUP, spec, records(50))
    before = resource.getrusage(resource.RUSAGE_SELF)
    idle = before.ru_maxrss / 1024
    start = time.perf_counter()
    if variant == "baseline":
        written, _ = baseline_ingest(client, GROUP, spec, records(count))
    else:
        report = ingest_records(client, GROUP, spec, records(count))
        if not report.ok:
            raise SystemExit(f"streaming run failed: {report.failed[:3]}")
        written = report.succeeded
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)  # all threads
    peak = after.ru_maxrss / 1024
    if written != count or client.calls != count:
        raise SystemExit(f"{variant}: wrote {written} of {count} ({client.calls} calls)")
    return {"idle_mb": idle, "peak_mb": peak, "seconds": elapsed, "cpu": cpu}


def run(variant: str, count: int) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--records", str(count)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"error: {variant} with {count} records:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records per run (default 1,000,000)")
    parser.add_argument("--child", choices=["baseline", "streaming"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.records < 10:
        parser.error("--records must be at least 10")
    if args.child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(child(args.child, args.records)))
        return 0

    rows = [
        ("baseline", args.records),
        ("streaming", args.records),
        ("streaming", args.records // 10),
    ]
    results = [(variant, count, run(variant, count)) for variant, count in rows]
    base = results[0][2]
    base_growth = base["peak_mb"] - base["idle_mb"]
    print(
        f"{'variant':<10} {'records':>10} {'idle MB':>8} {'peak MB':>8} {'growth MB':>10} {'x baseline':>10}"
        f" {'wall s':>7} {'cpu s':>7} {'cpu x':>6} {'rec/cpu s':>10}"
    )
    for variant, count, r in results:
        growth = r["peak_mb"] - r["idle_mb"]
        print(
            f"{variant:<10} {count:>10,} {r['idle_mb']:8.0f} {r['peak_mb']:8.0f} {growth:10.1f}"
            f" {growth / base_growth:10.3f} {r['seconds']:7.1f} {r['cpu']:7.1f} {r['cpu'] / base['cpu']:6.2f}"
            f" {count / r['cpu']:10,.0f}"
        )
    print(
        "(one fresh process per row; growth: peak RSS minus RSS after warm-up; x baseline: ratio to the baseline "
        "row; cpu: user + system seconds of all threads, steadier than wall time on a shared machine; PutRecord is "
        "a local fake that only counts, since moto has no featurestore-runtime backend)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
