"""The S3 bridge on notification JSON shaped as AWS sends it."""

from __future__ import annotations

import json

import pytest

from darkroom_ingest.s3_events import NotificationError, Skipped, uploaded_events
from darkroom_schemas import UploadedV1

S3_RECORD = {
    "eventVersion": "2.1",
    "eventSource": "aws:s3",
    "awsRegion": "eu-west-1",
    "eventTime": "2024-05-01T10:00:00.000Z",
    "eventName": "ObjectCreated:Put",
    "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
    "requestParameters": {"sourceIPAddress": "203.0.113.5"},
    "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
    "s3": {
        "s3SchemaVersion": "1.0",
        "configurationId": "darkroom-originals",
        "bucket": {"name": "photos", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                   "arn": "arn:aws:s3:::photos"},
        "object": {"key": "originals/trip-2024/img01/My+Photo%C3%A9.CR2", "size": 24117248,
                   "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"},
    },
}  # fmt: skip
S3_EVENT = {"Records": [S3_RECORD]}
EVENTBRIDGE = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "123456789012",
    "time": "2024-05-01T10:00:00Z",
    "region": "eu-west-1",
    "resources": ["arn:aws:s3:::photos"],
    "detail": {
        "version": "0",
        "bucket": {"name": "photos"},
        "object": {"key": "originals/g2/img02/a%20b.jpg", "size": 5, "etag": "b1946ac9",
                   "sequencer": "00617F08299329D189"},
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "reason": "PutObject",
    },
}  # fmt: skip
SNS_ENVELOPE = {
    "Type": "Notification",
    "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
    "TopicArn": "arn:aws:sns:eu-west-1:123456789012:photos",
    "Subject": "Amazon S3 Notification",
    "Message": json.dumps(S3_EVENT),
    "Timestamp": "2024-05-01T10:00:01.000Z",
    "SignatureVersion": "1",
}
SQS_BATCH = {
    "Records": [
        {"messageId": "m1", "receiptHandle": "r1", "body": json.dumps(S3_EVENT),
         "attributes": {"ApproximateReceiveCount": "1"}, "eventSource": "aws:sqs",
         "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:photos", "awsRegion": "eu-west-1"},
        {"messageId": "m2", "receiptHandle": "r2", "body": json.dumps(SNS_ENVELOPE),
         "eventSource": "aws:sqs"},
    ]
}  # fmt: skip


def test_an_s3_notification_becomes_an_uploaded_event_with_the_decoded_key():
    (event,) = uploaded_events(json.dumps(S3_EVENT))
    assert isinstance(event, UploadedV1)
    assert (event.gallery_id, event.image_id, event.job_id) == ("trip-2024", "img01", "img01")
    assert event.object_key == "originals/trip-2024/img01/My Photoé.CR2"
    assert (event.filename, event.size_bytes, event.source) == (
        "My Photoé.CR2",
        24117248,
        "s3-notification",
    )


def test_eventbridge_object_created():
    (event,) = uploaded_events(EVENTBRIDGE, profile="web")
    assert isinstance(event, UploadedV1)
    assert (event.object_key, event.size_bytes, event.profile) == (
        "originals/g2/img02/a b.jpg",
        5,
        "web",
    )


def test_sqs_batches_with_plain_and_sns_wrapped_bodies():
    events = uploaded_events(SQS_BATCH)
    assert [e.image_id for e in events if isinstance(e, UploadedV1)] == ["img01", "img01"]
    receive = {"Messages": [{"MessageId": "x", "Body": json.dumps(SNS_ENVELOPE)}]}
    assert [e.gallery_id for e in uploaded_events(receive)] == ["trip-2024"]


def test_a_custom_prefix_maps_other_layouts():
    doc = json.loads(json.dumps(S3_EVENT).replace("originals/", "incoming/"))
    (event,) = uploaded_events(doc, prefix="incoming/")
    assert isinstance(event, UploadedV1)
    assert event.object_key.startswith("incoming/trip-2024/img01/")


@pytest.mark.parametrize(
    ("key", "event_name", "reason"),
    [
        ("elsewhere/g/i/a.jpg", "ObjectCreated:Put", "outside_prefix"),
        ("originals/g/a.jpg", "ObjectCreated:Put", "unexpected_layout"),
        ("originals/g/i/sub/a.jpg", "ObjectCreated:CompleteMultipartUpload", "unexpected_layout"),
        ("originals/_g/i/a.jpg", "ObjectCreated:Copy", "invalid_id"),
        ("originals/g/i/a.jpg", "ObjectRemoved:Delete", "not_object_created"),
    ],
)
def test_records_that_are_not_uploads_are_skipped_with_a_reason(key, event_name, reason):
    record = {**S3_RECORD, "eventName": event_name,
              "s3": {**S3_RECORD["s3"], "object": {"key": key, "size": 1}}}  # fmt: skip
    (skipped,) = uploaded_events({"Records": [record]})
    assert isinstance(skipped, Skipped)
    assert skipped.reason == reason
    assert skipped.key == key


def test_test_events_and_other_eventbridge_types_are_skipped():
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "photos"}
    assert [s.reason for s in uploaded_events(test_event)] == ["test_event"]
    deleted = {**EVENTBRIDGE, "detail-type": "Object Deleted"}
    assert [s.reason for s in uploaded_events(deleted)] == ["not_object_created"]


@pytest.mark.parametrize(
    "document",
    ["not json", "[1]", '{"hello": 1}', '{"Records": [{"eventSource": "aws:dynamodb"}]}',
     '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}'],
)  # fmt: skip
def test_unknown_documents_are_refused(document):
    with pytest.raises(NotificationError):
        uploaded_events(document)
