"""Evaluate step: score the test split with the trained model.

Runs as ``python3 evaluate.py`` in the SageMaker scikit-learn processing container:

- input: the training job's ``model.tar.gz`` in ``<root>/input/model`` (an extracted model directory works
  too), the test split in ``<root>/input/test``, the ``mlops`` package in ``$MLOPS_CODE_DIR``;
- output, in ``<root>/output/evaluation``: ``evaluation.json`` (Model Monitor's model-quality layout:
  ``binary_classification_metrics.<metric>.value``; the pipeline's condition step reads it) and
  ``predictions.csv`` (each test row's identifier, event time, target, features and predicted probability,
  so serving can later be checked against evaluation).

``<root>`` is ``/opt/ml/processing``; ``--processing-root`` (or ``$MLOPS_PROCESSING_ROOT``) and the per-path
options move it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score, roc_auc_score

LOG = logging.getLogger("evaluate")
DEFAULT_ROOT = "/opt/ml/processing"
PROBABILITY_COLUMN = "probability"
DECISION_THRESHOLD = 0.5


def import_feature_spec(name: str, code_dir: str | None) -> Any:
    if code_dir and os.path.isdir(code_dir) and code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    from mlops.features import get_spec

    return get_spec(name)


def unpack_model(model_dir: Path, scratch: Path) -> Path:
    """The directory holding model.joblib: ``model_dir`` itself, or its extracted ``model.tar.gz``."""
    if (model_dir / "model.joblib").is_file():
        return model_dir
    archive = model_dir / "model.tar.gz"
    if not archive.is_file():
        raise SystemExit(f"{model_dir} holds neither model.joblib nor model.tar.gz")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(scratch, filter="data")
    return scratch


def _metric(value: float) -> dict[str, Any]:
    # Model Monitor's layout; "NaN" (a string: JSON has no NaN) where no deviation was computed.
    return {"value": float(value), "standard_deviation": "NaN"}


def binary_metrics(truth: np.ndarray, probability: np.ndarray) -> dict[str, Any]:
    """Model-quality metrics of binary predictions, in Model Monitor's ``binary_classification_metrics``."""
    predicted = (probability >= DECISION_THRESHOLD).astype(int)
    (tn, fp), (fn, tp) = confusion_matrix(truth, predicted, labels=[0, 1])
    return {
        "confusion_matrix": {"0": {"0": int(tn), "1": int(fp)}, "1": {"0": int(fn), "1": int(tp)}},
        "auc": _metric(roc_auc_score(truth, probability)),
        "accuracy": _metric(accuracy_score(truth, predicted)),
        "precision": _metric(precision_score(truth, predicted, zero_division=0)),
        "recall": _metric(recall_score(truth, predicted, zero_division=0)),
        "f1": _metric(f1_score(truth, predicted, zero_division=0)),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processing-root", default=os.environ.get("MLOPS_PROCESSING_ROOT", DEFAULT_ROOT))
    parser.add_argument("--model-dir", help="model.tar.gz or model directory (default: <root>/input/model)")
    parser.add_argument("--test-dir", help="test split (default: <root>/input/test)")
    parser.add_argument("--output-dir", help="evaluation outputs (default: <root>/output/evaluation)")
    parser.add_argument("--code-dir", default=os.environ.get("MLOPS_CODE_DIR"), help="directory holding mlops/")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    root = Path(args.processing_root)
    model_dir = Path(args.model_dir) if args.model_dir else root / "input" / "model"
    test_dir = Path(args.test_dir) if args.test_dir else root / "input" / "test"
    output_dir = Path(args.output_dir) if args.output_dir else root / "output" / "evaluation"
    code_dir = args.code_dir or str(root / "input" / "code_lib")

    with tempfile.TemporaryDirectory() as scratch:
        unpacked = unpack_model(model_dir, Path(scratch))
        metadata = json.loads((unpacked / "model-metadata.json").read_text(encoding="utf-8"))
        model = joblib.load(unpacked / "model.joblib")

    spec = import_feature_spec(metadata["feature_spec"], code_dir)
    feature_names = list(metadata["feature_names"])
    if feature_names != list(spec.feature_names) or metadata["feature_spec_version"] != spec.version:
        raise SystemExit(
            f"model was trained on {metadata['feature_spec']} v{metadata['feature_spec_version']} {feature_names}; "
            f"the code has v{spec.version} {list(spec.feature_names)}"
        )
    files = sorted(test_dir.glob("*.csv"))
    if not files:
        raise SystemExit(f"no CSV files in {test_dir}")
    test = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)

    probability = model.predict_proba(test[feature_names])[:, 1]
    truth = test[spec.target].astype(int).to_numpy()
    report = {
        "binary_classification_metrics": binary_metrics(truth, probability),
        "dataset": {"rows": len(test), "positives": int(truth.sum())},
        "model": {
            key: metadata.get(key)
            for key in (
                "feature_spec",
                "feature_spec_version",
                "data_version",
                "code_version",
                "framework_version",
                "estimator",
            )
        },
        "decision_threshold": DECISION_THRESHOLD,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "evaluation.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", "utf-8")
    predictions = test[[spec.record_identifier, spec.event_time, spec.target, *feature_names]].copy()
    predictions[PROBABILITY_COLUMN] = probability
    predictions.to_csv(output_dir / "predictions.csv", index=False, float_format="%.17g")
    LOG.info("evaluated %d rows: auc %.4f", len(test), report["binary_classification_metrics"]["auc"]["value"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
