"""The drift job's errors: what went wrong decides the command's exit status."""

from __future__ import annotations


class DriftError(Exception):
    """Base of the drift job's errors; the message is one line meant for the operator."""

    exit_status = 1


class DriftInputError(DriftError):
    """Unusable input: missing or empty reference, unknown feature spec, unreadable capture location,
    invalid option. The command exits with status 2."""

    exit_status = 2


class DriftOutputError(DriftError):
    """The analysis ran but its results could not be delivered (report not written, metrics not
    published). The command exits with status 1, so the scheduled run fails visibly."""

    exit_status = 1
