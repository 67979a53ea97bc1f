"""Feature specifications: the single source of truth for training and serving features."""

from mlops.features.spec import Feature, FeatureSpec, FeatureSpecError, get_spec, registered_specs

__all__ = ["Feature", "FeatureSpec", "FeatureSpecError", "get_spec", "registered_specs"]
