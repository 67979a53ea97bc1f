"""Preprocess step: raw records → features, train/validation/test split, data-quality baseline.

Runs as ``python3 preprocess.py`` in the SageMaker scikit-learn processing container:

- input: records (CSV, JSON lines or Parquet files, any depth) in ``<root>/input/raw``: a raw-zone prefix, or a
  curated table (partitioned Parquet written by ``mlops.ingestion``; Hive partition folders become columns, hidden
  paths such as ``_SUCCESS`` are skipped);
- the ``mlops`` package (feature specs) in ``$MLOPS_CODE_DIR`` (``<root>/input/code_lib``);
- output: ``<root>/output/{train,validation,test}/<split>.csv`` (identifier, event time, target, features in
  spec order) and ``<root>/output/baseline/{statistics,constraints}.json`` in Model Monitor's format, computed
  on the training split's feature columns, plus ``drift-baseline.json`` (the platform drift job's baseline,
  computed by :func:`mlops.monitoring.drift.compute_baseline`, the code that computes the live statistics)
  and ``preprocess-report.json`` (counts, data version).

``<root>`` is ``/opt/ml/processing``; ``--processing-root`` (or ``$MLOPS_PROCESSING_ROOT``) and the per-path
options move it, which is how tests run the script on local folders.

Rows are assigned to splits by a hash of the record identifier and the seed: a customer's rows are never in
two splits, and the assignment does not depend on the row order or on the other rows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LOG = logging.getLogger("preprocess")
DEFAULT_ROOT = "/opt/ml/processing"
SPLITS = ("train", "validation", "test")
SKETCH_SIZE = 2048  # values kept in a numerical feature's distribution sketch
HISTOGRAM_BUCKETS = 10


def import_feature_spec(name: str, code_dir: str | None) -> Any:
    """The registered FeatureSpec ``name``, importing ``mlops`` from ``code_dir`` when it is given."""
    if code_dir and os.path.isdir(code_dir) and code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    from mlops.features import get_spec

    return get_spec(name)


def drift_baseline(train: pd.DataFrame, spec: Any, data_version: str) -> dict[str, Any]:
    """The platform drift job's baseline of the training split (``mlops`` is importable once the spec is)."""
    from mlops.monitoring.drift import compute_baseline

    return compute_baseline(spec, train, source=f"training split of data version {data_version}")


def is_hidden(relative: Path) -> bool:
    """Whether a path (relative to the input) is hidden the way Hive, Spark, Athena and pyarrow hide them: a part
    starting with ``_`` or ``.`` (``_SUCCESS``, ``_temporary/``, ``.crc``, ``_commits/``): never records."""
    return any(part.startswith(("_", ".")) for part in relative.parts)


def hive_partitions(relative: Path) -> dict[str, str]:
    """The Hive-style partition values in a file's folders (``dt=2024-05-01/part.parquet`` → ``{"dt": ...}``).

    A curated table (``mlops.ingestion``) keeps its partition keys in the folder names, not in the files.
    """
    values: dict[str, str] = {}
    for part in relative.parent.parts:
        key, equals, value = part.partition("=")
        if equals and key:
            values[key] = value
    return values


def read_raw_records(input_dir: Path) -> pd.DataFrame:
    """Every record under ``input_dir`` (``.csv``, ``.json``/``.jsonl``, ``.parquet``), in path order.

    The input is a raw-zone prefix or a curated table (``InputDataUri``: ``s3://<curated bucket>/<table prefix>``,
    partitioned Parquet): hidden paths are skipped and a Parquet file gets the partition columns of its folders
    (as strings) unless it has them itself.
    """
    frames = []
    for path in sorted(p for p in input_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(input_dir)
        if is_hidden(relative):
            LOG.info("skipping %s: hidden (a marker or a writer's temporary file)", path)
            continue
        suffix = path.suffix.lower()
        if suffix == ".csv":
            frames.append(pd.read_csv(path))
        elif suffix in (".json", ".jsonl"):
            frames.append(pd.read_json(path, lines=True))
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
            for key, value in hive_partitions(relative).items():
                if key not in frame.columns:
                    frame[key] = value
            frames.append(frame)
        else:
            LOG.warning("skipping %s: not CSV, JSON lines or Parquet", path)
    if not frames:
        raise SystemExit(f"no raw records under {input_dir} (expected .csv, .jsonl or .parquet files)")
    return pd.concat(frames, ignore_index=True)


def build_features(raw: pd.DataFrame, spec: Any) -> tuple[pd.DataFrame, dict[str, int]]:
    """Apply ``spec.transform`` to every raw record; rows it rejects or without a target are dropped."""
    if spec.target is None:
        raise SystemExit(f"feature spec '{spec.name}' has no target: it cannot produce a training set")
    missing = [c for c in (spec.record_identifier, spec.event_time, spec.target) if c not in raw.columns]
    if missing:
        raise SystemExit(f"raw records lack the columns {missing} that feature spec '{spec.name}' needs")
    rows: list[dict[str, Any]] = []
    dropped = {"missing_target": 0, "rejected_by_transform": 0}
    for record in raw.to_dict(orient="records"):
        target = record.get(spec.target)
        if target is None or (isinstance(target, float) and math.isnan(target)):
            dropped["missing_target"] += 1
            continue
        try:
            features = spec.transform(record)
        except (KeyError, TypeError, ValueError) as exc:  # FeatureSpecError is a ValueError
            dropped["rejected_by_transform"] += 1
            LOG.debug("record %s rejected: %s", record.get(spec.record_identifier), exc)
            continue
        row = {
            spec.record_identifier: str(record[spec.record_identifier]),
            spec.event_time: str(record[spec.event_time]),
            spec.target: int(target),
        }
        row.update({name: features[name] for name in spec.feature_names})
        rows.append(row)
    columns = [spec.record_identifier, spec.event_time, spec.target, *spec.feature_names]
    return pd.DataFrame(rows, columns=columns), dropped


def split_of(identifier: str, seed: int, validation_fraction: float, test_fraction: float) -> str:
    """The split of one record identifier: a stable hash, uniform in [0, 1)."""
    digest = hashlib.sha256(f"{seed}:{identifier}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < test_fraction:
        return "test"
    if position < test_fraction + validation_fraction:
        return "validation"
    return "train"


def _number(value: Any) -> float:
    return float(value) if value is not None and not math.isnan(float(value)) else 0.0


def feature_statistics(frame: pd.DataFrame, spec: Any) -> dict[str, Any]:
    """Model Monitor ``statistics.json`` of the feature columns of ``frame``."""
    features = []
    for name in spec.feature_names:
        column = frame[name]
        inferred = spec.feature_type(name)
        present = int(column.notna().sum())
        common = {"num_present": present, "num_missing": int(len(column) - present)}
        if inferred == "String":
            counts = column.dropna().astype(str).value_counts().sort_index()
            features.append(
                {
                    "name": name,
                    "inferred_type": "String",
                    "string_statistics": {
                        "common": common,
                        "distinct_count": float(len(counts)),
                        "distribution": {
                            "categorical": {"buckets": [{"value": v, "count": int(c)} for v, c in counts.items()]}
                        },
                    },
                }
            )
            continue
        values = column.dropna().astype(float).to_numpy()
        features.append(
            {
                "name": name,
                "inferred_type": inferred,
                "numerical_statistics": {
                    "common": common,
                    "mean": _number(values.mean()) if len(values) else 0.0,
                    "sum": _number(values.sum()),
                    "std_dev": _number(values.std()) if len(values) else 0.0,
                    "min": _number(values.min()) if len(values) else 0.0,
                    "max": _number(values.max()) if len(values) else 0.0,
                    "distribution": {"kll": _kll(values)},
                },
            }
        )
    return {"version": 0.0, "dataset": {"item_count": len(frame)}, "features": features}


def _kll(values: np.ndarray) -> dict[str, Any]:
    """Equal-width histogram plus a sorted sample, in the layout of Model Monitor's KLL distribution."""
    if len(values) == 0:
        return {"buckets": [], "sketch": {"parameters": {"c": 0.64, "k": float(SKETCH_SIZE)}, "data": [[]]}}
    low, high = float(values.min()), float(values.max())
    edges = np.linspace(low, high, HISTOGRAM_BUCKETS + 1) if high > low else np.array([low, high])
    counts, edges = np.histogram(values, bins=edges)
    buckets = [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
        for i in range(len(counts))
    ]
    ordered = np.sort(values)
    if len(ordered) > SKETCH_SIZE:
        ordered = ordered[np.linspace(0, len(ordered) - 1, SKETCH_SIZE).round().astype(int)]
    return {
        "buckets": buckets,
        "sketch": {"parameters": {"c": 0.64, "k": float(SKETCH_SIZE)}, "data": [[float(v) for v in ordered]]},
    }


def feature_constraints(frame: pd.DataFrame, spec: Any) -> dict[str, Any]:
    """Model Monitor ``constraints.json`` suggested from the feature columns of ``frame``."""
    features = []
    for name in spec.feature_names:
        column = frame[name]
        inferred = spec.feature_type(name)
        completeness = float(column.notna().mean()) if len(column) else 1.0
        entry: dict[str, Any] = {"name": name, "inferred_type": inferred, "completeness": completeness}
        if inferred == "String":
            entry["string_constraints"] = {"domains": sorted(column.dropna().astype(str).unique().tolist())}
        else:
            entry["num_constraints"] = {"is_non_negative": bool((column.dropna() >= 0).all())}
        features.append(entry)
    return {
        "version": 0.0,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": 0.1,
                "comparison_method": "Robust",
            },
        },
    }


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processing-root", default=os.environ.get("MLOPS_PROCESSING_ROOT", DEFAULT_ROOT))
    parser.add_argument("--input-dir", help="raw records (default: <root>/input/raw)")
    parser.add_argument("--output-dir", help="outputs (default: <root>/output)")
    parser.add_argument("--code-dir", default=os.environ.get("MLOPS_CODE_DIR"), help="directory holding mlops/")
    parser.add_argument("--feature-spec", required=True)
    parser.add_argument("--data-version", default="unversioned")
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    root = Path(args.processing_root)
    input_dir = Path(args.input_dir) if args.input_dir else root / "input" / "raw"
    output_dir = Path(args.output_dir) if args.output_dir else root / "output"
    code_dir = args.code_dir or str(root / "input" / "code_lib")
    spec = import_feature_spec(args.feature_spec, code_dir)

    raw = read_raw_records(input_dir)
    features, dropped = build_features(raw, spec)
    assignment = features[spec.record_identifier].map(
        lambda identifier: split_of(identifier, args.seed, args.validation_fraction, args.test_fraction)
    )
    counts: dict[str, int] = {}
    for split in SPLITS:
        part = features[assignment == split].sort_values([spec.record_identifier, spec.event_time])
        if part.empty or part[spec.target].nunique() < 2:
            raise SystemExit(f"the {split} split has {len(part)} rows and needs both classes; add data")
        counts[split] = len(part)
        target_dir = output_dir / split
        target_dir.mkdir(parents=True, exist_ok=True)
        part.to_csv(target_dir / f"{split}.csv", index=False)

    train = features[assignment == "train"]
    write_json(output_dir / "baseline" / "statistics.json", feature_statistics(train, spec))
    write_json(output_dir / "baseline" / "constraints.json", feature_constraints(train, spec))
    write_json(output_dir / "baseline" / "drift-baseline.json", drift_baseline(train, spec, args.data_version))
    write_json(
        output_dir / "baseline" / "preprocess-report.json",
        {
            "feature_spec": spec.name,
            "feature_spec_version": spec.version,
            "feature_names": list(spec.feature_names),
            "target": spec.target,
            "data_version": args.data_version,
            "raw_records": len(raw),
            "dropped": dropped,
            "rows": counts,
        },
    )
    LOG.info("features of %d raw records: %s rows per split, dropped %s", len(raw), counts, dropped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
