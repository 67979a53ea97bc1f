"""The responders' archives: deterministic bytes, the contracted layout, and importable with the Lambda runtime's
libraries only (stdlib + boto3 and its dependencies)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import botocore
import dateutil
import jmespath
import pytest
import s3transfer
import six
import urllib3

from lambdas.package import FUNCTIONS, LambdaArchive, PackagingError, build_archive

# What the Lambda Python runtime provides besides the standard library.
RUNTIME_MODULES = (boto3, botocore, jmespath, s3transfer, dateutil, six, urllib3)


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LambdaArchive]:
    out = tmp_path_factory.mktemp("archives")
    return {function: build_archive(function, out) for function in FUNCTIONS}


def test_building_twice_gives_identical_bytes_and_hash(tmp_path: Path) -> None:
    first = build_archive("retrain_on_alarm", tmp_path / "one")
    second = build_archive("retrain_on_alarm", tmp_path / "two")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert (first.sha256_base64, first.size) == (second.sha256_base64, second.size)


def test_a_cached_archive_is_reused(tmp_path: Path) -> None:
    first = build_archive("notify_pipeline", tmp_path)
    modified = first.path.stat().st_mtime_ns
    assert build_archive("notify_pipeline", tmp_path) == first
    assert first.path.stat().st_mtime_ns == modified


@pytest.mark.parametrize("function", FUNCTIONS)
def test_archive_holds_app_shared_code_and_powertools(archives: dict[str, LambdaArchive], function: str) -> None:
    names = zipfile.ZipFile(archives[function].path).namelist()
    assert "app.py" in names
    assert "responder_common/__init__.py" in names
    assert "aws_lambda_powertools/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_entries_are_sorted_with_fixed_dates_and_modes(archives: dict[str, LambdaArchive]) -> None:
    infos = zipfile.ZipFile(archives["dispatch_deployment"].path).infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_functions_get_different_archives(archives: dict[str, LambdaArchive]) -> None:
    assert len({a.sha256_base64 for a in archives.values()}) == len(FUNCTIONS)


def test_unknown_function_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match=r"^unknown responder 'nope'; expected one of retrain_on_alarm"):
        build_archive("nope", tmp_path)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_imports_inside_the_archive_with_only_the_runtimes_libraries(
    archives: dict[str, LambdaArchive], function: str, tmp_path: Path
) -> None:
    code = tmp_path / "task"
    runtime = tmp_path / "runtime"
    zipfile.ZipFile(archives[function].path).extractall(code)
    runtime.mkdir()
    for module in RUNTIME_MODULES:
        source = Path(module.__file__ or "")
        source = source.parent if source.name == "__init__.py" else source
        (runtime / source.name).symlink_to(source)
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import app\n"
        "assert callable(app.handler)\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in {'pydantic', 'lambdas', 'infra', 'pulumi'})\n"
        "assert not leaked, leaked\n"
        "print(app.__file__)\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "eu-west-1", "AWS_EC2_METADATA_DISABLED": "true"}
    # -I -S: no site-packages, no user site, no PYTHONPATH: only the archive, the runtime's libraries and stdlib.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(code), str(runtime)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(code / "app.py")


# ------------------------------------------------------------------------------- update_online_features
STREAM_FUNCTION = "update_online_features"


def run_in_extracted_archive(archive: LambdaArchive, script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with ``-I -S`` and a ``sys.path`` of the extracted archive plus the runtime's libraries only."""
    code, runtime = tmp_path / "task", tmp_path / "runtime"
    zipfile.ZipFile(archive.path).extractall(code)
    runtime.mkdir()
    for module in RUNTIME_MODULES:
        source = Path(module.__file__ or "")
        source = source.parent if source.name == "__init__.py" else source
        (runtime / source.name).symlink_to(source)
    env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "eu-west-1", "AWS_EC2_METADATA_DISABLED": "true"}
    prelude = "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + script, str(code), str(runtime)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def test_stream_consumer_archive_carries_the_pure_feature_code_only(archives: dict[str, LambdaArchive]) -> None:
    names = set(zipfile.ZipFile(archives[STREAM_FUNCTION].path).namelist())
    assert {
        "mlops/__init__.py",
        "mlops/features/__init__.py",
        "mlops/features/spec.py",
        "mlops/features/registry.py",
        "mlops/features/customer_churn.py",
        "mlops/featurestore/__init__.py",
        "mlops/featurestore/errors.py",
        "mlops/featurestore/records.py",
    } <= names
    # ingestion (numpy), training sets and online lookup are not packaged; nor is any other part of mlops.
    assert not {"mlops/featurestore/ingest.py", "mlops/featurestore/offline.py", "mlops/featurestore/online.py"} & names
    assert not [
        n
        for n in names
        if n.startswith("mlops/")
        and not n.startswith(("mlops/features/", "mlops/featurestore/"))
        and n != "mlops/__init__.py"
    ]


def test_the_responders_archives_carry_no_library_code(archives: dict[str, LambdaArchive]) -> None:
    for function in ("retrain_on_alarm", "notify_pipeline", "dispatch_deployment"):
        assert not [n for n in zipfile.ZipFile(archives[function].path).namelist() if n.startswith("mlops/")]


def test_stream_consumer_computes_features_inside_the_archive_without_pandas_or_numpy(
    archives: dict[str, LambdaArchive], tmp_path: Path
) -> None:
    from mlops.features import get_spec
    from mlops.features.spec import feature_record
    from mlops.featurestore.records import to_put_record_payload, validate_record

    row = {
        "customer_id": "c-1",
        "event_time": "2024-05-01T12:00:00Z",
        "sessions": 4,
        "minutes_active": 30.5,
        "support_tickets": 1,
        "plan": "premium",
        "monthly_spend": 49.99,
        "churned": 0,
    }
    script = (
        "import json\n"
        "import app\n"
        "targets = app.Settings.from_env({'FEATURE_TARGETS': json.dumps([{'model': 'churn', "
        "'featureGroupName': 'g', 'featureSpec': 'customer-churn'}]), 'FAILURE_QUEUE_URL': 'q'}).targets\n"
        f"row = json.loads({json.dumps(json.dumps(row))})\n"
        "print(json.dumps(app.to_put_record_payload(targets[0].spec, app.features(targets[0], row))))\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'numpy', 'pandas', 'pyarrow', 'lambdas', 'infra'})\n"
        "assert not heavy, heavy\n"
        "assert 'mlops.featurestore.ingest' not in sys.modules\n"
    )
    result = run_in_extracted_archive(archives[STREAM_FUNCTION], script, tmp_path)
    assert result.returncode == 0, result.stderr
    spec = get_spec("customer-churn")
    expected = to_put_record_payload(spec, validate_record(spec, feature_record(spec, row)))
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected
