"""Lambda Kinesis events, now in :mod:`tools.kinesis_events` (the drill builds them too).

Re-exported here so tests and benchmarks keep importing ``tests.support.kinesis_events``.
"""

from tools.kinesis_events import (
    FIRST_SEQUENCE,
    REGION,
    ROLE_ARN,
    SHARD,
    STREAM_ARN,
    event_from_get_records,
    lambda_kinesis_record,
    sequence_numbers,
    synthetic_event,
)

__all__ = [
    "FIRST_SEQUENCE",
    "REGION",
    "ROLE_ARN",
    "SHARD",
    "STREAM_ARN",
    "event_from_get_records",
    "lambda_kinesis_record",
    "sequence_numbers",
    "synthetic_event",
]
