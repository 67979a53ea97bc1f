"""Online lookup for inference: the feature vector the model was trained on, from the online store."""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import ClientError

from mlops.features.spec import FeatureSpec, FeatureSpecError, Value, record_to_vector
from mlops.featurestore.errors import FeatureStoreError, RecordNotFoundError


class GetRecordClient(Protocol):
    """What the lookup needs of a ``sagemaker-featurestore-runtime`` client."""

    def get_record(self, **kwargs: Any) -> Any: ...


def get_online_vector(
    client: GetRecordClient, feature_group_name: str, spec: FeatureSpec, record_id: str
) -> list[Value]:
    """The model input vector of ``record_id``: values in ``spec.feature_names`` order, typed per spec.

    It goes through :func:`mlops.features.spec.record_to_vector`, the function the training set's
    vectors go through, so a record gives the same vector at training and at serving time.
    Raises :class:`RecordNotFoundError` when the online store has no such record (never written,
    deleted or expired: ``get_record`` then answers without a ``Record``), and
    :class:`FeatureStoreError` when the record lacks a feature or holds a value of the wrong type, or
    the call fails (for example ``ResourceNotFound`` for an unknown feature group; the AWS error
    code is in the message).
    """
    try:
        response = client.get_record(
            FeatureGroupName=feature_group_name,
            RecordIdentifierValueAsString=record_id,
            FeatureNames=list(spec.feature_names),
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        raise FeatureStoreError(
            f"get_record {feature_group_name}/{record_id} failed: {code}: {error.get('Message', exc)}"
        ) from exc
    values = {item["FeatureName"]: item["ValueAsString"] for item in response.get("Record") or []}
    if not values:
        raise RecordNotFoundError(feature_group_name, record_id)
    try:
        return record_to_vector(spec, values)
    except FeatureSpecError as exc:
        raise FeatureStoreError(f"online record '{record_id}' of {feature_group_name}: {exc}") from None
