"""The feature specification type and its registry.

A :class:`FeatureSpec` names a model's features (with SageMaker Feature Store types), its record
identifier and event time, and the pure transform from one raw record to feature values. The same
object builds the feature group, the training set and the inference vector, so training and serving
cannot compute features differently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FeatureType = Literal["Integral", "Fractional", "String"]


class FeatureSpecError(ValueError):
    """A raw record or a feature vector does not match its specification."""


@dataclass(frozen=True)
class Feature:
    """One feature: name (Feature Store rules: letters, digits, '_'), type and meaning."""

    name: str
    type: FeatureType
    description: str = ""


@dataclass(frozen=True)
class FeatureSpec:
    """A model's features and how to compute them from a raw record."""

    name: str
    version: int
    record_identifier: str
    event_time: str
    features: tuple[Feature, ...]
    transform: Callable[[Mapping[str, Any]], dict[str, Any]] = field(compare=False)
    target: str | None = None
    description: str = ""

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the model's input features, in vector order (identifier and event time excluded)."""
        return tuple(f.name for f in self.features)

    def feature_type(self, name: str) -> FeatureType:
        for f in self.features:
            if f.name == name:
                return f.type
        raise KeyError(name)


_REGISTRY: dict[str, FeatureSpec] = {}


def register(spec: FeatureSpec) -> FeatureSpec:
    """Add ``spec`` to the registry (names are unique)."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise FeatureSpecError(f"feature spec '{spec.name}' is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def registered_specs() -> dict[str, FeatureSpec]:
    """Every registered spec by name (importing the bundled specs first)."""
    from mlops.features import catalog  # noqa: F401  (registers the bundled specs)

    return dict(_REGISTRY)


def get_spec(name: str) -> FeatureSpec:
    """The spec called ``name``; the error lists the registered names."""
    specs = registered_specs()
    if name not in specs:
        raise FeatureSpecError(f"unknown feature spec '{name}'; registered: {', '.join(sorted(specs))}")
    return specs[name]


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
