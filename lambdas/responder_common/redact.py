"""Keeping secrets out of logs: a registry of secret values and a logging filter that masks them.

The first line of defence is that no code puts a secret into a message (the token is validated before use and
errors name the secret, never its value). This is the second: whatever record a responder's logger or the
runtime's root handlers emit (message, arguments, extra fields, the exception chain) has every registered
secret replaced by ``***``. botocore's own DEBUG records print response bodies (GetSecretValue's too, before the
caller can register the value), so :func:`install` also keeps botocore's loggers at INFO or above.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any

MASK = "***"
MIN_SECRET_LENGTH = 8  # shorter fragments (a "#" or a word of a comment line) would mask ordinary text
MIN_TOKEN_PIECE_LENGTH = 20
"""Shortest whitespace-separated piece of a secret registered on its own: GitHub tokens are 40+ characters."""
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Remember ``value`` (each of its lines, and each credential-sized whitespace-separated piece) as a secret.

    Words of a pasted comment line ("rotated 2024-05-01 by the platform team") are not secrets: registering them
    would mask every date and every "platform" in later log records. A token is one long unbroken piece.
    """
    words = [w for w in value.split() if len(w) >= MIN_TOKEN_PIECE_LENGTH]
    pieces = {value, value.strip(), *value.splitlines(), *words}
    with _lock:
        _secrets.update(p for p in pieces if len(p) >= MIN_SECRET_LENGTH)


def _known() -> list[str]:
    with _lock:
        return sorted(_secrets, key=len, reverse=True)  # longest first: a piece never splits a whole secret


def contains_secret(text: str) -> bool:
    """Whether ``text`` holds a registered secret."""
    return any(secret in text for secret in _known())


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _known():
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_value(value: Any) -> Any:
    """``value`` with secrets masked inside strings, bytes, and nested lists, tuples and dicts."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace")) if contains_secret(value.decode("utf-8", "replace")) else value
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


class SecretInLogError(Exception):
    """Replaces an exception whose text held a secret, in a log record only; its message is the masked text."""


_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Masks registered secrets in a record's message, arguments, extra fields and exception (always passes it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _known():
            return True
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            record.args = redact_value(record.args)
        for name, value in list(record.__dict__.items()):
            if name not in _RECORD_FIELDS:
                record.__dict__[name] = redact_value(value)
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(record.exc_info[1]))
            if contains_secret(text):
                masked = SecretInLogError(redact(text))
                record.exc_info = (SecretInLogError, masked, None)
                record.exc_text = None
        if isinstance(record.exc_text, str):
            record.exc_text = redact(record.exc_text)
        return True


FILTER = RedactingFilter()


def install(logger: Any) -> None:
    """Mask secrets in ``logger``'s records and in everything the root logger's handlers emit (the runtime's);
    keep botocore from logging response bodies. Safe to call more than once."""
    for target in (logger, *logging.getLogger().handlers):
        target.addFilter(FILTER)  # logging adds a filter once however often it is given
    botocore = logging.getLogger("botocore")
    if botocore.level < logging.INFO:  # NOTSET too: a root level lowered later must not reach botocore's DEBUG
        botocore.setLevel(logging.INFO)
