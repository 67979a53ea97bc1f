"""Publishing a short human-readable notification to the alerts topic (the adapter around SNS ``Publish``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from responder_common.errors import UpstreamError

# SNS refuses subjects that are longer than 100 characters, contain line breaks or non-ASCII characters.
SUBJECT_LIMIT = 100


def sns_subject(text: str) -> str:
    """``text`` made into a valid SNS subject: ASCII, one line, at most 100 characters."""
    one_line = " ".join(text.split())
    ascii_only = one_line.encode("ascii", "replace").decode("ascii")
    if len(ascii_only) <= SUBJECT_LIMIT:
        return ascii_only
    return ascii_only[: SUBJECT_LIMIT - 3] + "..."


@dataclass(frozen=True)
class Notification:
    """What a responder tells humans: a subject line and a plain-text body."""

    subject: str
    body: str


@dataclass(frozen=True)
class Notifier:
    """Publishes notifications to one SNS topic with the client it is given."""

    sns: Any
    topic_arn: str

    def publish(self, notification: Notification) -> str:
        """Publish and return the SNS message id; :class:`UpstreamError` when SNS refuses or cannot be reached
        (after botocore's retries)."""
        try:
            response = self.sns.publish(
                TopicArn=self.topic_arn, Subject=sns_subject(notification.subject), Message=notification.body
            )
        except (ClientError, BotoCoreError) as error:
            code = aws_error_code(error)
            raise UpstreamError(f"SNS Publish to {self.topic_arn} failed: {code}", code=code) from error
        return str(response["MessageId"])


def aws_error_code(error: ClientError | BotoCoreError) -> str:
    """The error code of a ``ClientError`` (``ThrottlingException``...) or the name of a botocore exception
    (``EndpointConnectionError``, ``ReadTimeoutError``...)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "")) or "ClientError"
    return type(error).__name__
