"""Settings of a model's feature group (stack key ``models[].featureStore``) and the checks on its feature spec."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from infra.types import Section
from mlops.features import FeatureSpec, FeatureSpecError, get_spec, registered_specs
from mlops.features.spec import feature_store_problems


class FeatureStoreSettings(Section):
    """A model's SageMaker feature group: which stores it has and how they keep data."""

    online_store: bool = Field(
        default=False, description="Low-latency online store for real-time inference (billed per request and storage)."
    )
    offline_store: bool = Field(
        default=True, description="Offline store in the lake's features bucket, registered in Glue (training sets)."
    )
    online_ttl_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Hard-delete online records this many days after their event time; null keeps them until overwritten. Online store only.",
    )
    offline_table_format: Literal["Iceberg", "Glue"] = Field(
        default="Iceberg",
        description="Table format of the offline store: Iceberg (compactable, recommended) or Glue (Hive).",
    )


def resolve_spec(model: str, spec_name: str) -> FeatureSpec:
    """The registered feature spec ``spec_name`` of ``model``; ``ValueError`` naming the registered ones if unknown."""
    try:
        return get_spec(spec_name)
    except FeatureSpecError:
        raise ValueError(
            f"model '{model}': featureSpec '{spec_name}' is not a registered feature spec; "
            f"registered: {', '.join(sorted(registered_specs())) or '(none)'}"
        ) from None


def feature_group_problems(model: str, spec: FeatureSpec, store: FeatureStoreSettings) -> list[str]:
    """Why ``spec`` with ``store`` cannot be ``model``'s feature group (empty when it can), each naming the key."""
    problems = feature_store_problems(spec)
    if problems:
        return [f"model '{model}': featureSpec '{spec.name}' cannot be a feature group: {'; '.join(problems)}"]
    found: list[str] = []
    if not (store.online_store or store.offline_store):
        found.append(
            f"model '{model}': featureStore.onlineStore and featureStore.offlineStore are both false; "
            "enable at least one store"
        )
    if store.online_ttl_days is not None and not store.online_store:
        found.append(
            f"model '{model}': featureStore.onlineTtlDays={store.online_ttl_days} needs "
            "featureStore.onlineStore=true (the TTL applies to online records only); remove it or enable the online store"
        )
    return found
