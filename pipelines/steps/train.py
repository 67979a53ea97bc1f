"""Train step: fit the scikit-learn model on the preprocessed features.

Runs as ``train.py`` in the SageMaker scikit-learn training container (script mode: the
sagemaker-training-toolkit extracts ``sourcedir.tar.gz``, which also holds the ``mlops`` package, into
``/opt/ml/code`` and runs this file from there):

- input: ``/opt/ml/input/data/train/*.csv`` and ``/opt/ml/input/data/validation/*.csv`` (preprocess output);
- hyperparameters: ``/opt/ml/input/config/hyperparameters.json``, overridden by ``SM_HP_<NAME>`` variables
  and ``--<name> <value>`` arguments (the toolkit passes all three);
- output: ``/opt/ml/model/model.joblib`` (a fitted estimator with ``predict_proba`` over the features in
  ``spec.feature_names`` order) and ``/opt/ml/model/model-metadata.json`` (the artifact contract the
  inference container checks), plus validation metrics in ``/opt/ml/output/data/validation-metrics.json``.

``/opt/ml`` is ``$SAGEMAKER_BASE_DIR`` or ``--base-dir`` when set; ``SM_CHANNEL_*``, ``SM_MODEL_DIR`` and
``SM_OUTPUT_DATA_DIR`` (or the matching options) move single paths, which is how tests run it locally.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

LOG = logging.getLogger("train")
DEFAULT_BASE = "/opt/ml"

# Hyperparameters of the estimator and their types; anything else in the hyperparameters is metadata.
HYPERPARAMETERS: dict[str, type] = {
    "learning_rate": float,
    "max_iter": int,
    "max_leaf_nodes": int,
    "min_samples_leaf": int,
    "l2_regularization": float,
}
DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.05,
    "max_iter": 100,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
    "random_state": 42,
}
METADATA_KEYS = ("feature_spec", "data_version", "code_version")


def _decode(value: Any) -> Any:
    """A hyperparameter value as SageMaker stores it (always a string), JSON-decoded when possible."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def read_hyperparameters(config_file: Path, argv: list[str]) -> dict[str, Any]:
    """hyperparameters.json, then ``SM_HP_*`` variables, then ``--name value`` arguments (last wins)."""
    values: dict[str, Any] = {}
    if config_file.is_file():
        values.update({k: _decode(v) for k, v in json.loads(config_file.read_text(encoding="utf-8")).items()})
    for key, value in os.environ.items():
        if key.startswith("SM_HP_"):
            values[key[len("SM_HP_") :].lower()] = _decode(value)
    parser = argparse.ArgumentParser(add_help=False)
    for name in (*HYPERPARAMETERS, "random_state", *METADATA_KEYS):
        parser.add_argument(f"--{name}", dest=name, default=None)
    known, _ = parser.parse_known_args(argv)
    values.update({k: _decode(v) for k, v in vars(known).items() if v is not None})
    return values


def estimator_parameters(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The estimator's keyword arguments, typed, with defaults for what is not given."""
    parameters = dict(DEFAULTS)
    for name, kind in HYPERPARAMETERS.items():
        if name in hyperparameters:
            try:
                parameters[name] = kind(hyperparameters[name])
            except (TypeError, ValueError):
                raise SystemExit(
                    f"hyperparameter {name}={hyperparameters[name]!r} is not a valid {kind.__name__}"
                ) from None
    if "random_state" in hyperparameters:
        parameters["random_state"] = int(hyperparameters["random_state"])
    return parameters


def import_feature_spec(name: str) -> Any:
    """The registered FeatureSpec ``name`` (``mlops`` travels next to this file in sourcedir.tar.gz)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    from mlops.features import get_spec

    return get_spec(name)


def read_split(directory: Path) -> pd.DataFrame:
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise SystemExit(f"no CSV files in {directory}")
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def parse_paths(argv: list[str]) -> argparse.Namespace:
    base = os.environ.get("SAGEMAKER_BASE_DIR", DEFAULT_BASE)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-dir", default=base)
    parser.add_argument("--train-dir", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation-dir", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--output-data-dir", default=os.environ.get("SM_OUTPUT_DATA_DIR"))
    paths, _ = parser.parse_known_args(argv)
    root = Path(paths.base_dir)
    paths.train_dir = Path(paths.train_dir or root / "input" / "data" / "train")
    paths.validation_dir = Path(paths.validation_dir or root / "input" / "data" / "validation")
    paths.model_dir = Path(paths.model_dir or root / "model")
    paths.output_data_dir = Path(paths.output_data_dir or root / "output" / "data")
    paths.hyperparameters_file = root / "input" / "config" / "hyperparameters.json"
    return paths


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    paths = parse_paths(argv)
    hyperparameters = read_hyperparameters(paths.hyperparameters_file, argv)
    if "feature_spec" not in hyperparameters:
        raise SystemExit("hyperparameter feature_spec (the FeatureSpec name) is required")
    spec = import_feature_spec(str(hyperparameters["feature_spec"]))
    feature_names = list(spec.feature_names)

    train = read_split(paths.train_dir)
    validation = read_split(paths.validation_dir)
    parameters = estimator_parameters(hyperparameters)
    model = HistGradientBoostingClassifier(**parameters)
    # A DataFrame in spec order: the fitted estimator records feature_names_in_, which serving checks.
    model.fit(train[feature_names], train[spec.target].astype(int))

    probabilities = model.predict_proba(validation[feature_names])[:, 1]
    validation_auc = float(roc_auc_score(validation[spec.target].astype(int), probabilities))
    # SageMaker metric definitions can scrape this line.
    print(f"validation:auc={validation_auc:.6f}", flush=True)

    from mlops.features.artifact import METADATA_FILE, MODEL_FILE, model_metadata  # importable once load_spec ran

    paths.model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, paths.model_dir / MODEL_FILE)
    metadata = model_metadata(
        spec,
        framework_version=sklearn.__version__,
        estimator=type(model).__name__,
        hyperparameters=parameters,
        positive_class=1,
        data_version=str(hyperparameters.get("data_version", "unknown")),
        code_version=str(hyperparameters.get("code_version", "unknown")),
        training_rows=len(train),
        validation_auc=validation_auc,
    )
    (paths.model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n", "utf-8")
    paths.output_data_dir.mkdir(parents=True, exist_ok=True)
    (paths.output_data_dir / "validation-metrics.json").write_text(
        json.dumps({"auc": validation_auc, "rows": len(validation)}, indent=2) + "\n", "utf-8"
    )
    LOG.info("trained %s on %d rows; validation auc %.4f", type(model).__name__, len(train), validation_auc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
