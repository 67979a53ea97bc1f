"""The feedback-loop drill, end to end, as `make drill` runs it (its own emulators, in a child process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.drill import STEPS

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
STEP_LINE = re.compile(r"^(?P<mark>[✓✗]) (?P<name>\S+)\s+(?P<seconds>\d+\.\d\d)s  (?P<detail>.*)$")


@pytest.fixture(scope="module")
def drill_run(emulators: object) -> subprocess.CompletedProcess[str]:
    """``python -m tools.drill`` once for the module (it needs what the ``emulators`` fixture checks first)."""
    del emulators  # the session's servers are not used: the drill starts and stops its own
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    return subprocess.run(
        [sys.executable, "-m", "tools.drill"],
        cwd=REPO_ROOT,
        env={**env, "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_drill_exits_zero(drill_run: subprocess.CompletedProcess[str]) -> None:
    assert drill_run.returncode == 0, drill_run.stdout + drill_run.stderr


def test_drill_passes_every_step_in_order(drill_run: subprocess.CompletedProcess[str]) -> None:
    steps = [m.group("name", "mark") for m in map(STEP_LINE.match, drill_run.stdout.splitlines()) if m]
    assert steps == [(name, "✓") for name in ("emulators", "setup", *(name for name, _ in STEPS))]


def test_drill_summary_counts_every_step(drill_run: subprocess.CompletedProcess[str]) -> None:
    total = len(STEPS) + 1
    assert f"{total}/{total} steps passed, 0 failed" in drill_run.stdout


def step_details(run: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Each step's one-line summary, by step name."""
    return {m["name"]: m["detail"] for m in map(STEP_LINE.match, run.stdout.splitlines()) if m}


def test_drill_monitors_before_it_retrains() -> None:
    # Retraining must be the consequence of the monitor's verdict: its steps come first, in the loop's order.
    names = [name for name, _ in STEPS]
    order = ["dispatch", "heartbeat", "capture", "monitor", "alarm", "retrain"]
    assert [names.index(name) for name in order] == sorted(names.index(name) for name in order)


def test_drill_heartbeat_fires_on_the_empty_windows_published_zero(
    drill_run: subprocess.CompletedProcess[str],
) -> None:
    detail = step_details(drill_run)["heartbeat"]
    assert "RecordsAnalyzed=0 published" in detail
    assert "→ ALARM" in detail and "alerts topic" in detail


def test_drill_drift_alarm_is_evaluated_from_the_published_metric(drill_run: subprocess.CompletedProcess[str]) -> None:
    details = step_details(drill_run)
    assert "drifted ['monthly_spend']" in details["monitor"]
    # LocalStack's evaluation sets "Threshold Crossed"; the drill never forces this alarm's state.
    assert "→ ALARM on the published FeatureDriftRatio" in details["alarm"]
    assert "(Threshold Crossed)" in details["alarm"]


def test_drill_plays_the_real_time_path_where_it_belongs() -> None:
    # The stream needs the feature group (features); serving needs the approved, dispatched version and the
    # stream's online records, and comes before the monitor judges the endpoint's traffic.
    names = [name for name, _ in STEPS]
    assert names.index("features") < names.index("stream") < names.index("register")
    assert names.index("dispatch") < names.index("serve") < names.index("heartbeat")


def test_drill_stream_fills_the_online_store_and_rejects_the_invalid_row(
    drill_run: subprocess.CompletedProcess[str],
) -> None:
    detail = step_details(drill_run)["stream"]
    assert "(KMS," in detail and "update_online_features" in detail
    assert "entities' newest features online" in detail
    assert re.search(r"late row of \S+ \(\S+\) did not overwrite", detail)
    # The failure queue's message, as the drill read it back: the reason and the field it names.
    assert "failure queue (KMS): InvalidRecord (field monthly_spend" in detail
    assert "lacks column 'monthly_spend'" in detail
    # The consumer's own log lines are captured with its metrics, not printed among the steps.
    assert '"record rejected"' not in drill_run.stdout


def test_drill_serves_an_entity_with_the_probability_of_its_raw_row_in_rows_mode(
    drill_run: subprocess.CompletedProcess[str],
) -> None:
    detail = step_details(drill_run)["serve"]
    served = re.search(r"(?P<entity>\S+) → (?P<served>[0-9.]+) = rows mode on its raw row (?P<rows>[0-9.]+)", detail)
    assert served, detail
    assert served["served"] == served["rows"]  # the drill compares the full floats; here, their printed digits
    assert 0.0 < float(served["served"]) < 1.0
    assert "entity mode" in detail and "unknown entity → 404" in detail
