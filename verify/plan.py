"""Offline plan: run the whole Pulumi program for a stack under the mock engine and print what it creates.

No Pulumi CLI, no credentials, no network. Prints the resources grouped by component with counts per
type, the policy pack's results, then the AWS contract check (every resource's inputs against AWS's own API
models, every IAM policy against IAM's action catalogue: :mod:`verify.aws_contract`).

Exit codes (a contract CI relies on; with ``--all``, the highest of the stacks'):

  0 every stack planned, no mandatory policy failed and no input breaks AWS's contract;
  1 a plan was made and a check failed on it: a mandatory policy, or the AWS contract check (the reasons are in
    the printed plan, on stdout);
  2 no plan could be made, whatever the reason: the stack file is missing, unreadable, not UTF-8, not YAML or not
    a stack file; the configuration is invalid; or the program failed on it. Each problem is one line on stderr,
    ``error: stack '<name>': <key or file>: <what is wrong and what is allowed>``, and no traceback (``--traceback``
    prints one for a failure inside the program).

    python -m verify.plan --stack prod
    python -m verify.plan --all
    python -m verify.plan --stack dev --stack-file path/to/Pulumi.custom.yaml
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import traceback
from collections import Counter, defaultdict
from pathlib import Path
from typing import NoReturn

# The program must never reach AWS from here: no credentials lookups, no metadata endpoint.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

from infra.config import ConfigError, one_line
from infra.naming import NamingError
from verify.mock_engine import OfflinePlan, read_stack_values, run_program, stack_names


def render_plan(plan: OfflinePlan) -> str:
    """Resources grouped by component, with counts per type."""
    cfg = plan.config
    custom = [r for r in plan.resources if r.custom]
    lines = [
        f"Stack {plan.stack}: {cfg.project}-{cfg.environment} in {cfg.region} "
        f"({len(custom)} resources, {len(plan.resources) - len(custom)} components)",
    ]
    by_component: dict[str, Counter[str]] = defaultdict(Counter)
    for resource in custom:
        by_component[resource.component][resource.type] += 1
    for component in sorted(by_component):
        counts = by_component[component]
        instances = sum(1 for r in plan.resources if not r.custom and r.type == component)
        label = f"{component} x{instances}" if instances > 1 else component
        lines.append(f"  {label}  ({sum(counts.values())} resources)")
        for type_token, count in sorted(counts.items()):
            lines.append(f"    {count:4d}  {type_token}")
    protected = sum(1 for r in custom if r.protect)
    retained = sum(1 for r in custom if r.retain_on_delete)
    lines.append(f"  protected: {protected}, retained on delete: {retained}")
    return "\n".join(lines)


def render_policies(plan: OfflinePlan) -> tuple[str, bool]:
    """Policy pack results; the flag is False when a mandatory policy failed."""
    from verify.policy_check import check_plan

    results = check_plan(plan)
    ok = True
    lines = [f"Policies ({len(results)}):"]
    for result in results:
        status = "pass" if result.passed else "FAIL"
        lines.append(f"  [{status}] {result.policy} ({result.enforcement})")
        for violation in result.violations:
            lines.append(f"         - {violation}")
        if not result.passed and result.enforcement == "mandatory":
            ok = False
    return "\n".join(lines), ok


def render_contract(plan: OfflinePlan) -> tuple[str, bool]:
    """The AWS contract check's results (verify.aws_contract); the flag is False when any input breaks a rule."""
    from verify.aws_contract import contract_report

    report = contract_report(plan)
    count = len(report.violations)
    verdict = "no violation" if not count else f"{count} violation{'s' if count > 1 else ''}"
    lines = [f"AWS contract ({report.checked} resources checked): {verdict}"]
    lines += [f"  [FAIL] {violation}" for violation in report.violations]
    lines += [f"  [not checked] {gap}" for gap in report.gaps]
    return "\n".join(lines), not report.violations


class _Parser(argparse.ArgumentParser):
    """Usage errors are unusable input too: exit code 2 with one line (argparse's own prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, one_line(f"error: {message} (see --help)") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(description=(__doc__ or "").strip().splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--stack", default=os.environ.get("STACK", "dev"), help="stack name (stacks/Pulumi.<stack>.yaml)"
    )
    group.add_argument("--all", action="store_true", help="plan every stack in stacks/")
    parser.add_argument("--stack-file", type=Path, help="read the config from this file instead of stacks/")
    parser.add_argument("--no-policies", action="store_true", help="skip the policy pack")
    parser.add_argument(
        "--no-contract", action="store_true", help="skip the AWS contract check (API models, IAM actions)"
    )
    parser.add_argument(
        "--traceback", action="store_true", help="print the traceback of a failure inside the program (exit code 2)"
    )
    args = parser.parse_args(argv)

    stacks = stack_names() if args.all else [args.stack]
    status = 0
    for stack in stacks:
        try:
            output, ok = _plan_stack(stack, args)
        except (ConfigError, NamingError, FileNotFoundError) as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
            for problem in problems:
                print(one_line(f"error: stack '{stack}': {problem}"), file=sys.stderr)
            status = max(status, 2)
            continue
        except Exception as exc:  # no plan, and no verdict: say what failed in one line (exit code 2)
            if args.traceback:
                traceback.print_exc()
            message = " ".join(str(exc).split())
            line = f"error: stack '{stack}': the plan failed: {type(exc).__name__}: {message}"
            print(one_line(line), file=sys.stderr)
            status = max(status, 2)
            continue
        print(output)
        if not ok:
            status = max(status, 1)
    return status


def _plan_stack(stack: str, args: argparse.Namespace) -> tuple[str, bool]:
    """The printed plan of ``stack`` and whether every check passed; raises when no plan can be made."""
    values = read_stack_values(stack, args.stack_file)
    plan = run_program(stack, values=values)
    sections = [render_plan(plan)]
    ok = True
    if not args.no_policies:
        text, passed = render_policies(plan)
        sections.append(text)
        ok = ok and passed
    if not args.no_contract:
        text, passed = render_contract(plan)
        sections.append(text)
        ok = ok and passed
    return "\n".join(sections) + "\n", ok


if __name__ == "__main__":
    # A short-lived command whose heap is mostly what it imports (Pulumi's providers, the SageMaker SDK, botocore's
    # service models): the collector's full passes over those objects, while running and again at exit, cost
    # more than the plan itself (benchmarks/plan_bench.py). The program creates few reference cycles, so the
    # command runs without collecting (about 3 % more peak memory for one stack) and freezes what is left
    # before the interpreter exits.
    gc.disable()
    status = main()
    gc.freeze()
    sys.exit(status)
