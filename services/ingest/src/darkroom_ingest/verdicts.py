"""Stored verdicts: a re-sent ``uploaded`` event is answered without reading its original.

An ``uploaded`` event can reach ingest more than once: redelivered after a worker
crashed between sending its ``validated`` and committing its offset, or sent again
by an operator. Validating it again downloads, hashes and probes the original, and
sends a ``validated`` event with a new ``event_id`` that the RAW developer and the
variants planner act on again. :class:`VerdictStore` keeps the last verdict of each
image in the ``ingest-verdicts`` table (image_id → the upload it answered and the
``validated`` event, JSON), so a re-sent event gets the *same* ``validated`` event
(same ``event_id``: the catalog drops it as a duplicate) and the store is not read.

**What counts as the same upload** (:meth:`VerdictStore.lookup`):

* the same ``event_id`` (a redelivery); or
* the same job attempt — ``job_id``, ``attempt``, ``object_key`` and ``size_bytes``
  all equal — unless the event comes from an S3 notification (the bridge uses the
  image id as the job id for every write of a key, so an overwritten object would
  look like the same attempt; only its own ``event_id`` matches).

A retry (``attempt`` + 1) and a new job of the image (another ``job_id``: a re-upload)
are validated again and replace the row.

**What is stored**: every verdict of :func:`~darkroom_ingest.validate.validate_upload`
except ``missing_original``, which states what the object store held at that moment
(an operator who restores the object and re-sends the event expects it read).
Rejections that depend on the gallery (``duplicate``, ``gallery_full``) are stored
too: a re-sent event gets the answer its job already got.

**Growth**: one row per image (the latest job attempt only), about 1-3 KiB (the
``validated`` event with its EXIF), removed when the image is deleted
(``image-deleted``); like the content hashes, the table is as large as the set of
images that were uploaded and not deleted. A redelivery of an *older* attempt after a
newer one replaced the row is validated again (correct, only not cheap).

**Partitioning**: rows are written and read only by the handler of the by-gallery
repartition topic (key gallery_id), so each row lives in the changelog partition of
its gallery, the partition of the events that read it, whatever its own key.
"""

from __future__ import annotations

import logging
from typing import Any

from darkroom_ingest.validate import MISSING_ORIGINAL
from darkroom_schemas import CatalogedV1, UploadedV1, ValidatedV1

log = logging.getLogger(__name__)

NOT_STORED = frozenset({MISSING_ORIGINAL})
"""Reason codes whose verdicts are not stored: they describe the store, not the upload."""

SAME_ATTEMPT_NOT_TRUSTED = frozenset({"s3-notification"})
"""Upload sources matched by ``event_id`` only (their job id is the image id)."""


def upload_identity(upload: UploadedV1) -> dict[str, Any]:
    """Return what the stored row remembers of ``upload`` to recognise it again (JSON-ready)."""
    return {
        "event_id": str(upload.event_id),
        "job_id": upload.job_id,
        "attempt": upload.attempt,
        "object_key": upload.object_key,
        "size_bytes": upload.size_bytes,
    }


def same_upload(stored: dict[str, Any], upload: UploadedV1) -> bool:
    """Whether ``upload`` is the upload ``stored`` (an :func:`upload_identity`) answered.

    See the module docstring for the rule.
    """
    if stored.get("event_id") == str(upload.event_id):
        return True
    if upload.source in SAME_ATTEMPT_NOT_TRUSTED:
        return False
    mine = upload_identity(upload)
    return all(stored.get(k) == mine[k] for k in ("job_id", "attempt", "object_key", "size_bytes"))


class VerdictStore:
    """The last verdict of each image, on the ``ingest-verdicts`` table.

    Args:
        table: image_id → ``{"upload": upload_identity, "verdict": ValidatedV1 JSON}``
            (a :class:`~darkroom_ingest.gate.StateTable`); ``None`` disables the store
            (every event is validated, as before the table existed).
    """

    def __init__(self, table: Any | None) -> None:
        self.table = table

    def lookup(self, upload: UploadedV1) -> ValidatedV1 | None:
        """Return the stored verdict when ``upload`` was already validated, else ``None``.

        A row that no longer parses (written by another release) counts as absent.
        """
        if self.table is None:
            return None
        row = self.table.get(upload.image_id)
        if not isinstance(row, dict) or not isinstance(row.get("upload"), dict):
            return None
        if not same_upload(row["upload"], upload):
            return None
        try:
            return ValidatedV1.model_validate(row["verdict"])
        except ValueError:
            log.warning("stored verdict unreadable; validating again")
            return None

    def remember(self, upload: UploadedV1, verdict: ValidatedV1) -> None:
        """Store ``verdict`` as the answer to ``upload`` (unless its reason is not stored)."""
        if self.table is None or verdict.reason_code in NOT_STORED:
            return
        self.table[upload.image_id] = {
            "upload": upload_identity(upload),
            "verdict": verdict.model_dump(mode="json"),
        }

    def cataloged(self, event: CatalogedV1) -> None:
        """Mark the stored upload's job attempt as ended, when ``event`` is its ``cataloged``.

        A later re-send of that upload then gets its verdict without taking a slot of
        the gallery's ``max_concurrent_jobs``: no ``cataloged`` would come to free it (the
        catalog drops the re-sent ``validated``, whose ``event_id`` it has seen).
        """
        if self.table is None:
            return
        row = self.table.get(event.image_id)
        if not isinstance(row, dict) or not isinstance(row.get("upload"), dict):
            return
        upload = row["upload"]
        if (upload.get("job_id"), upload.get("attempt")) == (event.job_id, event.attempts):
            self.table[event.image_id] = {**row, "cataloged": True}

    def was_cataloged(self, upload: UploadedV1) -> bool:
        """Whether ``upload``'s stored job attempt already ended (see :meth:`cataloged`)."""
        row = self.table.get(upload.image_id) if self.table is not None else None
        return isinstance(row, dict) and row.get("cataloged") is True

    def forget(self, image_id: str) -> None:
        """Remove the image's row (idempotent)."""
        if self.table is not None and self.table.get(image_id) is not None:
            del self.table[image_id]
