"""Deterministic deployment archives of the responders: same code, same bytes, same hash.

An archive holds, at its root, the function's folder (``app.py``, handler ``app.handler``), the shared
``responder_common/`` package and a vendored copy of the installed, pure-Python ``aws_lambda_powertools``
(plus ``typing_extensions``, which powertools imports and the Lambda runtime does not provide; ``boto3``,
``botocore`` and ``jmespath`` come with the runtime). Entries are sorted, dated 1980-01-01, mode 0644, without
``__pycache__`` or ``.pyc`` files, so the zip's bytes, and the ``sha256_base64`` Pulumi compares
(``source_code_hash``), change only when code changes: previews show no spurious Lambda updates.

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

FUNCTIONS = ("retrain_on_alarm", "notify_pipeline", "dispatch_deployment")
SHARED_PACKAGE = "responder_common"
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


def archive_entries(function: str) -> list[tuple[str, Path]]:
    """Every (archive name, source file) of ``function``'s archive, sorted by name.

    Raises :class:`PackagingError` for an unknown function or a missing vendored package.
    """
    folder = LAMBDAS_DIR / function
    if function not in FUNCTIONS or not (folder / "app.py").is_file():
        raise PackagingError(f"unknown responder {function!r}; expected one of {', '.join(FUNCTIONS)}")
    entries = dict(_walk(folder, ""))
    entries.update(_walk(LAMBDAS_DIR / SHARED_PACKAGE, SHARED_PACKAGE))
    for package in VENDORED_PACKAGES:
        entries.update(_walk(_installed(package), package))
    for module in VENDORED_MODULES:
        path = _installed(module)
        entries[path.name] = path
    return sorted(entries.items())


def _content_hash(entries: list[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for name, path in entries:
        data = path.read_bytes()
        digest.update(name.encode())
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _write_zip(entries: list[tuple[str, Path]], target: Path) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.create_system = 3  # unix, so external_attr carries the mode whatever the build OS
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


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
