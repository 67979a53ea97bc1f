"""The responders' archives: deterministic bytes, the contracted layout, and importable with the Lambda runtime's
libraries only (stdlib + boto3 and its dependencies)."""

from __future__ import annotations

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
