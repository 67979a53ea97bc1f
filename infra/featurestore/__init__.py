"""Feature store layer: a model's SageMaker feature group, built from its feature specification.

``settings`` (stack key ``models[].featureStore``, and the feature-spec checks) and ``component``
(:class:`FeatureStore` with its role).
"""

from infra.featurestore.component import FeatureStore, FeatureStoreArgs, offline_store_prefix

__all__ = ["FeatureStore", "FeatureStoreArgs", "offline_store_prefix"]
