"""SageMaker data-capture and ground-truth lines built from raw ``customer_activity`` rows: what the drift job reads.

Rows come from :func:`pipelines.local_run.synthetic_customer_activity`, the seeded generator of the real
``customer-churn`` raw columns. A line is what SageMaker writes for one invocation: the request as the client
sent it (CSV with a header row, or JSON ``{"instances": [...]}``), the inference server's response
(``{"predictions": [...]}`` or one CSV row per record) and the event metadata.

:func:`entity_capture_line` writes what an entity-mode endpoint's capture holds for the same rows: a request of
entity ids (``customer_id``) and a JSON answer that also carries each entity's scored features (the spec's
features of the row, what the online store serves for it).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from mlops.features import get_spec
from mlops.features.spec import compute_features

SPEC = get_spec("customer-churn")
RAW_COLUMNS = ("customer_id", "event_time", "sessions", "minutes_active", "support_tickets", "monthly_spend", "plan")


def churn_probability(row: Mapping[str, Any]) -> float:
    """A stand-in model: the generator's churn logit without its noise (so labels agree with it, mostly)."""
    sessions = float(row["sessions"])
    per_session = float(row["minutes_active"]) / sessions if sessions > 0 else 0.0
    tier = {"basic": 0, "standard": 1, "premium": 2}.get(str(row["plan"]), 0)
    logit = 2.5 - 0.5 * sessions - 0.1 * per_session + 1.2 * float(row["support_tickets"]) - 1.0 * tier
    return 1.0 / (1.0 + math.exp(-logit))


def request_body(rows: Sequence[Mapping[str, Any]], content_type: str) -> str:
    """The request body a client sends for ``rows`` (raw columns only)."""
    if content_type == "text/csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(RAW_COLUMNS)
        writer.writerows([[row[c] for c in RAW_COLUMNS] for row in rows])
        return out.getvalue()
    instances = [{c: _plain(row[c]) for c in RAW_COLUMNS} for row in rows]
    return json.dumps(instances[0] if len(instances) == 1 else {"instances": instances})


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def capture_line(
    rows: Sequence[Mapping[str, Any]],
    *,
    event_id: str,
    inference_id: str | None = None,
    inference_time: str = "2024-05-01T12:00:00Z",
    content_type: str = "text/csv",
    response_type: str = "application/json",
    base64_input: bool = False,
    probabilities: Sequence[float] | None = None,
) -> str:
    """One data-capture JSON line for a request carrying ``rows``."""
    body = request_body(rows, content_type)
    encoding = "CSV" if content_type == "text/csv" else "JSON"
    if base64_input:
        body, encoding = base64.b64encode(body.encode()).decode(), "BASE64"
    scores = list(probabilities) if probabilities is not None else [churn_probability(row) for row in rows]
    if response_type == "application/json":
        output = {
            "observedContentType": "application/json",
            "mode": "OUTPUT",
            "data": json.dumps({"predictions": scores}),
            "encoding": "JSON",
        }
    else:
        output = {
            "observedContentType": "text/csv",
            "mode": "OUTPUT",
            "data": "".join(f"{s!r}\n" for s in scores),
            "encoding": "CSV",
        }
    metadata = {"eventId": event_id, "inferenceTime": inference_time}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    event = {
        "captureData": {
            "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": body, "encoding": encoding},
            "endpointOutput": output,
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }
    return json.dumps(event)


def capture_lines(
    frame: pd.DataFrame, *, batch: int = 1, prefix: str = "e", entity: bool = False, **options: Any
) -> Iterator[str]:
    """One capture line per ``batch`` rows of ``frame`` (event ids ``<prefix>-<n>``); ``entity``: entity mode's."""
    rows = frame.to_dict(orient="records")
    line = entity_capture_line if entity else capture_line
    for number, start in enumerate(range(0, len(rows), batch)):
        yield line(rows[start : start + batch], event_id=f"{prefix}-{number}", **options)


def entity_request_body(rows: Sequence[Mapping[str, Any]], content_type: str) -> str:
    """An entity-mode request for ``rows``: their ``customer_id`` values (one per line in CSV, no header)."""
    ids = [str(row["customer_id"]) for row in rows]
    if content_type == "text/csv":
        return "".join(f"{entity_id}\n" for entity_id in ids)
    instances = [{"entityId": entity_id} for entity_id in ids]
    return json.dumps(instances[0] if len(instances) == 1 else {"instances": instances})


def entity_capture_line(
    rows: Sequence[Mapping[str, Any]],
    *,
    event_id: str,
    inference_id: str | None = None,
    inference_time: str = "2024-05-01T12:00:00Z",
    content_type: str = "application/json",
    response_type: str = "application/json",
    probabilities: Sequence[float] | None = None,
) -> str:
    """One data-capture line of an entity-mode endpoint: ids in, predictions and (JSON) scored features out."""
    scores = list(probabilities) if probabilities is not None else [churn_probability(row) for row in rows]
    if response_type == "application/json":
        features = [compute_features(SPEC, row) for row in rows]
        data, encoding = json.dumps({"predictions": scores, "features": features}), "JSON"
    else:
        data, encoding = "".join(f"{s!r}\n" for s in scores), "CSV"
    metadata = {"eventId": event_id, "inferenceTime": inference_time}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    body = entity_request_body(rows, content_type)
    event = {
        "captureData": {
            "endpointInput": {
                "observedContentType": content_type,
                "mode": "INPUT",
                "data": body,
                "encoding": "CSV" if content_type == "text/csv" else "JSON",
            },
            "endpointOutput": {
                "observedContentType": response_type,
                "mode": "OUTPUT",
                "data": data,
                "encoding": encoding,
            },
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }
    return json.dumps(event)


def ground_truth_line(event_id: str, labels: Sequence[int]) -> str:
    """One Model Monitor ground-truth line (one label, or one per record of a batch request)."""
    data = ",".join(str(int(label)) for label in labels)
    return json.dumps(
        {
            "groundTruthData": {"data": data, "encoding": "CSV"},
            "eventMetadata": {"eventId": event_id},
            "eventVersion": "0",
        }
    )


def hour_path(hour: datetime) -> str:
    """``yyyy/mm/dd/hh``, the capture layout's hour folders."""
    return hour.strftime("%Y/%m/%d/%H")


def write_lines(path: Path, lines: Sequence[str] | Iterator[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
    return path


def hours_between(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(hours=i) for i in range(count)]
