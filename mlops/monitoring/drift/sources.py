"""Where the drift job reads and writes: local paths and ``s3://`` URIs, listed and streamed.

SageMaker writes data capture as JSON lines at ``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``
(UTC hours), and Model Monitor's ground truth uses the same ``yyyy/mm/dd/hh`` layout under its own prefix (the
hour a label was collected, not the hour of the inference). A :class:`Window` selects objects by that hour path.
On S3 with a bounded window only the window's hour prefixes are listed (found under the endpoint and variant
folders), so a run's listing cost does not grow with the capture history; objects are streamed line by line.

Reading problems of the inputs raise :class:`~mlops.monitoring.drift.errors.DriftInputError` (exit 2), except
one unreadable capture object among others, which the analysis counts as malformed
(:class:`UnreadableObjectError`); writing problems raise :class:`~mlops.monitoring.drift.errors.DriftOutputError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlops.monitoring.drift.errors import DriftInputError, DriftOutputError

S3_SCHEME = "s3://"
HOUR_PATH = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")
"""``.../yyyy/mm/dd/hh/<file>`` at the end of a key or path."""
_YEAR = re.compile(r"\d{4}")
_MAX_LAYOUT_DEPTH = 3  # the given prefix, then <endpoint>/, then <variant>/ above the yyyy/ folders
HOUR = timedelta(hours=1)


class UnreadableObjectError(Exception):
    """One capture object could not be read (the analysis counts it and goes on)."""


@dataclass(frozen=True)
class Window:
    """Hours ``[start, end)`` of capture paths to read; ``end=None`` means every hour from ``start`` on."""

    start: datetime
    end: datetime | None

    @classmethod
    def ending(cls, end: datetime, hours: int) -> Window:
        return cls(start=end - hours * HOUR, end=end)

    def covers(self, hour: datetime | None) -> bool:
        if hour is None:
            return False
        return self.start <= hour and (self.end is None or hour < self.end)

    def hours(self) -> list[datetime]:
        """Every whole hour ``h`` with ``start <= h < end`` (a bounded window only)."""
        assert self.end is not None
        first = self.start.replace(minute=0, second=0, microsecond=0)
        if first < self.start:
            first += HOUR
        result = []
        while first < self.end:
            result.append(first)
            first += HOUR
        return result


def parse_instant(text: str, option: str) -> datetime:
    """An ISO-8601 date-time as an aware UTC datetime (a naive one is taken as UTC)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise DriftInputError(f"{option} {text!r} is not an ISO-8601 date-time (e.g. 2024-05-01T13:00:00Z)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def hour_of(path: str) -> datetime | None:
    """The UTC hour a ``.../yyyy/mm/dd/hh/<file>`` path names (``None`` without such a path)."""
    match = HOUR_PATH.search(path)
    if match is None:
        return None
    year, month, day, hour = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return None


def is_s3(location: str) -> bool:
    return location.startswith(S3_SCHEME)


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``("bucket", "key")``."""
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise DriftInputError(f"{uri!r} names no bucket: expected s3://bucket/prefix")
    return bucket, key


@dataclass(frozen=True)
class Listing:
    """The objects a location holds for a window (sorted), and how many it skipped outside the window."""

    locations: tuple[str, ...]
    skipped: int


class Storage:
    """Local files and S3 objects behind one interface. The S3 client is created on first use (boto3 is only
    needed for ``s3://`` locations), or passed in by the caller."""

    def __init__(self, s3_client: Any = None, s3_factory: Callable[[], Any] | None = None) -> None:
        self._s3 = s3_client
        self._s3_factory = s3_factory

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            if self._s3_factory is not None:
                self._s3 = self._s3_factory()
            else:
                import boto3

                self._s3 = boto3.client("s3")
        return self._s3

    # --- reading whole inputs ----------------------------------------------------------------------------

    def read_bytes(self, location: str, option: str) -> bytes:
        """The content of a file or object; :class:`DriftInputError` names ``option`` when it cannot be read."""
        if is_s3(location):
            bucket, key = split_s3(location)
            try:
                return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except _aws_errors() as exc:
                raise DriftInputError(f"{option} {location}: cannot read it ({_describe(exc)})") from None
        path = Path(location)
        if not path.is_file():
            raise DriftInputError(f"{option} {location}: no such file")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise DriftInputError(f"{option} {location}: cannot read it ({exc.strerror})") from None

    def list_files(self, location: str, suffixes: tuple[str, ...], option: str) -> list[str]:
        """Files or objects under a folder or prefix whose names end with one of ``suffixes``, sorted."""
        if is_s3(location):
            bucket, prefix = split_s3(location)
            keys = [k for k in self._s3_keys(bucket, prefix, option) if k.lower().endswith(suffixes)]
            return [f"{S3_SCHEME}{bucket}/{key}" for key in keys]
        root = Path(location)
        if not root.is_dir():
            raise DriftInputError(f"{option} {location}: no such folder")
        try:
            return sorted(str(p) for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
        except OSError as exc:
            raise DriftInputError(f"{option} {location}: cannot list it ({exc.strerror})") from None

    # --- capture and ground-truth objects ------------------------------------------------------------------

    def listing(self, location: str, window: Window | None, option: str, suffix: str = ".jsonl") -> Listing:
        """Objects under ``location`` whose ``yyyy/mm/dd/hh`` path is in ``window`` (every one without a window)."""
        if is_s3(location):
            return self._s3_listing(location, window, option, suffix)
        root = Path(location)
        if not root.is_dir():
            raise DriftInputError(f"{option} {location}: no such folder")
        try:
            files = sorted(p for p in root.rglob(f"*{suffix}") if p.is_file())
        except OSError as exc:
            raise DriftInputError(f"{option} {location}: cannot list it ({exc.strerror})") from None
        if window is None:
            return Listing(tuple(str(p) for p in files), 0)
        # The whole path: --capture may itself be an hour folder (.../2024/05/01/12).
        kept = tuple(str(p) for p in files if window.covers(hour_of(p.as_posix())))
        return Listing(kept, len(files) - len(kept))

    def lines(self, location: str) -> Iterator[bytes]:
        """The lines of one capture or ground-truth object, streamed (line endings removed)."""
        if is_s3(location):
            bucket, key = split_s3(location)
            try:
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
            except _aws_errors() as exc:
                raise UnreadableObjectError(_describe(exc)) from None
            try:
                yield from body.iter_lines(chunk_size=1 << 16)
            except _aws_errors() as exc:  # a stream broken mid-object
                raise UnreadableObjectError(_describe(exc)) from None
            return
        try:
            with open(location, "rb") as handle:
                for line in handle:
                    yield line.rstrip(b"\r\n")
        except OSError as exc:
            raise UnreadableObjectError(exc.strerror or str(exc)) from None

    def _s3_listing(self, location: str, window: Window | None, option: str, suffix: str) -> Listing:
        bucket, prefix = split_s3(location)
        if prefix and not prefix.endswith("/"):
            prefix += "/"  # "capture" must not also match "capture-old/"
        if window is not None and window.end is not None:
            parents = list(self._hour_parents(bucket, prefix, option, 0))
            if parents:
                keys = [
                    key
                    for parent in parents
                    for hour in window.hours()
                    for key in self._s3_keys(bucket, f"{parent}{hour:%Y/%m/%d/%H}/", option)
                    if key.endswith(suffix)
                ]
                return Listing(tuple(f"{S3_SCHEME}{bucket}/{key}" for key in sorted(keys)), 0)
        every = [key for key in self._s3_keys(bucket, prefix, option) if key.endswith(suffix)]
        if window is None:
            return Listing(tuple(f"{S3_SCHEME}{bucket}/{key}" for key in every), 0)
        kept = [key for key in every if window.covers(hour_of(key))]
        return Listing(tuple(f"{S3_SCHEME}{bucket}/{key}" for key in kept), len(every) - len(kept))

    def _hour_parents(self, bucket: str, prefix: str, option: str, depth: int) -> Iterator[str]:
        """Prefixes directly holding ``yyyy/`` folders, at most :data:`_MAX_LAYOUT_DEPTH` levels down."""
        children = self._s3_folders(bucket, prefix, option)
        if any(_YEAR.fullmatch(child[len(prefix) :].rstrip("/")) for child in children):
            yield prefix
        elif depth < _MAX_LAYOUT_DEPTH:
            for child in children:
                yield from self._hour_parents(bucket, child, option, depth + 1)

    def _s3_folders(self, bucket: str, prefix: str, option: str) -> list[str]:
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
            return sorted(p["Prefix"] for page in pages for p in page.get("CommonPrefixes", []))
        except _aws_errors() as exc:
            raise DriftInputError(f"{option} s3://{bucket}/{prefix}: cannot list it ({_describe(exc)})") from None

    def _s3_keys(self, bucket: str, prefix: str, option: str) -> list[str]:
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return sorted(o["Key"] for page in pages for o in page.get("Contents", []))
        except _aws_errors() as exc:
            raise DriftInputError(f"{option} s3://{bucket}/{prefix}: cannot list it ({_describe(exc)})") from None

    # --- writing ---------------------------------------------------------------------------------------------

    def write_text(self, location: str, text: str, option: str) -> None:
        """Write a report to a file or an S3 object (the bucket's default encryption applies)."""
        if is_s3(location):
            bucket, key = split_s3(location)
            try:
                self.s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/json")
            except _aws_errors() as exc:
                raise DriftOutputError(f"{option} {location}: cannot write it ({_describe(exc)})") from None
            return
        path = Path(location)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise DriftOutputError(f"{option} {location}: cannot write it ({exc.strerror})") from None


def _aws_errors() -> tuple[type[Exception], ...]:
    """botocore's client and transport errors (imported when one is being handled: boto3 is optional)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from urllib3.exceptions import HTTPError

    return (ClientError, BotoCoreError, HTTPError)


def _describe(exc: Exception) -> str:
    """A botocore ``ClientError``'s code and message, or the exception's own text."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"
