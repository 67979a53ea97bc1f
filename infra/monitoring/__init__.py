"""Monitoring layer: a served model's monitors, alarms and dashboard.

``settings`` (stack key ``models[].monitoring``, and the checks that involve the endpoint), ``component``
(:class:`ModelMonitoring`: Model Monitor jobs and schedules, alarm wiring), ``iam`` (the jobs' role) and
``dashboard``. What each alarm watches is defined in :mod:`infra.alarms`.
"""

from infra.monitoring.component import (
    ModelMonitoring,
    ModelMonitoringArgs,
    analyzer_image_uri,
    native_provider,
    record_preprocessor_key,
)
from infra.monitoring.iam import s3_object_arn, split_s3_uri

__all__ = [
    "ModelMonitoring",
    "ModelMonitoringArgs",
    "analyzer_image_uri",
    "native_provider",
    "record_preprocessor_key",
    "s3_object_arn",
    "split_s3_uri",
]
