"""Benchmark: the drift job's throughput and memory on 1e5 and 1e6 captured records, against json-decoding.

Capture files are generated from the real ``customer-churn`` raw columns (seeded, one file per capture hour,
``--per-hour`` records each, laid out like SageMaker's ``<endpoint>/<variant>/yyyy/mm/dd/hh/``); a window of
``size / per-hour`` hours selects each size, so the larger run reads the smaller run's files and more. Per size,
two jobs run over the same files, each in its own interpreter:

- ``json``: the floor, streaming the window's lines through ``json.loads`` and nothing else;
- ``drift``: ``python -m mlops.monitoring.drift`` (in process of that interpreter, via its ``main``) with the
  training baseline, ``--segments plan`` and the window options, writing its report.

Reported per job: seconds, records (or lines) per second, the process's peak RSS while the job ran (the
kernel's high-water mark, reset after the imports; Linux), the peak's growth over the RSS once the job's modules
are imported (what the data costs), and the drift job's time as a multiple of json-decoding's. A streaming
job's growth stays flat from 1e5 to 1e6 records.

    python benchmarks/drift_bench.py                          # 1e5 and 1e6 records: ~5 min, ~0.5 GB of temp files
    python benchmarks/drift_bench.py --sizes 100000           # a quick look
    python benchmarks/drift_bench.py --batch 10               # requests carrying 10 records each

No wall-clock time is asserted anywhere; compare the ratios, measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops.features import get_spec  # noqa: E402
from mlops.monitoring.drift.baseline import baseline_from_raw  # noqa: E402
from pipelines.local_run import synthetic_customer_activity  # noqa: E402
from tools.synthetic_capture import capture_lines, write_lines  # noqa: E402

SPEC = get_spec("customer-churn")
START = datetime(2024, 5, 1, tzinfo=UTC)

# Each job runs in a fresh interpreter: argv = [job, capture folder, window end, hours, baseline, report].
# The peak is the kernel's high-water mark of this process's RSS, reset once the job's modules are imported
# (/proc/self/clear_refs "5"), so "growth" is what the data cost; without that interface, ru_maxrss is used.
CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
job, capture, window_end, hours, baseline, report = sys.argv[2:8]

def status_mb(field):
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass
    return status_mb("VmRSS")

if job == "json":
    import re
    from datetime import datetime, timedelta, timezone
    from pathlib import Path
    end = datetime.fromisoformat(window_end.replace("Z", "+00:00"))
    start = end - timedelta(hours=int(hours))
    hour_path = re.compile(r"(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")
    def in_window(path):
        match = hour_path.search(path.as_posix())
        return bool(match) and start <= datetime(*map(int, match.groups()), tzinfo=timezone.utc) < end
    imported = reset_peak()
    started = time.perf_counter()
    count = 0
    for path in sorted(p for p in Path(capture).rglob("*.jsonl") if in_window(p)):
        with open(path, "rb") as lines:
            for line in lines:
                json.loads(line)
                count += 1
    seconds = time.perf_counter() - started
else:
    import numpy, scipy.stats
    from mlops.monitoring.drift.cli import main
    imported = reset_peak()
    started = time.perf_counter()
    status = main(["--model", "customer-churn", "--reference", baseline, "--capture", capture, "--out", report,
                   "--window-end", window_end, "--window-hours", hours, "--segments", "plan"])
    seconds = time.perf_counter() - started
    assert status == 0, status
    count = json.load(open(report))["records"]
print(json.dumps({"seconds": seconds, "count": count, "peak_mb": status_mb("VmHWM"), "imported_mb": imported}))
"""


def generate(folder: Path, hours: int, per_hour: int, batch: int) -> Path:
    """``hours`` capture files of ``per_hour`` records each, from seeded synthetic raw rows."""
    capture = folder / "capture"
    for hour in range(hours):
        raw = synthetic_customer_activity(customers=-(-per_hour // 3), days=3, seed=100 + hour).head(per_hour)
        moment = START + timedelta(hours=hour)
        path = capture / "churn-prod" / "AllTraffic" / moment.strftime("%Y/%m/%d/%H") / "capture.jsonl"
        write_lines(path, capture_lines(raw, batch=batch, prefix=f"h{hour}"))
    return capture


def measure(job: str, capture: Path, hours: int, baseline: Path, report: Path) -> dict[str, float]:
    end = (START + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    finished = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), job, str(capture), end, str(hours), str(baseline), str(report)],
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        raise SystemExit(f"{job} failed:\n{finished.stderr}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="captured records per run, comma-separated")
    parser.add_argument("--per-hour", type=int, default=100_000, help="records per capture hour (file)")
    parser.add_argument("--batch", type=int, default=1, help="records per captured request")
    args = parser.parse_args(argv)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    if any(size % args.per_hour for size in sizes):
        raise SystemExit(f"every size must be a multiple of --per-hour ({args.per_hour})")

    import numpy
    import scipy

    with tempfile.TemporaryDirectory(prefix="drift-bench-") as work:
        folder = Path(work)
        baseline = folder / "drift-baseline.json"
        training = synthetic_customer_activity(customers=10_000, days=3, seed=1)
        baseline.write_text(json.dumps(baseline_from_raw(SPEC, training, source="bench")), encoding="utf-8")
        started = time.perf_counter()
        capture = generate(folder, sizes[-1] // args.per_hour, args.per_hour, args.batch)
        size_mb = sum(p.stat().st_size for p in capture.rglob("*.jsonl")) / 1e6
        print(
            f"python {platform.python_version()}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
            f"{platform.machine()}; generated {sizes[-1]:,} records ({size_mb:,.0f} MB, {args.batch} per request) "
            f"in {time.perf_counter() - started:.0f} s"
        )
        rows = []
        for size in sizes:
            hours = size // args.per_hour
            measured = {
                job: measure(job, capture, hours, baseline, folder / "report.json") for job in ("json", "drift")
            }
            for job, m in measured.items():
                if job == "drift" and m["count"] != size:
                    raise SystemExit(f"the drift job analysed {m['count']} records, expected {size}")
                rows.append((size, job, m, m["seconds"] / measured["json"]["seconds"]))
        print()
        header = (
            f"{'records':>9}  {'job':<5}  {'seconds':>8}  {'records/s':>10}  {'peak RSS MB':>11}  "
            f"{'growth MB':>9}  {'time / json':>11}"
        )
        print(header)
        print("-" * len(header))
        for size, job, m, ratio in rows:
            print(
                f"{size:>9,}  {job:<5}  {m['seconds']:>8.1f}  {size / m['seconds']:>10,.0f}  {m['peak_mb']:>11.0f}  "
                f"{m['peak_mb'] - m['imported_mb']:>9.1f}  {ratio:>11.2f}"
            )
        if len(sizes) > 1:
            print()
            for job in ("json", "drift"):
                small = next(m for s, j, m, _ in rows if j == job and s == sizes[0])
                large = next(m for s, j, m, _ in rows if j == job and s == sizes[-1])
                print(
                    f"{job}: {sizes[-1] // sizes[0]}x the records -> {large['seconds'] / small['seconds']:.1f}x the time, "
                    f"{large['peak_mb'] / small['peak_mb']:.2f}x the peak RSS"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
