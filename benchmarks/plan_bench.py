"""Benchmark: the offline plan of every stack, beside importing the libraries the plan needs, in the same run.

The baseline row is a fresh Python process that only imports what the program cannot do without:
``pulumi_aws``, ``pulumi_aws_native`` and the SageMaker SDK modules ``pipelines/factory.py`` imports (read
from its source, so the baseline follows the factory). Each plan row runs the offline plan as a user does
(``python -m verify.plan --stack <stack>``, policies included) in a fresh process. Every measurement is
repeated ``--runs`` times, the commands interleaved so that a busy machine slows them alike; the table shows
the median, min and max, and each median's ratio to the baseline's.

    python benchmarks/plan_bench.py --runs 3
    python benchmarks/plan_bench.py --runs 5 --stacks dev prod
"""

from __future__ import annotations

import argparse
import ast
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACTORY = ROOT / "pipelines" / "factory.py"
PLAN_MODULE = "verify.plan"

# What the SageMaker SDK needs in order to be imported offline (importing it creates an AWS client); the plan
# sets the same through pipelines.factory.configure_offline_environment.
OFFLINE_ENV = {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_EC2_METADATA_DISABLED": "true"}


def stack_names() -> list[str]:
    """Every stack with a file in ``stacks/`` (read here, so the benchmark imports no project code)."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


def sdk_imports(source: Path = FACTORY) -> list[str]:
    """The import statements of ``sagemaker.*`` modules in a source file (module level or inside functions)."""
    statements: dict[str, None] = {}
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module or ""]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        if any(module == "sagemaker" or module.startswith("sagemaker.") for module in modules):
            statements[ast.unparse(node)] = None
    return sorted(statements)


def baseline_imports() -> list[str]:
    """What the baseline process runs: Pulumi's AWS providers and the SageMaker SDK imports of the factory."""
    return ["import pulumi_aws", "import pulumi_aws_native", *sdk_imports()]


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"error: {' '.join(argv[1:])} exited with {result.returncode}:\n{tail}")
    return elapsed, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per command (default 5)")
    parser.add_argument("--stacks", nargs="+", metavar="STACK", help="stacks to plan (default: every stack)")
    parser.add_argument(
        "--plan-module", default=PLAN_MODULE, help=f"module that runs the offline plan (default {PLAN_MODULE})"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    python = sys.executable
    imports = baseline_imports()
    # The plan runs in the user's environment, as `make plan` does; the bare import needs the offline settings.
    commands: list[tuple[str, list[str], dict[str, str]]] = [
        ("baseline: import the libraries", [python, "-c", "\n".join(imports)],
         {**OFFLINE_ENV, **os.environ}),
    ]  # fmt: skip
    for stack in args.stacks or stack_names():
        commands.append((f"plan --stack {stack}", [python, "-m", args.plan_module, "--stack", stack], dict(os.environ)))

    wall: dict[str, list[float]] = {label: [] for label, _, _ in commands}
    cpu: dict[str, list[float]] = {label: [] for label, _, _ in commands}
    for _ in range(args.runs):
        for label, command, env in commands:
            elapsed, used = run_once(command, env)
            wall[label].append(elapsed)
            cpu[label].append(used)

    baseline_label = commands[0][0]
    baseline, baseline_cpu = statistics.median(wall[baseline_label]), statistics.median(cpu[baseline_label])
    print(f"{'command':<34} {'median s':>9} {'min s':>7} {'max s':>7} {'x baseline':>10} {'cpu s':>7} {'cpu x':>6}")
    for label, _, _ in commands:
        median, median_cpu = statistics.median(wall[label]), statistics.median(cpu[label])
        print(
            f"{label:<34} {median:9.2f} {min(wall[label]):7.2f} {max(wall[label]):7.2f} {median / baseline:10.2f}"
            f" {median_cpu:7.2f} {median_cpu / baseline_cpu:6.2f}"
        )
    print(
        f"({args.runs} runs each, interleaved, one fresh process per run; x baseline: ratio of the wall-clock "
        f"medians; cpu: user + system seconds, less sensitive to a busy machine; plans: python -m {args.plan_module})"
    )
    print(f"baseline: {'; '.join(imports)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
