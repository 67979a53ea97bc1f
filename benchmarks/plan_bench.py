"""Benchmark: the offline plan of every stack, beside a bare ``import pulumi_aws`` in the same run.

Each measurement is a fresh Python process (what a user pays when running ``make plan``), repeated
``--runs`` times; the table shows the median and the ratio to the import baseline.

    python benchmarks/plan_bench.py --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.offline import stack_names  # noqa: E402


def time_command(argv: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    python = sys.executable
    rows: list[tuple[str, list[float]]] = [
        ("baseline: python -c 'import pulumi_aws'", time_command([python, "-c", "import pulumi_aws"], args.runs)),
    ]
    for stack in stack_names():
        rows.append((f"plan --stack {stack}", time_command([python, "tools/plan.py", "--stack", stack], args.runs)))
    baseline = statistics.median(rows[0][1])
    print(f"{'command':<44} {'median s':>9} {'min s':>7} {'max s':>7} {'x baseline':>10}")
    for label, samples in rows:
        median = statistics.median(samples)
        print(f"{label:<44} {median:9.2f} {min(samples):7.2f} {max(samples):7.2f} {median / baseline:10.2f}")
    print(f"({args.runs} runs each, one fresh process per run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
