"""Lambda Kinesis events as the event source mapping builds them (Lambda developer guide, "Using Lambda with
Kinesis Data Streams", example event), from records read back with ``GetRecords`` or made up for a test.

A record: ``kinesis`` {``kinesisSchemaVersion`` "1.0", ``partitionKey``, ``sequenceNumber`` (decimal string),
``data`` (base64), ``approximateArrivalTimestamp`` (epoch seconds, float)}, ``eventSource`` "aws:kinesis",
``eventVersion`` "1.0", ``eventID`` ``<shard id>:<sequence number>``, ``eventName`` "aws:kinesis:record",
``invokeIdentityArn`` (the function's execution role), ``awsRegion``, ``eventSourceARN`` (the stream's ARN).
A KMS-encrypted stream's records also carry ``encryptionType: "KMS"``. One event holds records of one shard,
in sequence order.

Used by the feedback-loop drill (:mod:`tools.drill`, records read back from LocalStack's Kinesis) and the tests
(``tests/support/kinesis_events.py`` re-exports it).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

REGION = "eu-west-1"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:123456789012:stream/acme-dev-customer-activity"
ROLE_ARN = "arn:aws:iam::123456789012:role/acme-dev-update-online-features"
SHARD = "shardId-000000000000"
FIRST_SEQUENCE = 49590338271490256608559692538361571095921575989136588898


def lambda_kinesis_record(
    *,
    data: bytes | str,
    sequence_number: str,
    partition_key: str,
    arrival: float,
    stream_arn: str = STREAM_ARN,
    shard_id: str = SHARD,
    region: str = REGION,
    role_arn: str = ROLE_ARN,
    encrypted: bool = False,
) -> dict[str, Any]:
    """One record of a Lambda Kinesis event; ``data`` as bytes is base64-encoded, a ``str`` is used as given
    (to build a record Kinesis could never deliver, for a negative test)."""
    kinesis: dict[str, Any] = {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": partition_key,
        "sequenceNumber": sequence_number,
        "data": base64.b64encode(data).decode("ascii") if isinstance(data, bytes) else data,
        "approximateArrivalTimestamp": arrival,
    }
    if encrypted:
        kinesis["encryptionType"] = "KMS"
    return {
        "kinesis": kinesis,
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def event_from_get_records(
    records: Iterable[Mapping[str, Any]],
    *,
    stream_arn: str,
    shard_id: str,
    region: str = REGION,
    role_arn: str = ROLE_ARN,
) -> dict[str, Any]:
    """The Lambda event for records as boto3's ``GetRecords`` returns them (``Data`` bytes, ``SequenceNumber``,
    ``PartitionKey``, ``ApproximateArrivalTimestamp`` datetime, ``EncryptionType`` on an encrypted stream)."""
    out = []
    for record in records:
        arrival = record["ApproximateArrivalTimestamp"]
        out.append(
            lambda_kinesis_record(
                data=bytes(record["Data"]),
                sequence_number=str(record["SequenceNumber"]),
                partition_key=str(record["PartitionKey"]),
                arrival=round(arrival.timestamp(), 3) if isinstance(arrival, datetime) else float(arrival),
                stream_arn=stream_arn,
                shard_id=shard_id,
                region=region,
                role_arn=role_arn,
                encrypted=record.get("EncryptionType") == "KMS",
            )
        )
    return {"Records": out}


def synthetic_event(
    payloads: Iterable[Mapping[str, Any] | bytes | str],
    *,
    first_sequence: int = FIRST_SEQUENCE,
    arrival: float = 1714564800.0,
    partition_key_field: str = "customer_id",
) -> dict[str, Any]:
    """A Lambda Kinesis event of one shard: rows (JSON-encoded), raw bytes, or a ``str`` placed in ``data``
    as is; sequence numbers increase from ``first_sequence`` by 10 (Kinesis's are increasing, not consecutive)."""
    records = []
    for position, payload in enumerate(payloads):
        if isinstance(payload, Mapping):
            data: bytes | str = json.dumps(payload).encode()
            key = str(payload.get(partition_key_field, "none"))
        else:
            data, key = payload, "raw"
        records.append(
            lambda_kinesis_record(
                data=data,
                sequence_number=str(first_sequence + 10 * position),
                partition_key=key,
                arrival=arrival + position / 1000,
            )
        )
    return {"Records": records}


def sequence_numbers(event: Mapping[str, Any]) -> list[str]:
    """The sequence numbers of an event's records, in order."""
    return [record["kinesis"]["sequenceNumber"] for record in event["Records"]]
