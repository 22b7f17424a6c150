"""The S3 bridge: S3 ObjectCreated notifications in, ``uploaded`` events out.

For buckets that photographers (or another system) write to directly. Accepted
shapes, each possibly batched:

* an **S3 event notification** (``{"Records": [{"eventSource": "aws:s3",
  "eventName": "ObjectCreated:Put", "s3": {...}}]}``), as S3 sends it to SQS,
  SNS or Lambda;
* an **SQS** message or receive batch whose ``body`` is such a notification
  (``{"Records": [{"eventSource": "aws:sqs", "body": "…"}]}``, or
  ``{"Messages": [{"Body": "…"}]}`` from ``ReceiveMessage``), including the
  **SNS-wrapped** variant (``body`` = ``{"Type": "Notification", "Message": "…"}``);
* an **EventBridge** event (``"detail-type": "Object Created"``,
  ``"source": "aws.s3"``);
* a JSON list of any of these.

Keys map to images by the layout Darkroom itself uses,
``<prefix><gallery_id>/<image_id>/<filename>`` with prefix ``originals/``
(configurable): the object is already where ingest expects it, so nothing is
copied. Other keys, test events (``s3:TestEvent``), non-create events and ids
that are not valid identifiers are *skipped* with a reason. Keys arrive
URL-encoded (``+`` for a space) in S3 notifications and are decoded as S3
documents ("Event message structure": "the object key name value is URL
encoded"); EventBridge keys are decoded the same way.

Sources: AWS S3 User Guide, "Event message structure" and "Using EventBridge";
AWS SQS/SNS message formats.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from pydantic import ValidationError

from darkroom_common.uploads import uploaded_event
from darkroom_schemas import UploadedV1

DEFAULT_PREFIX = "originals/"


class NotificationError(ValueError):
    """The document is not JSON or not a notification shape the bridge knows."""


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    """One object-created record: ``bucket``, decoded ``key``, ``size`` in bytes (if given)."""

    bucket: str
    key: str
    size: int | None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record that yields no event: the ``key`` (if any), a ``reason`` code and a sentence."""

    key: str | None
    reason: str
    message: str


def _loads(value: Any) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise NotificationError(f"not JSON: {exc.msg}") from exc
    return value


def records(document: Any) -> Iterator[ObjectCreated | Skipped]:
    """Yield every S3 record of ``document`` (JSON text or parsed), unwrapping SQS/SNS/EventBridge.

    Raises:
        NotificationError: not JSON, or a shape the bridge does not know.
    """
    doc = _loads(document)
    if isinstance(doc, list):
        for item in doc:
            yield from records(item)
        return
    if not isinstance(doc, dict):
        raise NotificationError(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("Event") == "s3:TestEvent":
        yield Skipped(None, "test_event", "S3 test event.")
    elif doc.get("Type") == "Notification" and "Message" in doc:  # SNS envelope
        yield from records(doc["Message"])
    elif "detail-type" in doc:  # EventBridge
        if doc.get("detail-type") != "Object Created":
            yield Skipped(None, "not_object_created", f"EventBridge {doc['detail-type']!r} event.")
            return
        detail = doc.get("detail") or {}
        obj = detail.get("object") or {}
        if "key" not in obj:
            raise NotificationError(
                "an EventBridge 'Object Created' event without detail.object.key"
            )
        yield ObjectCreated(
            str((detail.get("bucket") or {}).get("name", "")),
            unquote_plus(str(obj["key"])),
            _int(obj.get("size")),
        )
    elif "Messages" in doc:  # SQS ReceiveMessage response
        for message in doc["Messages"] or []:
            yield from records(message.get("Body", "{}"))
    elif "Records" in doc:
        for record in doc["Records"] or []:
            yield from _record(record)
    else:
        raise NotificationError(
            "not an S3, SQS, SNS or EventBridge notification (no Records, Message or detail-type)"
        )


def _record(record: Any) -> Iterator[ObjectCreated | Skipped]:
    if not isinstance(record, dict):
        raise NotificationError("a record is not a JSON object")
    source = record.get("eventSource") or record.get("EventSource")
    if source == "aws:sqs":
        yield from records(record.get("body", "{}"))
    elif source == "aws:sns":
        yield from records((record.get("Sns") or {}).get("Message", "{}"))
    elif source == "aws:s3" or "s3" in record:
        name = str(record.get("eventName", ""))
        s3 = record.get("s3") or {}
        obj = s3.get("object") or {}
        key = unquote_plus(str(obj["key"])) if "key" in obj else None
        if not name.startswith("ObjectCreated:"):
            yield Skipped(key, "not_object_created", f"S3 event {name or '(unnamed)'!r}.")
        elif key is None:
            raise NotificationError("an S3 record without s3.object.key")
        else:
            bucket = str((s3.get("bucket") or {}).get("name", ""))
            yield ObjectCreated(bucket, key, _int(obj.get("size")))
    else:
        raise NotificationError(f"a record from an unknown source {source!r}")


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def to_uploaded(
    created: ObjectCreated, *, prefix: str = DEFAULT_PREFIX, profile: str | None = None
) -> UploadedV1 | Skipped:
    """Map one created object to its ``uploaded`` event, or say why it is skipped.

    The key must be ``<prefix><gallery_id>/<image_id>/<filename>``; the image id
    is also the job id. An object without a size in the notification gets size 0
    (ingest measures the bytes itself).
    """
    if not created.key.startswith(prefix):
        return Skipped(created.key, "outside_prefix", f"The key is not under {prefix!r}.")
    parts = created.key[len(prefix) :].split("/")
    if len(parts) != 3 or not all(parts):
        return Skipped(
            created.key,
            "unexpected_layout",
            f"The key is not {prefix}<gallery_id>/<image_id>/<filename>.",
        )
    gallery_id, image_id, filename = parts
    try:
        return uploaded_event(
            gallery_id=gallery_id,
            image_id=image_id,
            object_key=created.key,
            filename=filename,
            size_bytes=created.size or 0,
            profile=profile,
            source="s3-notification",
        )
    except ValidationError:
        return Skipped(
            created.key, "invalid_id", "The gallery or image id in the key is not a valid id."
        )


def uploaded_events(
    document: Any, *, prefix: str = DEFAULT_PREFIX, profile: str | None = None
) -> list[UploadedV1 | Skipped]:
    """Return the ``uploaded`` event (or skip) of every record in a notification document.

    Raises:
        NotificationError: see :func:`records`.
    """
    return [
        to_uploaded(r, prefix=prefix, profile=profile) if isinstance(r, ObjectCreated) else r
        for r in records(document)
    ]
