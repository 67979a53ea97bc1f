"""Feature specifications: the single source of truth for training and serving features.

``get_spec`` and ``registered_specs`` come from :mod:`mlops.features.registry`, which imports every bundled
spec module; they load on first use, so importing this package (or :mod:`mlops.features.spec`, which the
Model Monitor record preprocessor embeds on its own) imports no spec.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlops.features.spec import Feature, FeatureSpec, FeatureSpecError

if TYPE_CHECKING:
    from mlops.features.registry import get_spec, registered_specs

__all__ = ["Feature", "FeatureSpec", "FeatureSpecError", "get_spec", "registered_specs"]

_FROM_REGISTRY = frozenset({"get_spec", "registered_specs"})


def __getattr__(name: str) -> Any:
    if name in _FROM_REGISTRY:
        return getattr(importlib.import_module("mlops.features.registry"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
