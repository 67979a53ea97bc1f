"""Least-privilege IAM statements of the streaming layer's roles, one function per statement.

Two roles use them: the delivery stream's (Firehose reads one Kinesis stream, reads one Glue table's schema, writes
two prefixes of the raw bucket, logs to its own log group) and each online-feature consumer's (Lambda's event source
mapping reads one stream, the function writes one feature group's records and sends to one failure queue).

KMS use is scoped by service where AWS documents the context it sends: Firehose decrypts the stream's records through
Kinesis (``kms:ViaService`` kinesis, encryption context ``aws:kinesis:arn`` = the stream, per "Permissions to use
user-generated KMS keys" of Kinesis Data Streams) and encrypts objects through S3 (``kms:ViaService`` s3). The lake's
buckets use S3 Bucket Keys, so S3's encryption context is the *bucket* ARN, not the object's: a condition on an
object prefix would never match.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from infra import iam

KINESIS_READ_ACTIONS: tuple[str, ...] = (
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
)
"""What Firehose and Lambda's event source mapping call on a source stream (Firehose guide "Grant Firehose access
to an Amazon S3 destination"; Lambda guide "Process Amazon Kinesis Data Streams records with Lambda").
``kinesis:SubscribeToShard`` is left out: it is for enhanced fan-out consumers, and its resource is a consumer,
which the platform does not register."""


def kinesis_read(sid: str, stream_arns: Sequence[pulumi.Input[str]]) -> iam.Statement:
    """Read the streams' shards and records (no writes, no stream changes)."""
    return iam.statement(sid, KINESIS_READ_ACTIONS, list(stream_arns))


def kms_decrypt_via_kinesis(
    sid: str, key_arn: pulumi.Input[str], region: str, stream_arn: pulumi.Input[str]
) -> iam.Statement:
    """Decrypt the records of one KMS-encrypted stream, only through Kinesis and only for that stream."""
    return iam.statement(
        sid,
        ["kms:Decrypt"],
        [key_arn],
        conditions={
            "StringEquals": {
                "kms:ViaService": f"kinesis.{region}.amazonaws.com",
                "kms:EncryptionContext:aws:kinesis:arn": stream_arn,
            }
        },
    )


def kms_s3_objects(sid: str, key_arn: pulumi.Input[str], region: str, bucket_arn: pulumi.Input[str]) -> iam.Statement:
    """Encrypt (and read back, for multipart uploads) objects of one SSE-KMS bucket, only through S3.

    The encryption context is the bucket's ARN: the lake's buckets use S3 Bucket Keys (see the module docstring).
    """
    return iam.statement(
        sid,
        ["kms:Decrypt", "kms:GenerateDataKey"],
        [key_arn],
        conditions={
            "StringEquals": {
                "kms:ViaService": f"s3.{region}.amazonaws.com",
                "kms:EncryptionContext:aws:s3:arn": bucket_arn,
            }
        },
    )


def s3_delivery(sid: str, bucket_arn: pulumi.Input[str], prefixes: Sequence[str]) -> list[iam.Statement]:
    """What Firehose needs to write objects under ``prefixes`` of one bucket: the bucket-level calls it makes
    (location, listing multipart uploads) and object writes under the prefixes only. No deletes, no reads of data."""
    objects = [pulumi.Output.concat(bucket_arn, "/", prefix, "*") for prefix in prefixes]
    return [
        iam.statement(
            f"{sid}Bucket", ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"], [bucket_arn]
        ),
        iam.statement(f"{sid}Objects", ["s3:AbortMultipartUpload", "s3:PutObject"], objects),
    ]


def glue_schema_read(
    sid: str, region: str, account_id: pulumi.Input[str], database: pulumi.Input[str], table: pulumi.Input[str]
) -> iam.Statement:
    """Read one table's schema for record format conversion (Firehose guide "Grant Firehose access to AWS Glue for
    data format conversion": GetTable, GetTableVersion, GetTableVersions). Glue authorises the catalog, the database
    and the table separately."""
    base = pulumi.Output.concat("arn:aws:glue:", region, ":", account_id)
    return iam.statement(
        sid,
        ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
        [
            pulumi.Output.concat(base, ":catalog"),
            pulumi.Output.concat(base, ":database/", database),
            pulumi.Output.concat(base, ":table/", database, "/", table),
        ],
    )


def logs_put(sid: str, log_group_arn: pulumi.Input[str]) -> iam.Statement:
    """Put events into the streams of one existing log group (Firehose creates neither groups nor streams)."""
    return iam.statement(sid, ["logs:PutLogEvents"], [pulumi.Output.concat(log_group_arn, ":log-stream:*")])


def feature_put(sid: str, feature_group_arns: Sequence[pulumi.Input[str]]) -> iam.Statement:
    """Write records into the feature groups (Feature Store runtime ``PutRecord``, authorised on the group's ARN)."""
    return iam.statement(sid, ["sagemaker:PutRecord"], list(feature_group_arns))


def kms_consumer(sid: str, key_arn: pulumi.Input[str]) -> iam.Statement:
    """The platform key, as the consumer uses it: decrypt the stream's records (Kinesis consumers need kms:Decrypt),
    the function's environment and the online store on PutRecord (OnlineStoreSecurityConfig: data-plane callers need
    kms:Decrypt), and encrypt what it sends to its KMS-encrypted failure queue (kms:GenerateDataKey)."""
    return iam.statement(sid, ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn])
