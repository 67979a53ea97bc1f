"""The offline plan command: prints the plan and policy results, and its exit code tells the outcome."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from verify import plan as plan_cli
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


def test_plan_needs_no_credentials() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(ROOT / ".no-home")  # no ~/.aws either
    result = subprocess.run(
        [sys.executable, "-m", "verify.plan", "--stack", "staging"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Stack staging:" in result.stdout


def test_the_plan_prints_no_sdk_chatter() -> None:
    """The SageMaker SDK logs ~20 expected records while a definition is built (telemetry notice, "Popping out
    ..."): none of them reaches the user, so what is printed is the plan."""
    result = subprocess.run(
        [sys.executable, "-m", "verify.plan", "--stack", "prod"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "sagemaker" not in result.stderr.lower(), result.stderr[:500]
    assert "telemetry" not in (result.stdout + result.stderr).lower()
