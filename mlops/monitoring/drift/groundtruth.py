"""Ground-truth labels in Model Monitor's format, keyed by the id they are joined on.

Each line of a ground-truth ``.jsonl`` file is::

    {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<id>"}, "eventVersion": "0"}

where ``eventId`` is the captured request's ``inferenceId`` when the caller set one, else its ``eventId``
(SageMaker's "Ingest Ground Truth labels and merge them with predictions"). ``data`` holds the label, or one
label per record for a batch request (``"1,0,1"`` in CSV, ``[1, 0, 1]`` in JSON). Files live under
``<prefix>/yyyy/mm/dd/hh/``, the hour the labels were *collected*: labels for a window's requests arrive at or
after the window's start, so with a window only files from its start on are read (all of them otherwise).

Labels are held in memory (the join needs them when the captured requests stream by); malformed lines are
counted, never fatal.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime

from mlops.monitoring.drift.profile import MAX_EXAMPLES, binary_label
from mlops.monitoring.drift.sources import Storage, UnreadableObjectError, Window


@dataclass
class GroundTruth:
    """Labels by join id, and what could not be used."""

    source: str
    labels: dict[str, tuple[int, ...]] = field(default_factory=dict)
    files: int = 0
    lines: int = 0
    malformed: int = 0
    duplicates: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)

    def as_report(self) -> dict[str, object]:
        return {
            "source": self.source,
            "files": self.files,
            "lines": self.lines,
            "labels": len(self.labels),
            "malformed": self.malformed,
            "duplicates": self.duplicates,
            "malformed_examples": list(self.examples),
        }


def load_ground_truth(location: str, storage: Storage, since: datetime | None) -> GroundTruth:
    """Every label under ``location`` (files collected at or after ``since`` when it is given). A later line
    for the same id replaces an earlier one (files are read in path order, i.e. collection order)."""
    truth = GroundTruth(source=location)
    window = Window(start=since, end=None) if since is not None else None
    for path in storage.listing(location, window, "--ground-truth").locations:
        truth.files += 1
        try:
            for number, line in enumerate(storage.lines(path), start=1):
                if not line.strip():
                    continue
                truth.lines += 1
                try:
                    key, labels = parse_ground_truth_line(line)
                except ValueError as exc:
                    _malformed(truth, f"{path}:{number}", str(exc))
                    continue
                if key in truth.labels:
                    truth.duplicates += 1
                truth.labels[key] = labels
        except UnreadableObjectError as exc:
            _malformed(truth, path, f"cannot read it ({exc})")
    return truth


def _malformed(truth: GroundTruth, where: str, message: str) -> None:
    truth.malformed += 1
    if len(truth.examples) < MAX_EXAMPLES:
        truth.examples.append({"location": where, "message": message[:300]})


def parse_ground_truth_line(line: bytes | str) -> tuple[str, tuple[int, ...]]:
    """``(join id, labels)`` of one ground-truth line; ``ValueError`` says what is wrong with it."""
    try:
        event = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a JSON line") from None
    if not isinstance(event, dict):
        raise ValueError("not a JSON object")
    metadata = event.get("eventMetadata")
    key = metadata.get("eventId") if isinstance(metadata, dict) else None
    if not isinstance(key, str) or not key:
        raise ValueError("no eventMetadata.eventId")
    data = event.get("groundTruthData")
    if not isinstance(data, dict) or not isinstance(data.get("data"), str | int | float | bool | list):
        raise ValueError("no groundTruthData.data")
    return key, _labels(data["data"], str(data.get("encoding") or "CSV").upper())


def _labels(data: object, encoding: str) -> tuple[int, ...]:
    if isinstance(data, str) and encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ValueError("groundTruthData.data is not valid base64") from None
    if isinstance(data, str) and encoding == "JSON":
        try:
            data = json.loads(data)
        except ValueError:
            raise ValueError("groundTruthData.data is not JSON (encoding JSON)") from None
    if isinstance(data, str):
        values: list[object] = [cell for cell in data.replace("\n", ",").split(",") if cell.strip()]
    elif isinstance(data, list):
        values = list(data)
    else:
        values = [data]
    labels = [binary_label(value) for value in values]
    if not labels or any(label is None for label in labels):
        raise ValueError(f"groundTruthData.data {data!r} is not binary labels (0/1)")
    return tuple(label for label in labels if label is not None)
