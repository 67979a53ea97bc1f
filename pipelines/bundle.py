"""The step code bundle: what gets published under ``PipelineSettings.code_uri``, byte for byte.

The pipeline definition references code only by ``s3://`` URI (the SDK never uploads at build time), so
publishing is the infrastructure's job: one immutable prefix per code version, for example
``s3://<artifacts>/code/<model>/<git commit>/``, holding

- ``preprocess.py``, ``train.py``, ``evaluate.py``, ``monitor.py``: the step scripts (processing jobs run them
  directly; ``monitor.py`` is the monitoring pipeline's drift job);
- ``mlops/__init__.py``, ``mlops/features/*.py``, ``mlops/monitoring/**/*.py``: the feature specs and the
  monitoring engine (the drift job, and the drift baseline ``preprocess.py`` writes), downloaded by processing
  jobs to ``/opt/ml/processing/input/code_lib/mlops`` (the scripts put that directory on ``sys.path``);
- ``sourcedir.tar.gz``: ``train.py`` and the same ``mlops`` files, the training container's script-mode
  archive (staged as the ``code`` channel, extracted to ``/opt/ml/code``).

:func:`code_bundle` returns these files deterministically (sorted tar members, fixed mtimes, owners and
modes, gzip without timestamp), so the same code gives the same object hashes and Pulumi shows no diff.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from pipelines.settings import STEP_SCRIPTS

REPO_ROOT = Path(__file__).resolve().parent.parent
STEPS_DIR = Path(__file__).resolve().parent / "steps"
TRAINING_ARCHIVE = "sourcedir.tar.gz"


def feature_code_files(repo_root: Path = REPO_ROOT) -> dict[str, bytes]:
    """``mlops/__init__.py``, every module of ``mlops/features`` (the feature specs) and of ``mlops/monitoring``
    at any depth (the drift engine the preprocess and monitor steps run)."""
    files = {"mlops/__init__.py": (repo_root / "mlops" / "__init__.py").read_bytes()}
    for path in sorted((repo_root / "mlops" / "features").glob("*.py")):
        files[f"mlops/features/{path.name}"] = path.read_bytes()
    for path in sorted((repo_root / "mlops" / "monitoring").rglob("*.py")):
        files[path.relative_to(repo_root).as_posix()] = path.read_bytes()
    return files


def _tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def code_bundle(repo_root: Path = REPO_ROOT) -> dict[str, bytes]:
    """Every file to publish under the code prefix, by key relative to it."""
    scripts = {name: (STEPS_DIR / name).read_bytes() for name in STEP_SCRIPTS}
    library = feature_code_files(repo_root)
    bundle = {**scripts, **library}
    bundle[TRAINING_ARCHIVE] = _tar_gz({"train.py": scripts["train.py"], **library})
    return dict(sorted(bundle.items()))


def write_code_bundle(destination: Path, repo_root: Path = REPO_ROOT) -> Path:
    """Write :func:`code_bundle` under ``destination`` (a local stand-in for the S3 code prefix)."""
    for key, content in code_bundle(repo_root).items():
        target = destination / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return destination
