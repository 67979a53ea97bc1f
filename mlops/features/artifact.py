"""The model artifact contract between the training step and the inference container.

The training step writes ``model.joblib`` (a fitted estimator whose ``predict_proba`` takes features in
``spec.feature_names`` order) and ``model-metadata.json`` beside it; the inference container refuses
an artifact whose metadata does not match the feature spec it serves. Both sides use this module (it
travels in the training code bundle and in the container image), so the contract is written once.
Standard library only: it runs in SageMaker's scikit-learn image.
"""

from __future__ import annotations

from typing import Any

from mlops.features.spec import FeatureSpec

MODEL_FILE = "model.joblib"
METADATA_FILE = "model-metadata.json"
REQUIRED_METADATA: tuple[str, ...] = (
    "feature_spec",
    "feature_spec_version",
    "feature_names",
    "framework",
    "framework_version",
)
"""Keys the inference container needs in ``model-metadata.json``."""


def model_metadata(spec: FeatureSpec, *, framework_version: str, **extra: Any) -> dict[str, Any]:
    """The metadata of a scikit-learn model trained on ``spec``'s features (``extra`` keys are kept as given)."""
    return {
        "feature_spec": spec.name,
        "feature_spec_version": spec.version,
        "feature_names": list(spec.feature_names),
        "target": spec.target,
        "framework": "scikit-learn",
        "framework_version": framework_version,
        **extra,
    }
