"""S3 "Object Created" events as the retraining responder receives them: EventBridge events (AWS's documented
shape, ``tests/functional/events/s3_object_created_eventbridge.json``) in the bodies of an SQS event source
mapping's batch (Lambda's documented SQS record)."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

EVENT = Path(__file__).resolve().parents[1] / "functional" / "events" / "s3_object_created_eventbridge.json"
BUCKET = "acme-mlops-dev-curated"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:acme-mlops-dev-new-data-customer-churn"


def object_created(key: str, at: datetime, *, bucket: str = BUCKET, sequencer: str = "") -> dict[str, Any]:
    """The EventBridge event S3 sends when ``key`` is created in ``bucket`` at ``at``."""
    event = copy.deepcopy(json.loads(EVENT.read_text()))
    digest = hashlib.sha256(f"{bucket}/{key}/{at.isoformat()}".encode()).hexdigest()
    event["id"] = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    event["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(key=key, sequencer=sequencer or digest[:18].upper())
    return event


def sqs_record(body: dict[str, Any] | str, *, message_id: str | None = None) -> dict[str, Any]:
    """Lambda's SQS record for a message whose body is ``body``."""
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "messageId": message_id or hashlib.sha256(text.encode()).hexdigest()[:32],
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1714618800000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1714618800001",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),  # what SQS computes
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "eu-west-1",
    }


def sqs_batch(*bodies: dict[str, Any] | str) -> dict[str, Any]:
    """An SQS event source mapping's batch of ``bodies``."""
    return {"Records": [sqs_record(body) for body in bodies]}
