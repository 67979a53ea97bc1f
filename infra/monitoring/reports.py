"""The drift reports the platform's monitor writes, and the Glue table that makes their history queryable.

Each run of the drift job writes one JSON object on one line to
``s3://<monitoring bucket>/drift-reports/model=<model>/date=<YYYY-MM-DD>/<...>.json``. The catalog registers
one table over every model's reports (:func:`infra.catalog.Catalog`, in the monitoring zone's database), with
partition projection on ``model`` and ``date``: Athena computes the partitions from the table's parameters, so
no crawler and no ``MSCK REPAIR`` is needed, and a new day's reports are queryable as soon as they land.

Plain data only (no resources): the catalog and the monitoring component both read it.
"""

from __future__ import annotations

from collections.abc import Sequence

REPORTS_PREFIX = "drift-reports/"
"""Key prefix of every model's reports in the monitoring bucket (the job's ``--out``)."""
REPORTS_TABLE = "drift_reports"
"""The Glue table over the reports (monitoring zone database)."""

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
"""Athena's OpenX JSON SerDe: one JSON object per line, nested structs, maps and arrays."""
TEXT_INPUT_FORMAT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

FEATURE_RESULT = "struct<score:double,threshold:double,drifted:boolean,method:string>"
QUALITY = "struct<matched:int,auc:double,accuracy:double,precision:double,recall:double,f1:double>"

REPORT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("endpoint", "string", "Endpoint whose captured requests were analyzed."),
    ("window_start", "string", "Start of the analyzed window (ISO 8601, UTC)."),
    ("window_end", "string", "End of the analyzed window: the monitoring execution's start (ISO 8601, UTC)."),
    ("generated_at", "string", "When the report was written (ISO 8601, UTC)."),
    ("records", "int", "Rows analyzed (a captured request carrying N rows counts N)."),
    ("malformed", "int", "Captured lines or requests that could not be used."),
    ("features", f"map<string,{FEATURE_RESULT}>", "Drift per feature: score, threshold, drifted, method."),
    ("drifted", "array<string>", "Features whose score reached their threshold."),
    ("model_quality", QUALITY, "Quality over predictions joined with ground truth; null without labels."),
)
"""Data columns (name, Hive type, comment), as the drift job's report holds them. ``model`` is a partition."""
PARTITION_KEYS: tuple[tuple[str, str, str], ...] = (
    ("model", "string", "Model name (the report's model=<model> folder)."),
    ("date", "string", "UTC day of the window's end, YYYY-MM-DD (the report's date=<day> folder)."),
)
DEFAULT_HISTORY = "2020-01-01"
"""First projected day when the monitoring zone keeps reports forever (no expiry)."""


def report_partition(model: str) -> str:
    """Key prefix of one model's reports (what its monitor may write): ``drift-reports/model=<model>/``."""
    return f"{REPORTS_PREFIX}model={model}/"


def projection_parameters(location: str, models: Sequence[str], expire_after_days: int | None) -> dict[str, str]:
    """Table parameters: JSON classification and partition projection over ``models`` and the report days.

    ``location`` is the table's ``s3://.../drift-reports/`` URI. The day range starts where the monitoring zone's
    lifecycle still keeps reports (``expire_after_days``) or at :data:`DEFAULT_HISTORY`, and ends today.
    """
    start = f"NOW-{expire_after_days}DAYS" if expire_after_days is not None else DEFAULT_HISTORY
    return {
        "EXTERNAL": "TRUE",
        "classification": "json",
        "projection.enabled": "true",
        "projection.model.type": "enum",
        "projection.model.values": ",".join(sorted(models)),
        "projection.date.type": "date",
        "projection.date.format": "yyyy-MM-dd",
        "projection.date.range": f"{start},NOW",
        "projection.date.interval": "1",
        "projection.date.interval.unit": "DAYS",
        "storage.location.template": f"{location.rstrip('/')}/model=${{model}}/date=${{date}}/",
    }
