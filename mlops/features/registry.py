"""The bundled feature specifications, by name: what a stack's ``featureSpec`` and a model's metadata name.

The registry is a plain mapping built from the spec modules listed below; importing a spec module
registers nothing, and :mod:`mlops.features.spec` imports no spec. A stack names a spec that is not here:
the config loader refuses it, listing the names that are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from mlops.features import customer_churn
from mlops.features.spec import FeatureSpec, FeatureSpecError


def index_specs(specs: Iterable[FeatureSpec]) -> Mapping[str, FeatureSpec]:
    """``specs`` by name, read-only. Raises :class:`FeatureSpecError` naming both modules of a duplicate name."""
    by_name: dict[str, FeatureSpec] = {}
    for spec in specs:
        taken = by_name.get(spec.name)
        if taken is not None:
            raise FeatureSpecError(
                f"feature spec name '{spec.name}' is used twice: by {taken.transform.__module__} "
                f"(version {taken.version}) and by {spec.transform.__module__} (version {spec.version})"
            )
        by_name[spec.name] = spec
    return MappingProxyType(by_name)


# To add a model's spec, write its module (mlops/features/<model>.py, defining SPEC) and add it here.
SPECS: Mapping[str, FeatureSpec] = index_specs((customer_churn.SPEC,))
"""Every bundled feature spec by name."""


def registered_specs() -> dict[str, FeatureSpec]:
    """Every bundled spec by name (a copy)."""
    return dict(SPECS)


def get_spec(name: str) -> FeatureSpec:
    """The spec called ``name``; the :class:`FeatureSpecError` for an unknown one lists the registered names."""
    if name not in SPECS:
        raise FeatureSpecError(f"unknown feature spec '{name}'; registered: {', '.join(sorted(SPECS))}")
    return SPECS[name]
