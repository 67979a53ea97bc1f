"""Monitoring layer: a served model's drift and quality monitor, alarms and dashboard.

``settings`` (stack key ``models[].monitoring``, and the checks that involve the endpoint; ``cadence`` reads a
schedule's period), ``component`` (:class:`ModelMonitoring`: the engine, alarm wiring), ``platform_monitor``
(engine ``platform``: the monitoring pipeline, its role and schedule; the definition itself is
:mod:`pipelines.monitoring`), ``jobs`` (engine ``model-monitor``: Model Monitor's job definitions and
schedules), ``reports`` (the drift reports and their Glue table's schema), ``iam`` (the monitors' roles) and
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
