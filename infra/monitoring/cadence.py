"""How often a monitor runs: the period a schedule expression implies, for the checks that depend on it.

A monitor's time limit, its analysis window and its alarms' periods all follow from how often it runs, so
the settings need the period of a schedule expression, not only its syntax. :func:`period_seconds` reads the
regular expressions the monitors use and refuses the others with a message that lists what is allowed:

- ``rate(N minute|minutes|hour|hours|day|days)`` (EventBridge Scheduler; singular unit exactly when N is 1);
- ``cron(M * ? * * *)`` hourly, ``cron(M H ? * * *)`` daily and ``cron(M H/K ? * * *)`` (or ``*/K``) every K
  hours, K dividing 24 (so every run is K hours after the previous one, also across midnight).

Model Monitor accepts only the cron forms, with minute 0 (AWS docs, "The cron expression for monitoring
schedule": hourly ``cron(0 * ? * * *)``, daily ``cron(0 [00-23] ? * * *)``, every N hours
``cron(0 [00-23]/[01-24] ? * * *)``): ``model_monitor=True`` enforces that.
"""

from __future__ import annotations

import re

MINUTE = 60
HOUR = 3600
DAY = 86400

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$")
_UNITS = {"minute": MINUTE, "hour": HOUR, "day": DAY}

ALLOWED_FORMS = (
    "rate(N minutes|hours|days), cron(M * ? * * *) hourly, cron(M H ? * * *) daily or cron(M H/K ? * * *) "
    "every K hours (K dividing 24)"
)
MODEL_MONITOR_FORMS = "cron(0 * ? * * *) hourly, cron(0 H ? * * *) daily or cron(0 H/K ? * * *) every K hours"


class CadenceError(ValueError):
    """A schedule expression whose period cannot be told (or that the monitor does not accept)."""


def period_seconds(expression: str, *, model_monitor: bool = False) -> int:
    """Seconds between two runs of ``expression``.

    Raises :class:`CadenceError` naming the expression and the accepted forms when it is not one of the
    regular forms above (``model_monitor``: Model Monitor's cron forms only).
    """
    allowed = MODEL_MONITOR_FORMS if model_monitor else ALLOWED_FORMS
    rate = _RATE.match(expression)
    if rate is not None and not model_monitor:
        count, unit = int(rate.group(1)), rate.group(2)
        if count < 1 or (count == 1) != (not unit.endswith("s")):
            raise CadenceError(
                f"'{expression}': a rate takes a positive count, with a singular unit exactly when it is 1 "
                "(rate(1 hour), rate(2 hours))"
            )
        return count * _UNITS[unit.rstrip("s")]
    cron = _CRON.match(expression)
    if cron is None:
        raise CadenceError(f"'{expression}' has no regular period; allowed: {allowed}")
    minute, hour, day_of_month, month, day_of_week, year = cron.groups()
    minute_ok = minute == "0" if model_monitor else minute.isdigit() and int(minute) < 60
    days = (("?", "*"),) if model_monitor else (("?", "*"), ("*", "?"))  # EventBridge: one of them is '?'
    days_ok = (day_of_month, day_of_week) in days and month == "*" and year == "*"
    if not (minute_ok and days_ok):
        raise CadenceError(f"'{expression}' does not run at a fixed interval; allowed: {allowed}")
    if hour == "*":
        return HOUR
    if hour.isdigit() and int(hour) < 24:
        return DAY
    start, slash, step = hour.partition("/")
    if slash and (start == "*" or (start.isdigit() and int(start) < 24)) and step.isdigit():
        every = int(step)
        if 1 <= every <= 24 and 24 % every == 0:
            return every * HOUR
    raise CadenceError(f"'{expression}' does not run at a fixed interval; allowed: {allowed}")


def describe(seconds: int) -> str:
    """``3600`` → ``"1 hour"``, ``7200`` → ``"2 hours"``, ``900`` → ``"15 minutes"``: for messages."""
    for unit, size in (("day", DAY), ("hour", HOUR), ("minute", MINUTE)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"
