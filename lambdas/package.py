"""Deterministic deployment archives of the responders: same code, same bytes, same hash.

An archive holds, at its root, the function's folder (``app.py``, handler ``app.handler``), the shared
``responder_common/`` package and a vendored copy of the installed, pure-Python ``aws_lambda_powertools``
(plus ``typing_extensions``, which powertools imports and the Lambda runtime does not provide; ``boto3``,
``botocore`` and ``jmespath`` come with the runtime). Entries are sorted, dated 1980-01-01, mode 0644, without
``__pycache__`` or ``.pyc`` files, so the zip's bytes, and the ``sha256_base64`` Pulumi compares
(``source_code_hash``), change only when code changes: previews show no spurious Lambda updates.

A function that computes features (``update_online_features``) also carries the pure-Python part of the runtime
library it imports (:data:`LIBRARY_CODE`): ``mlops/features/`` and the record validation of
``mlops/featurestore/``. That package's own ``__init__`` imports ingestion and training-set code, which need numpy
and pandas (the Lambda runtime has neither), so the archive holds a docstring-only ``__init__`` in its place
(:data:`LIBRARY_STUBS`); the modules the function imports never import pandas or numpy at import time, which the
packaging test checks by importing the handler from the extracted archive with only the runtime's libraries.

Archives are cached by the hash of their contents: ``<out_dir>/<function>-<content hash>.zip`` is written once
(atomically, so concurrent test runs do not collide) and reused by every later program run.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LAMBDAS_DIR = Path(__file__).resolve().parent
REPO_ROOT = LAMBDAS_DIR.parent
DEFAULT_OUT_DIR = REPO_ROOT / "build" / "lambdas"
"""Where the infrastructure writes archives (gitignored)."""

FUNCTIONS = ("retrain_on_alarm", "notify_pipeline", "dispatch_deployment", "update_online_features")
SHARED_PACKAGE = "responder_common"
LIBRARY_CODE: dict[str, tuple[str, ...]] = {
    "update_online_features": (
        "mlops/__init__.py",
        "mlops/features",
        "mlops/featurestore/errors.py",
        "mlops/featurestore/records.py",
    ),
}
"""Files and folders of the runtime library (paths from the repository root) a function's archive carries."""
LIBRARY_STUBS: dict[str, bytes] = {
    "mlops/featurestore/__init__.py": (
        b'"""Feature Store runtime, as packaged into a Lambda archive: the pure modules only (``errors``,\n'
        b"``records``); ingestion, training sets and online lookup need numpy or pandas and are not packaged.\n"
        b'"""\n'
    ),
}
"""Archive entries written from these bytes instead of the repository's file (see the module docstring)."""
VENDORED_PACKAGES = ("aws_lambda_powertools",)
VENDORED_MODULES = ("typing_extensions",)

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--
EXCLUDED_DIRS = frozenset({"__pycache__"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


class PackagingError(Exception):
    """The function folder or a vendored package cannot be found."""


@dataclass(frozen=True)
class LambdaArchive:
    """A built archive: its path, the base64 SHA-256 of its bytes (Lambda's CodeSha256) and its size."""

    path: Path
    sha256_base64: str
    size: int


def _walk(root: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    """(archive name, file) for every file under ``root``, skipping caches; names use ``/``."""
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        for filename in sorted(filenames):
            if filename.endswith(EXCLUDED_SUFFIXES):
                continue
            path = Path(directory) / filename
            relative = path.relative_to(root).as_posix()
            yield (f"{prefix}/{relative}" if prefix else relative), path


def _installed(name: str) -> Path:
    """The installed location of a package (its folder) or a single-file module."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise PackagingError(f"{name} is not installed; it is vendored into every responder archive")
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


Source = Path | bytes
"""An archive entry's content: a file, or the bytes of a stub."""


def archive_entries(function: str) -> list[tuple[str, Source]]:
    """Every (archive name, source file or bytes) of ``function``'s archive, sorted by name.

    Raises :class:`PackagingError` for an unknown function or a missing vendored package.
    """
    folder = LAMBDAS_DIR / function
    if function not in FUNCTIONS or not (folder / "app.py").is_file():
        raise PackagingError(f"unknown responder {function!r}; expected one of {', '.join(FUNCTIONS)}")
    entries: dict[str, Source] = dict(_walk(folder, ""))
    entries.update(_walk(LAMBDAS_DIR / SHARED_PACKAGE, SHARED_PACKAGE))
    for relative in LIBRARY_CODE.get(function, ()):
        source = REPO_ROOT / relative
        if source.is_dir():
            entries.update(_walk(source, relative))
        elif source.is_file():
            entries[relative] = source
        else:
            raise PackagingError(f"{relative} (runtime library code of {function}) does not exist")
    if function in LIBRARY_CODE:
        entries.update(LIBRARY_STUBS)
    for package in VENDORED_PACKAGES:
        entries.update(_walk(_installed(package), package))
    for module in VENDORED_MODULES:
        path = _installed(module)
        entries[path.name] = path
    return sorted(entries.items())


def _read(source: Source) -> bytes:
    return source if isinstance(source, bytes) else source.read_bytes()


def _content_hash(entries: list[tuple[str, Source]]) -> str:
    digest = hashlib.sha256()
    for name, source in entries:
        data = _read(source)
        digest.update(name.encode())
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _write_zip(entries: list[tuple[str, Source]], target: Path) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, source in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.create_system = 3  # unix, so external_attr carries the mode whatever the build OS
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, _read(source), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def build_archive(function: str, out_dir: Path) -> LambdaArchive:
    """Build (or reuse) the deterministic archive of ``function`` in ``out_dir``.

    Inputs: a folder name under ``lambdas/`` (see :data:`FUNCTIONS`) and an output folder (created if needed).
    Output: the :class:`LambdaArchive`. Errors: :class:`PackagingError` for an unknown function.
    """
    entries = archive_entries(function)
    key = _content_hash(entries)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{function}-{key[:20]}.zip"
    if not target.is_file():
        handle, temporary = tempfile.mkstemp(dir=out_dir, prefix=f".{function}-", suffix=".zip")
        os.close(handle)
        try:
            _write_zip(entries, Path(temporary))
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    data = target.read_bytes()
    return LambdaArchive(
        path=target, sha256_base64=base64.b64encode(hashlib.sha256(data).digest()).decode(), size=len(data)
    )
