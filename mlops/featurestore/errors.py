"""The Feature Store runtime's errors."""

from __future__ import annotations


class FeatureStoreError(Exception):
    """Base of every Feature Store runtime error."""


class InvalidRecordError(FeatureStoreError, ValueError):
    """One record does not match its feature spec. ``record`` is its identifier (or ``#<index>``)."""

    def __init__(self, record: str, field: str, problem: str) -> None:
        self.record = record
        self.field = field
        self.problem = problem
        super().__init__(f"record {record}: field '{field}': {problem}")


class InvalidRecordsError(FeatureStoreError, ValueError):
    """A batch holds invalid records and was refused.

    ``errors`` lists the first of them (at most the caller's limit), ``count`` says how many there
    are, and ``written`` how many records before them were written (0 for an in-memory batch, which
    is validated whole first; a stream is refused at the first chunk holding an invalid record).
    """

    def __init__(self, errors: list[InvalidRecordError], *, count: int | None = None, written: int = 0) -> None:
        self.errors = errors
        self.count = len(errors) if count is None else count
        self.written = written
        listing = "\n".join(f"  - {e}" for e in errors)
        more = f"\n  ... and {self.count - len(errors)} more" if self.count > len(errors) else ""
        outcome = (
            "nothing written"
            if written == 0
            else f"nothing of their chunk or after it written; {written} record(s) of earlier chunks were written"
        )
        super().__init__(f"{self.count} invalid record(s), {outcome}:\n{listing}{more}")


class RecordNotFoundError(FeatureStoreError, LookupError):
    """The online store has no record for the identifier (never written, deleted or expired)."""

    def __init__(self, feature_group: str, record_id: str) -> None:
        self.feature_group = feature_group
        self.record_id = record_id
        super().__init__(f"feature group '{feature_group}' has no online record '{record_id}'")
