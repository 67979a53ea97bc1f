"""Shared pieces of every settings section: the section base class and the constrained types several layers use.

Each layer declares its own settings section beside its component (``infra/<layer>/settings.py``, or at the
top of a small layer's module); :mod:`infra.config` composes them. What more than one section needs lives here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel


class Section(BaseModel):
    """Base of every config section: frozen, camelCase keys, unknown keys refused, no type coercion, finite numbers.

    ``allow_inf_nan=False``: no AWS API takes NaN or Infinity (JSON has neither), yet YAML's ``.nan``/``.inf`` and
    JSON's ``1e999`` would otherwise reach a traffic weight or an alarm threshold.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        strict=True,
        allow_inf_nan=False,
    )


class KeyedValueError(ValueError):
    """A problem at a key below the one being validated, with its value.

    A validator of a map (``hyperparameters``) or of the whole config (a table colliding with a feature group's)
    raises it so that the loader reports ``<key>.<path>: got <value>; <message>`` rather than the enclosing key.
    ``path`` is relative to the validated field, or to the stack's root for a whole-config check.
    """

    NO_VALUE: Any = object()

    def __init__(self, path: Sequence[str | int], message: str, value: Any = NO_VALUE) -> None:
        super().__init__(message)
        self.path = tuple(path)
        self.message = message
        self.value = value


Zone = Literal["raw", "curated", "features", "artifacts", "monitoring"]
ZONE_NAMES: tuple[Zone, ...] = ("raw", "curated", "features", "artifacts", "monitoring")
"""Data lake zones; every zone is one bucket."""

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


def _log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"{value} is not a CloudWatch Logs retention period; allowed: {list(LOG_RETENTION_DAYS)}")
    return value


LogRetentionDays = Annotated[int, AfterValidator(_log_retention)]
"""Days CloudWatch Logs keeps a log group's events: one of :data:`LOG_RETENTION_DAYS`."""

DOCUMENTATION_ACCOUNT_IDS = frozenset({"111122223333", "444455556666", "777788889999", "123456789012"})
"""The example account IDs AWS's documentation uses: no real account of yours, so KMS and SageMaker refuse a
policy that names one as a principal (``MalformedPolicyDocument``)."""


def _real_account(account: str) -> str:
    if account in DOCUMENTATION_ACCOUNT_IDS:
        raise ValueError(
            f"{account} is an example account ID from AWS's documentation, not a real account (KMS and SageMaker "
            "refuse policies naming it); use your own 12-digit account ID"
        )
    return account


def _real_account_in_arn(arn: str) -> str:
    _real_account(arn.split(":")[4])
    return arn


def _no_wildcard_principal(value: Any) -> Any:
    # IAM's Principal element takes "*" alone (everyone) and no wildcard inside an ARN; KMS refuses a key policy
    # with one ("MalformedPolicyDocumentException: Policy contains a statement with one or more invalid
    # principals"). Checked before the pattern so the message says why.
    if isinstance(value, str) and ("*" in value or "?" in value):
        raise ValueError(
            "a principal is one IAM role, user or account root by its full ARN: no wildcard ('*' or '?'), which a "
            "key policy refuses; e.g. arn:aws:iam::<account>:role/<name>"
        )
    return value


AccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$"), AfterValidator(_real_account)]
"""A real AWS account ID: 12 digits, and not one of :data:`DOCUMENTATION_ACCOUNT_IDS`."""
IamArn = Annotated[
    str,
    StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(root|role/.+|user/.+)$"),
    AfterValidator(_real_account_in_arn),
    BeforeValidator(_no_wildcard_principal),
]
"""An IAM principal ARN (root, role or user) of a real account, without wildcards."""
InstanceType = Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")]
KeyPrefix = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-/=.]+/$")]
"""An S3 key prefix ending with '/'."""

# --- schedules ---------------------------------------------------------------------------------------
# EventBridge's "Cron expressions reference" (the syntax Glue crawlers, EventBridge rules and Scheduler, and SageMaker
# monitoring schedules share): six fields; the values and wildcards of each below; "You can't use * in both the
# Day-of-month and Day-of-week fields. If you use it in one, you must use ? in the other"; '#' takes one expression.


_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...], str], ...] = (
    ("minutes", 0, 59, (), ",-*/"),
    ("hours", 0, 23, (), ",-*/"),
    ("day-of-month", 1, 31, (), ",-*?/LW"),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), ",-*/"),
    ("day-of-week", 1, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), ",-*?L#"),
    ("year", 1970, 2199, (), ",-*/"),
)
_CRON_FORM = "cron(minutes hours day-of-month month day-of-week year), e.g. cron(0 3 * * ? *)"


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    """A field's single value (a number, or a month/day name), or None when it is neither or out of range."""
    if text.upper() in names:
        return names.index(text.upper()) + 1
    if text.isascii() and text.isdigit() and len(text) <= 4 and low <= int(text) <= high:
        return int(text)
    return None


def _cron_item_problem(item: str, field: tuple[str, int, int, tuple[str, ...], str]) -> str | None:
    """Why one comma-separated item of a cron field is impossible (None when it is fine)."""
    name, low, high, names, wildcards = field
    allowed = f"{name} takes {low}-{high}{' or ' + names[0] + '-' + names[-1] if names else ''} with {wildcards}"
    if name == "day-of-month" and (item in ("L", "LW") or (item.endswith("W") and _cron_value(item[:-1], 1, 31, ()))):
        return None
    if name == "day-of-week":
        if item == "L" or (item.endswith("L") and _cron_value(item[:-1], low, high, names)):
            return None
        if "#" in item:
            day, _, nth = item.partition("#")
            if _cron_value(day, low, high, names) and nth in ("1", "2", "3", "4", "5"):
                return None
            return f"{name} item '{item}' is not <day>#<1-5>"
    base, slash, step = item.partition("/")
    if slash:
        if "/" not in wildcards:
            return f"{name} takes no '/' increments; {allowed}"
        if not (step.isascii() and step.isdigit() and len(step) <= 4 and 1 <= int(step) <= high):
            return f"{name} increment '/{step}' must be 1-{high}"
    if base == "*":
        return None
    first, dash, last = base.partition("-")
    if _cron_value(first, low, high, names) is None or (dash and _cron_value(last, low, high, names) is None):
        return f"{name} value '{item}' is impossible; {allowed}"
    return None


def cron_problem(value: str) -> str | None:
    """Why ``value`` is not a cron expression EventBridge accepts, or None (see the reference cited above)."""
    if not (value.startswith("cron(") and value.endswith(")")):
        return f"expected six fields separated by single spaces inside {_CRON_FORM}, nothing before or after"
    fields = value[len("cron(") : -1].split(" ")
    if len(fields) != len(_CRON_FIELDS) or not all(fields):
        return f"expected six fields separated by single spaces inside {_CRON_FORM}, nothing before or after"
    for text, field in zip(fields, _CRON_FIELDS, strict=True):
        name, _, _, _, wildcards = field
        if text == "?":
            if "?" not in wildcards:
                return f"{name} cannot be '?' (only day-of-month or day-of-week)"
            continue
        if "#" in text and "," in text:
            return f"{name} '{text}': '#' takes one expression (no list)"
        for item in text.split(","):
            problem = _cron_item_problem(item, field) if item else f"{name} has an empty list item"
            if problem:
                return problem
    if (fields[2] == "?") == (fields[4] == "?"):
        return (
            "one of day-of-month and day-of-week must be '?' and the other not "
            "(EventBridge cannot combine them), e.g. cron(0 3 * * ? *) or cron(0 3 ? * MON *)"
        )
    return None


def _cron_expression(value: str) -> str:
    problem = cron_problem(value)
    if problem:
        raise ValueError(f"{value!r} is not a cron expression AWS accepts: {problem}")
    return value


CronExpression = Annotated[str, AfterValidator(_cron_expression)]
"""An EventBridge/Glue/SageMaker schedule: ``cron(min hour day-of-month month day-of-week year)``, checked field by
field against EventBridge's cron reference."""

_RATE = re.compile(r"rate\(([1-9][0-9]*) (minute|minutes|hour|hours|day|days)\)")


def _schedule_expression(value: str) -> str:
    if value.startswith("rate("):
        rate = _RATE.fullmatch(value)
        # EventBridge Scheduler: "If the value is equal to 1, then the unit must be singular", plural otherwise.
        if rate is None or (rate.group(1) == "1") == rate.group(2).endswith("s"):
            raise ValueError(
                f"{value!r} is not a rate expression AWS accepts: rate(<positive integer> <unit>), the unit minute, "
                "hour or day when the value is 1 and minutes, hours or days otherwise, e.g. rate(1 hour), rate(2 hours)"
            )
        return value
    return _cron_expression(value)


ScheduleExpression = Annotated[str, AfterValidator(_schedule_expression)]
"""An EventBridge Scheduler expression: ``rate(N unit)`` or a :data:`CronExpression`."""


# --- free text AWS stores ------------------------------------------------------------------------------------
# Each service checks its description-like members against a length and a character class (botocore's API models
# carry both, and verify/aws_contract.py checks the plan against them): refusing them here names the stack key.


def _printable(allowed: Callable[[str], bool], rule: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        for position, char in enumerate(value):
            if not allowed(char):
                kind = "the control character" if unicodedata.category(char).startswith("C") else "the character"
                raise ValueError(f"contains {kind} {char!r} at position {position}; allowed: {rule}")
        return value

    return check


# SageMaker's EntityDescription: [\p{L}\p{M}\p{Z}\p{S}\p{N}\p{P}]* (letters, marks, separators, symbols, numbers,
# punctuation: no control or format characters, so no line breaks or tabs).
sagemaker_text = _printable(
    lambda c: unicodedata.category(c)[0] in "LMZSNP",
    "letters, digits, spaces, punctuation and symbols (no line breaks, tabs or control characters)",
)


def _glue_char(line_breaks: bool) -> Callable[[str], bool]:
    # Glue's DescriptionString [\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]* and CommentString (the
    # same without \r\n): printable Unicode outside the surrogate and non-character ranges.
    def allowed(c: str) -> bool:
        code = ord(c)
        if c == "\t" or (line_breaks and c in "\r\n"):
            return True
        return 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000

    return allowed


glue_description_text = _printable(_glue_char(True), "printable Unicode, tabs and line breaks")
glue_comment_text = _printable(_glue_char(False), "printable Unicode and tabs (no line breaks)")

__all__ = [
    "DOCUMENTATION_ACCOUNT_IDS",
    "LOG_RETENTION_DAYS",
    "ZONE_NAMES",
    "AccountId",
    "CronExpression",
    "IamArn",
    "InstanceType",
    "KeyPrefix",
    "KeyedValueError",
    "LogRetentionDays",
    "ScheduleExpression",
    "Section",
    "Zone",
    "cron_problem",
    "glue_comment_text",
    "glue_description_text",
    "sagemaker_text",
    "to_camel",
]
