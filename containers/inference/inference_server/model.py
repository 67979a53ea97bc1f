"""Loading and checking the model artifact written by the training step.

The artifact contract: ``<model_dir>/model.joblib`` (a fitted scikit-learn estimator whose
``predict_proba`` takes features in ``spec.feature_names`` order) and ``<model_dir>/model-metadata.json``
(``feature_spec``, ``feature_spec_version``, ``feature_names``, ``target``, ``framework``,
``framework_version``). Anything that would make the server answer wrongly is refused here, at
start-up, with a :class:`ModelLoadError` naming the file and the problem.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
import sklearn.exceptions

from mlops.features.artifact import METADATA_FILE, MODEL_FILE, REQUIRED_METADATA
from mlops.features.registry import get_spec
from mlops.features.spec import FeatureSpec, FeatureSpecError

from .errors import ModelLoadError


@dataclass(frozen=True)
class LoadedModel:
    """A checked model: the estimator, its feature spec, its metadata, and which probabilities to return."""

    estimator: Any
    spec: FeatureSpec
    metadata: dict[str, Any]
    positive_class: int | None  # column of predict_proba returned for binary models; None: all columns

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities per row: the positive class (binary models) or every class (multi-class)."""
        probabilities = self.estimator.predict_proba(matrix)
        if self.positive_class is None:
            return probabilities
        return probabilities[:, self.positive_class]


def read_metadata(model_dir: Path) -> dict[str, Any]:
    """The checked ``model-metadata.json`` of ``model_dir`` (``ModelLoadError`` naming the file otherwise)."""
    path = model_dir / METADATA_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path}: metadata file is missing (the training step writes it next to {MODEL_FILE})")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: cannot read metadata: {exc}") from None
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"{path}: metadata must be a JSON object, got {type(metadata).__name__}")
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ModelLoadError(f"{path}: metadata lacks {missing}")
    return metadata


def check_metadata(metadata: dict[str, Any], path: Path) -> FeatureSpec:
    """The feature spec ``metadata`` names, after checking it matches that spec and this image's framework."""
    if metadata["framework"] != "scikit-learn":
        raise ModelLoadError(f"{path}: framework is {metadata['framework']!r}; this server serves 'scikit-learn'")
    if str(metadata["framework_version"]) != sklearn.__version__:
        raise ModelLoadError(
            f"{path}: model was trained with scikit-learn {metadata['framework_version']}, this image has "
            f"{sklearn.__version__}; pickles are not portable across versions: retrain, or build the image with "
            f"scikit-learn=={metadata['framework_version']}"
        )
    try:
        spec = get_spec(str(metadata["feature_spec"]))
    except FeatureSpecError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    if metadata["feature_spec_version"] != spec.version:
        raise ModelLoadError(
            f"{path}: model was trained on feature spec '{spec.name}' version {metadata['feature_spec_version']!r}, "
            f"this image has version {spec.version}"
        )
    expected = list(spec.feature_names)
    if metadata["feature_names"] != expected:
        raise ModelLoadError(
            f"{path}: feature_names {metadata['feature_names']!r} differ from spec '{spec.name}' "
            f"version {spec.version}: {expected!r}"
        )
    non_numeric = [f.name for f in spec.features if f.type == "String"]
    if non_numeric:
        # The model contract is a numeric matrix: encoding String features belongs in the spec's transform.
        raise ModelLoadError(
            f"{path}: feature spec '{spec.name}' has String features {non_numeric}; this server needs numbers"
        )
    if "target" in metadata and metadata["target"] != spec.target:
        raise ModelLoadError(f"{path}: target {metadata['target']!r} differs from spec '{spec.name}': {spec.target!r}")
    return spec


def load_estimator(path: Path, feature_names: tuple[str, ...]) -> tuple[Any, int | None]:
    """The estimator in ``path`` and its positive-class column, after a trial prediction."""
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file is missing")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", sklearn.exceptions.InconsistentVersionWarning)
            # Our own training step writes this artifact: it is trusted input, like any pickled model.
            estimator = joblib.load(path)
    except Exception as exc:  # a corrupt pickle raises almost anything (EOFError, UnpicklingError, KeyError, ...)
        raise ModelLoadError(f"{path}: cannot load model: {type(exc).__name__}: {exc}") from None
    if not callable(getattr(estimator, "predict_proba", None)):
        raise ModelLoadError(f"{path}: {type(estimator).__name__} has no predict_proba")
    width = len(feature_names)
    if getattr(estimator, "n_features_in_", width) != width:
        raise ModelLoadError(f"{path}: model takes {estimator.n_features_in_} features, the spec has {width}")
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if fitted_names is not None:
        if list(fitted_names) != list(feature_names):
            raise ModelLoadError(
                f"{path}: model was fitted on columns {list(fitted_names)}, the spec has {feature_names}"
            )
        # Same columns, same order: an array is the right input, so sklearn's per-call warning is noise.
        warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
    try:
        trial = estimator.predict_proba(np.zeros((1, width)))
    except Exception as exc:  # the estimator is not usable with the contract's input
        raise ModelLoadError(f"{path}: predict_proba fails on a {width}-feature vector: {exc}") from None
    classes = trial.shape[1] if trial.ndim == 2 else 0
    if classes < 2:
        raise ModelLoadError(f"{path}: predict_proba returned shape {trial.shape}, expected (rows, classes >= 2)")
    return estimator, (1 if classes == 2 else None)


def load_model(model_dir: str | Path) -> LoadedModel:
    """Load and check the artifact in ``model_dir``; ``ModelLoadError`` says what is wrong and where."""
    directory = Path(model_dir)
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: model directory does not exist (set SM_MODEL_DIR or --model-dir)")
    metadata = read_metadata(directory)
    spec = check_metadata(metadata, directory / METADATA_FILE)
    estimator, positive_class = load_estimator(directory / MODEL_FILE, spec.feature_names)
    return LoadedModel(estimator=estimator, spec=spec, metadata=metadata, positive_class=positive_class)
