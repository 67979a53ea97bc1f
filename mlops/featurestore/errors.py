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
    """A batch holds invalid records; nothing was written. ``errors`` lists each one."""

    def __init__(self, errors: list[InvalidRecordError]) -> None:
        self.errors = errors
        listing = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"{len(errors)} invalid record(s), nothing written:\n{listing}")


class RecordNotFoundError(FeatureStoreError, LookupError):
    """The online store has no record for the identifier (never written, deleted or expired)."""

    def __init__(self, feature_group: str, record_id: str) -> None:
        self.feature_group = feature_group
        self.record_id = record_id
        super().__init__(f"feature group '{feature_group}' has no online record '{record_id}'")
