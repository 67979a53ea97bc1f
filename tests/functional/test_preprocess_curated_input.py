"""The training pipeline reads what the curated zone holds: the preprocess step on a table written by
``mlops.ingestion`` (partitioned Parquet, a commit marker beside it), downloaded the way the processing job's
``InputDataUri`` input downloads it (every object under ``s3://<curated bucket>/<table prefix>``).

This is what new-data retraining starts the pipeline with (``InputDataUri`` = the whole table).
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from mlops.ingestion import COMMITS_PREFIX, write_curated_dataset
from pipelines.local_run import _run, _stage_processing, write_code_bundle
from tools.customer_activity import curated_customer_activity, customer_activity_table

REGION = "eu-west-1"
BUCKET = "acme-it-curated"
TABLE = customer_activity_table()


def download_prefix(s3: object, prefix: str, into: Path) -> list[str]:
    """What a processing job's S3Prefix input does: every object under ``prefix``, relative paths kept."""
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):  # type: ignore[attr-defined]
        for item in page.get("Contents", []):
            target = into / item["Key"][len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(BUCKET, item["Key"], str(target))  # type: ignore[attr-defined]
            keys.append(item["Key"])
    return keys


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, list[str]]:
    """Two loads of the table (days 1-2, then day 3), downloaded and preprocessed; the report, the rows, the keys."""
    frame = curated_customer_activity(customers=300)
    workdir = tmp_path_factory.mktemp("curated-preprocess")
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        s3 = session.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        session.client("glue").create_database(DatabaseInput={"Name": "acme_it_curated"})
        for batch, days in (("load-1", ["2024-05-01", "2024-05-02"]), ("load-2", ["2024-05-03"])):
            part = pd.DataFrame(frame[frame["dt"].isin(days)]).reset_index(drop=True)
            write_curated_dataset(part, TABLE, bucket=BUCKET, database="acme_it_curated", boto3_session=session,
                                  batch_id=batch)  # fmt: skip
        s3.put_object(Bucket=BUCKET, Key=f"{TABLE.location_prefix}_SUCCESS", Body=b"")  # a writer's marker
        root = workdir / "processing"
        code = write_code_bundle(workdir / "code")
        script = _stage_processing(root, code, "preprocess.py")
        keys = download_prefix(s3, TABLE.location_prefix, root / "input" / "raw")
    _run(
        script,
        ["--feature-spec", "customer-churn", "--data-version", "load-2", "--seed", "42"],
        {"MLOPS_PROCESSING_ROOT": str(root), "MLOPS_CODE_DIR": str(root / "input" / "code_lib")},
        cwd=root,
    )
    return root / "output", frame, keys


def test_the_input_is_the_whole_table_and_never_a_marker(preprocessed: tuple[Path, pd.DataFrame, list[str]]) -> None:
    _, _, keys = preprocessed
    assert {k.split("/")[1] for k in keys if k.endswith(".parquet")} == {
        "dt=2024-05-01",
        "dt=2024-05-02",
        "dt=2024-05-03",
    }
    assert not any(k.startswith(COMMITS_PREFIX) for k in keys)


def test_preprocess_reads_every_row_of_every_load(preprocessed: tuple[Path, pd.DataFrame, list[str]]) -> None:
    outputs, frame, _ = preprocessed
    rows = sum(len(pd.read_csv(outputs / split / f"{split}.csv")) for split in ("train", "validation", "test"))
    report = json.loads((outputs / "baseline" / "preprocess-report.json").read_text())
    assert rows == len(frame)
    assert report["data_version"] == "load-2"


def test_hive_partition_folders_become_columns_and_hidden_files_are_skipped(tmp_path: Path) -> None:
    from pipelines.steps.preprocess import read_raw_records

    (tmp_path / "dt=2024-05-01").mkdir()
    pd.DataFrame({"customer_id": ["c1"], "sessions": [3]}).to_parquet(
        tmp_path / "dt=2024-05-01" / "b-00000.snappy.parquet"
    )
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / "_temporary").mkdir()
    (tmp_path / "_temporary" / "x.csv").write_text("customer_id\nc9\n")
    records = read_raw_records(tmp_path)
    assert records.to_dict(orient="records") == [{"customer_id": "c1", "sessions": 3, "dt": "2024-05-01"}]
