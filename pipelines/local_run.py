"""Run preprocess → train → evaluate end to end on this machine, the way SageMaker would run them.

Each step runs as its own ``python`` process from the published code bundle (:mod:`pipelines.bundle`),
in a folder laid out like its container (``processing/input/...``, ``ml/input/data/<channel>``,
``ml/model``), with only the base paths moved by environment variables. Nothing is imported from this
repository by the steps, so a green local run also shows that the bundle is self-sufficient.

``python -m pipelines.local_run [WORKDIR]`` runs it on a seeded synthetic ``customer_activity`` dataset
(:func:`synthetic_customer_activity`) and prints where the artifacts are.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.bundle import TRAINING_ARCHIVE, write_code_bundle
from pipelines.settings import DEFAULT_HYPERPARAMETERS

PLANS = ("basic", "standard", "premium")


class LocalRunError(RuntimeError):
    """A step script exited with an error; the message holds its output."""


@dataclass(frozen=True)
class LocalRunResult:
    """Where a local run left its artifacts."""

    workdir: Path
    splits: Mapping[str, Path]
    statistics: Path
    constraints: Path
    preprocess_report: Path
    model_dir: Path
    model_archive: Path
    evaluation: Path
    predictions: Path

    def metric(self, name: str) -> float:
        """A metric's value from ``evaluation.json``."""
        report = json.loads(self.evaluation.read_text(encoding="utf-8"))
        return float(report["binary_classification_metrics"][name]["value"])


def synthetic_customer_activity(customers: int = 500, days: int = 3, seed: int = 7) -> pd.DataFrame:
    """Seeded raw ``customer_activity`` records with a learnable churn signal.

    Churn is more likely with few sessions, short sessions, many support tickets and the basic plan;
    about a third of the customers churn.
    """
    rng = np.random.default_rng(seed)
    n = customers * days
    customer = np.repeat([f"c{i:05d}" for i in range(customers)], days)
    day = np.tile(np.arange(days), customers)
    engagement = np.repeat(rng.normal(0.0, 1.0, customers), days)  # a per-customer trait
    sessions = np.clip(np.round(rng.poisson(6, n) * np.exp(0.4 * engagement)), 0, 60).astype(int)
    minutes = np.round(sessions * rng.gamma(4.0, 3.0 * np.exp(0.2 * engagement)), 2)
    tickets = rng.poisson(np.exp(-0.3 * engagement) * 0.8, n)
    plan_index = np.repeat(rng.choice(3, customers, p=[0.45, 0.35, 0.2]), days)
    spend = np.round(np.array([19.0, 49.0, 99.0])[plan_index] + rng.normal(0.0, 5.0, n), 2)
    per_session = np.divide(minutes, sessions, out=np.zeros(n), where=sessions > 0)
    logit = 2.5 - 0.5 * sessions - 0.1 * per_session + 1.2 * tickets - 1.0 * plan_index + rng.normal(0, 0.5, n)
    churned = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    event_time = [f"2024-05-{d + 1:02d}T00:00:00Z" for d in day]
    return pd.DataFrame(
        {
            "customer_id": customer,
            "event_time": event_time,
            "sessions": sessions,
            "minutes_active": minutes,
            "support_tickets": tickets,
            "plan": [PLANS[i] for i in plan_index],
            "monthly_spend": spend,
            "churned": churned,
        }
    )


def _run(script: Path, args: list[str], env: Mapping[str, str], cwd: Path) -> None:
    # A clean interpreter: nothing from this repository on the path, only what the container would have.
    child_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    child_env.update(env)
    child_env["PYTHONHASHSEED"] = "0"
    child_env["OMP_NUM_THREADS"] = "1"  # small data: threads only add overhead, and results stay exact
    result = subprocess.run(  # noqa: S603 (our own scripts, with the interpreter running this code)
        [sys.executable, str(script), *args], cwd=cwd, env=child_env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LocalRunError(f"{script.name} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")


def _stage_processing(root: Path, code: Path, script: str) -> Path:
    """A processing container's /opt/ml/processing with the script and the mlops package staged."""
    (root / "input" / "code").mkdir(parents=True, exist_ok=True)
    shutil.copy2(code / script, root / "input" / "code" / script)
    shutil.copytree(code / "mlops", root / "input" / "code_lib" / "mlops")
    return root / "input" / "code" / script


def run_local(
    workdir: Path,
    raw: pd.DataFrame | None = None,
    *,
    feature_spec: str = "customer-churn",
    hyperparameters: Mapping[str, int | float | str] | None = None,
    data_version: str = "local",
    code_version: str = "local",
    seed: int = 42,
) -> LocalRunResult:
    """Run the three steps on ``raw`` (default: :func:`synthetic_customer_activity`) under ``workdir``.

    Raises:
        LocalRunError: a step failed (its output is in the message).
    """
    workdir = Path(workdir)
    code = write_code_bundle(workdir / "code")
    raw_dir = workdir / "data" / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    (synthetic_customer_activity() if raw is None else raw).to_csv(raw_dir / "customer_activity.csv", index=False)

    # preprocess (processing job)
    pre = workdir / "preprocess" / "processing"
    script = _stage_processing(pre, code, "preprocess.py")
    shutil.copytree(raw_dir, pre / "input" / "raw")
    _run(
        script,
        ["--feature-spec", feature_spec, "--data-version", data_version, "--seed", str(seed)],
        {"MLOPS_PROCESSING_ROOT": str(pre), "MLOPS_CODE_DIR": str(pre / "input" / "code_lib")},
        cwd=pre,
    )
    outputs = pre / "output"

    # train (training job, script mode: sourcedir.tar.gz extracted to /opt/ml/code, run from there)
    ml = workdir / "train" / "ml"
    for channel in ("train", "validation"):
        shutil.copytree(outputs / channel, ml / "input" / "data" / channel)
    (ml / "input" / "data" / "code").mkdir(parents=True)
    shutil.copy2(code / TRAINING_ARCHIVE, ml / "input" / "data" / "code" / TRAINING_ARCHIVE)
    with tarfile.open(ml / "input" / "data" / "code" / TRAINING_ARCHIVE, "r:gz") as tar:
        tar.extractall(ml / "code", filter="data")
    values = {**DEFAULT_HYPERPARAMETERS, **(hyperparameters or {})}
    config = {key: str(value) for key, value in values.items()}  # SageMaker stores every value as a string
    config.update({"feature_spec": feature_spec, "data_version": data_version, "code_version": code_version})
    (ml / "input" / "config").mkdir(parents=True)
    (ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps(config, sort_keys=True), "utf-8")
    _run(ml / "code" / "train.py", [], {"SAGEMAKER_BASE_DIR": str(ml)}, cwd=ml / "code")

    # SageMaker uploads /opt/ml/model as model.tar.gz
    archive = workdir / "train" / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted((ml / "model").iterdir()):
            tar.add(path, arcname=path.name)

    # evaluate (processing job)
    ev = workdir / "evaluate" / "processing"
    script = _stage_processing(ev, code, "evaluate.py")
    (ev / "input" / "model").mkdir(parents=True)
    shutil.copy2(archive, ev / "input" / "model" / "model.tar.gz")
    shutil.copytree(outputs / "test", ev / "input" / "test")
    _run(script, [], {"MLOPS_PROCESSING_ROOT": str(ev), "MLOPS_CODE_DIR": str(ev / "input" / "code_lib")}, cwd=ev)

    evaluation = ev / "output" / "evaluation"
    return LocalRunResult(
        workdir=workdir,
        splits={split: outputs / split / f"{split}.csv" for split in ("train", "validation", "test")},
        statistics=outputs / "baseline" / "statistics.json",
        constraints=outputs / "baseline" / "constraints.json",
        preprocess_report=outputs / "baseline" / "preprocess-report.json",
        model_dir=ml / "model",
        model_archive=archive,
        evaluation=evaluation / "evaluation.json",
        predictions=evaluation / "predictions.csv",
    )


def main(argv: list[str] | None = None) -> int:
    import tempfile

    args = sys.argv[1:] if argv is None else argv
    workdir = Path(args[0]) if args else Path(tempfile.mkdtemp(prefix="pipeline-local-"))
    result = run_local(workdir)
    print(f"auc {result.metric('auc'):.4f}")
    for name in ("model_dir", "evaluation", "predictions", "statistics", "constraints"):
        print(f"{name}: {getattr(result, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
