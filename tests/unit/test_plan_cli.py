"""The offline plan command: prints the plan and policy results, and its exit code tells the outcome."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime.proto import source_pb2

from infra.config import parse_stack_config
from verify import plan as plan_cli
from verify.mock_engine import OfflinePlan, _without_source_positions, read_stack_values
from verify.policy_check import PolicyResult

ROOT = Path(__file__).resolve().parents[2]


def test_plan_prints_components_types_and_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_cli.main(["--stack", "prod"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Stack prod: acme-mlops-prod in eu-west-1")
    assert "  mlops:lake:DataLake  (47 resources)" in out
    assert "       6  aws:s3/bucket:Bucket" in out
    assert "[pass] kms-encryption-at-rest (mandatory)" in out
    assert "FAIL" not in out


def test_invalid_stack_file_prints_the_config_error_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text((ROOT / "stacks" / "Pulumi.dev.yaml").read_text() + "  mlops:retention: 30\n")
    assert plan_cli.main(["--stack", "dev", "--stack-file", str(broken)]) == 2
    captured = capsys.readouterr()
    assert "mlops:retention: unknown key; allowed keys:" in captured.err
    assert captured.out == ""


def test_unknown_stack_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_cli.main(["--stack", "nosuchstack"]) == 2
    assert "no stack file" in capsys.readouterr().err


def test_failed_mandatory_policy_exits_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    failed = PolicyResult(policy="s3-tls-only", enforcement="mandatory", passed=False, violations=["bucket 'x' ..."])
    monkeypatch.setattr("verify.policy_check.check_plan", lambda plan: [failed])
    assert plan_cli.main(["--stack", "dev"]) == 1
    assert "[FAIL] s3-tls-only (mandatory)" in capsys.readouterr().out


@pytest.fixture(scope="module")
def plan_as_a_user_runs_it() -> subprocess.CompletedProcess[str]:
    """``python -m verify.plan --stack prod`` in a process of its own, as a user on a fresh machine runs it: no AWS
    variable and no ``~/.aws``. One run serves the tests below (a process costs seconds of imports)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(ROOT / ".no-home")  # no ~/.aws either
    return subprocess.run(
        [sys.executable, "-m", "verify.plan", "--stack", "prod"], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_plan_needs_no_credentials(plan_as_a_user_runs_it: subprocess.CompletedProcess[str]) -> None:
    result = plan_as_a_user_runs_it
    assert result.returncode == 0, result.stderr
    assert "Stack prod:" in result.stdout


def test_the_plan_prints_no_sdk_chatter(plan_as_a_user_runs_it: subprocess.CompletedProcess[str]) -> None:
    """The SageMaker SDK logs ~20 expected records while a definition is built (telemetry notice, "Popping out
    ..."): none of them reaches the user, so what is printed is the plan."""
    result = plan_as_a_user_runs_it
    assert result.returncode == 0, result.stderr
    assert "sagemaker" not in result.stderr.lower(), result.stderr[:500]
    assert "telemetry" not in (result.stdout + result.stderr).lower()


def test_an_offline_run_gives_the_sdk_back_its_source_positions() -> None:
    """The offline run skips the SDK's per-resource stack walk (see ``_without_source_positions``); a program run
    after it in the same process, or one that raised, must find the SDK as it was."""
    capture = pulumi_resource._get_stack_trace  # pyright: ignore[reportPrivateUsage]
    with pytest.raises(RuntimeError, match="the program failed"), _without_source_positions():
        assert pulumi_resource._get_stack_trace() == source_pb2.StackTrace()  # pyright: ignore[reportPrivateUsage]
        raise RuntimeError("the program failed")
    assert pulumi_resource._get_stack_trace is capture  # pyright: ignore[reportPrivateUsage]


# ---------------------------------------------------------------------------------------------
# The exit codes are a contract: 0 clean, 1 a check failed on a plan, 2 no plan could be made. A broken stack
# file must never look like a policy violation to CI, and never print a traceback.

DEV = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()


def _unusable(content: str | bytes) -> Callable[[Path], Path]:
    def write(directory: Path) -> Path:
        path = directory / "Pulumi.dev.yaml"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return write


def _alias_bomb() -> str:
    """Nine levels of nine aliases: a ~1 KB file whose expansion has 9**9 (387 million) leaves."""
    lines = [
        "config:",
        "  aws:region: eu-west-1",
        '  mlops:x0: &x0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for level in range(1, 10):
        refs = ",".join([f"*x{level - 1}"] * 9)
        lines.append(f"  mlops:x{level}: &x{level} [{refs}]")
    lines.append("  mlops:tags: *x9")
    return "\n".join(lines) + "\n"


UNUSABLE_INPUT: dict[str, tuple[Callable[[Path], Path], str]] = {
    "yaml-syntax-error": (_unusable(DEV + "  mlops:extra: [unclosed\n"), "not valid YAML"),
    "tab-indentation": (_unusable(DEV.replace("  mlops:owner:", "\tmlops:owner:")), "not valid YAML"),
    "list-document": (_unusable("- config\n- mlops:project\n"), "must be a mapping with a 'config' key"),
    "scalar-document": (_unusable("just a line of text\n"), "must be a mapping with a 'config' key"),
    "config-not-a-mapping": (_unusable("config:\n  - aws:region\n"), "'config' must be a mapping"),
    "binary-file": (_unusable(bytes(range(256)) * 4), "not UTF-8 text"),
    "utf16-file": (_unusable(DEV.encode("utf-16")), "not UTF-8 text"),
    "yaml-date-as-owner": (
        _unusable(DEV.replace("mlops:owner: ml-platform", "mlops:owner: 2024-01-01")),
        "mlops:owner: got the YAML date 2024-01-01",
    ),
    "unknown-region": (_unusable(DEV.replace("aws:region: eu-west-1", "aws:region: xx-nowhere-9")), "aws:region"),
    "directory": (lambda directory: directory, "is a directory"),
    "alias-bomb": (_unusable(_alias_bomb()), "alias"),
    "duplicate-key": (_unusable(DEV + "  mlops:owner: someone-else\n"), "mlops:owner: given twice"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE_INPUT))
def test_unusable_input_exits_2_with_one_line_and_no_traceback(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write, expected = UNUSABLE_INPUT[case]
    path = write(tmp_path)
    started = time.monotonic()
    status = plan_cli.main(["--stack", "dev", "--stack-file", str(path)])
    elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    assert status == 2, captured.err
    assert captured.out == ""
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert elapsed < 5, f"{case} took {elapsed:.1f} s to refuse"  # the alias bomb must not be expanded


def test_every_problem_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text(DEV.replace("mlops:logRetentionDays: 14", "mlops:logRetentionDays: 15") + "  mlops:retention: 3\n")
    assert plan_cli.main(["--stack", "dev", "--stack-file", str(stack)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("error: stack 'dev': mlops:") for line in lines), lines


def test_a_control_character_in_a_key_cannot_forge_a_second_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text(DEV + '  "mlops:x\\nerror: forged": 1\n')
    assert plan_cli.main(["--stack", "dev", "--stack-file", str(stack)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "mlops:x\\nerror: forged" in line


def test_a_failure_inside_the_program_exits_2_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing_program(stack: str, values: object = None) -> object:
        raise RuntimeError("provider exploded\nwith a second line")

    monkeypatch.setattr(plan_cli, "run_program", failing_program)
    assert plan_cli.main(["--stack", "dev"]) == 2
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line == "error: stack 'dev': the plan failed: RuntimeError: provider exploded with a second line"


def test_an_aws_contract_violation_exits_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from verify.aws_contract import ContractReport, ContractViolation

    config = parse_stack_config(read_stack_values("dev"), "dev")
    monkeypatch.setattr(plan_cli, "run_program", lambda stack, values=None: OfflinePlan(stack, config, ()))
    violation = ContractViolation(urn="urn", name="bucket", type="aws:s3/bucket:Bucket", field="f", value="v", rule="r")
    monkeypatch.setattr(
        "verify.aws_contract.contract_report", lambda plan: ContractReport(violations=(violation,), checked=1, gaps=())
    )
    assert plan_cli.main(["--stack", "dev", "--no-policies"]) == 1
    captured = capsys.readouterr()
    assert "[FAIL] bucket [aws:s3/bucket:Bucket] f = v: r" in captured.out
    assert captured.err == ""


def test_the_exit_codes_are_documented() -> None:
    doc = plan_cli.__doc__ or ""
    for code in ("0 ", "1 ", "2 "):
        assert f"\n  {code}" in doc, f"exit code {code.strip()} is not documented in verify/plan.py's docstring"


def test_a_usage_error_exits_2_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        plan_cli.main(["--stack", "prod", "--all"])
    assert excinfo.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: argument --all: not allowed with argument --stack")
