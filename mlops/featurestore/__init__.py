"""Feature Store runtime: ingestion, record validation, point-in-time training sets, online lookup.

Every function takes its boto3 client (or session) from the caller and uses the model's
:class:`mlops.features.FeatureSpec`, so ingestion, training and inference share one definition of
the features; :func:`runtime_client` makes the runtime client with botocore's standard retry mode,
the one retry layer ingestion relies on. Nothing here imports Pulumi.
"""

from mlops.featurestore.errors import (
    FeatureStoreError,
    InvalidRecordError,
    InvalidRecordsError,
    RecordNotFoundError,
)
from mlops.featurestore.ingest import FailedRecord, IngestionReport, ingest_records, runtime_client
from mlops.featurestore.offline import build_training_set, point_in_time_join, point_in_time_sql
from mlops.featurestore.online import get_online_vector
from mlops.featurestore.records import to_put_record_payload, validate_record

__all__ = [
    "FailedRecord",
    "FeatureStoreError",
    "IngestionReport",
    "InvalidRecordError",
    "InvalidRecordsError",
    "RecordNotFoundError",
    "build_training_set",
    "get_online_vector",
    "ingest_records",
    "point_in_time_join",
    "point_in_time_sql",
    "runtime_client",
    "to_put_record_payload",
    "validate_record",
]
