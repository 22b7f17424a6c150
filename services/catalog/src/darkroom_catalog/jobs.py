"""The job state machine: pure functions from (job state, event) to (new state, cataloged events).

A job is one upload of one image, kept in the ``jobs`` table under its
``image_id``. Its status moves only along these edges::

    (none) ──uploaded──▶ queued ──validated accepted / variant-requested / variant-done──▶ processing
    queued | processing ──validated rejected / variant-done failed──▶ failed
    processing ──every variant done (and the upload accepted)──▶ complete
    failed ──an event of a higher attempt (a retry)──▶ queued (then that event applies)
    any ──image-deleted──▶ (same status, ``deleted_at`` set; every later event is ignored)

``complete`` and ``failed`` never move otherwise, so late, duplicate and
replayed events cannot regress them. Decisions this module makes (not fixed
by the event schemas):

* **Duplicates**: an event whose ``event_id`` is among the job's last
  :data:`RECENT_EVENT_IDS` applied events is ignored.
* **Stale attempts**: an event whose ``attempt`` is lower than the job's
  ``attempts`` is ignored. An event with a *higher* attempt starts that attempt
  (variants and error reset; a failed job goes back to ``queued``). Not only
  ``uploaded`` may start it: the catalog consumes four topics whose relative
  order is not kept, so a retry's ``validated`` or ``variant-done`` can be
  consumed before its ``uploaded``, and dropping them would leave the retry
  queued for ever. A complete job never starts another attempt.
* **Unknown job**: an event for an image the catalog has no job for, whatever
  its type, creates the job from the ids it carries (status ``queued``) and is
  then applied to it, so a replay that starts mid-flow or a lost ``uploaded``
  still ends in a terminal state. Fields only ``uploaded`` carries (the file
  name, the original's key and size) are filled in when it arrives later, even
  on a terminal job (without changing its status), since a retry needs them.
* **Other job of the same image**: a later job (different ``job_id``, an
  event not older than the current job's ``created_at``) replaces the current
  one (a re-render); events of the jobs it replaced (the last
  :data:`SUPERSEDED_JOBS` ids) and of older jobs are ignored.
* **Completion** needs ``variant_count`` (from ``variant-requested``), that
  many variants ``done`` in the current attempt, and an accepted ``validated``
  of the current attempt: events of different topics may be consumed out of
  order, and the gallery needs the metadata ``validated`` carries.
* A ``done`` variant without object key, format, size or byte count cannot be
  shown; it counts as failed with reason ``variant_incomplete``.
* **Deletion**: ``image-deleted`` marks the job deleted (``deleted_at``) and
  nothing moves it afterwards; a delete for an image the catalog never saw
  leaves a deleted tombstone, so late events of that image stay ignored.
* Times are the events' ``occurred_at`` (no clock), so a replay rebuilds the
  same state and the same cataloged events, whose ``event_id`` is derived from
  (job, attempt, status) so a consumer can drop a re-sent one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from darkroom_schemas import (
    CatalogedV1,
    ImageDeletedV1,
    ImageMetadata,
    ProbeInfo,
    UploadedV1,
    ValidatedV1,
    VariantDoneV1,
    VariantRequestedV1,
    VariantSummary,
)

JobEvent = UploadedV1 | ValidatedV1 | VariantRequestedV1 | VariantDoneV1
"""The events that drive a job (the topics the catalog consumes)."""

JOB_EVENTS: tuple[type[JobEvent], ...] = (
    UploadedV1,
    ValidatedV1,
    VariantRequestedV1,
    VariantDoneV1,
)

CommandEvent = JobEvent | ImageDeletedV1
"""Every event the jobs agent applies: the job events and deletions."""

JobStatus = Literal["queued", "processing", "complete", "failed"]
TERMINAL: frozenset[str] = frozenset({"complete", "failed"})
RECENT_EVENT_IDS = 64
"""How many applied event ids a job remembers to drop exact duplicates."""
SUPERSEDED_JOBS = 16
"""How many replaced job ids of one image are remembered to drop their late events."""
THUMB_VARIANT = "thumb"
"""The variant whose ThumbHash and dominant colour become the image's placeholders."""

CATALOGED_NAMESPACE = uuid.UUID("6f1c0f0e-5d0b-4c55-9d8e-2a64f3c1d0a7")
"""uuid5 namespace of cataloged event ids: ``uuid5(ns, "<job_id>:<attempt>:<status>")``."""


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantState(_State):
    """What the catalog knows about one variant of a job. Sizes in px, bytes; time in ms."""

    spec_hash: str
    status: Literal["requested", "done", "failed"]
    attempt: int = Field(ge=1, description="The job attempt this state belongs to.")
    object_key: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    duration_ms: float | None = None
    thumbhash: str | None = None
    dominant_colour: str | None = None
    reason_code: str | None = None
    reason_message: str | None = None


class JobError(_State):
    """Why a job failed: a reason code (``snake_case``) and an optional message."""

    code: str
    message: str | None = None


class JobState(_State):
    """One job as the ``jobs`` table holds it (as :meth:`to_json`), keyed by ``image_id``.

    Times are UTC, taken from the events' ``occurred_at``. ``attempts`` is the
    highest ``attempt`` seen; ``variants`` maps variant names to their state in
    that attempt; ``variant_count`` is how many variants the job expects (from
    ``variant-requested``, ``None`` until one arrived).
    """

    job_id: str
    image_id: str
    gallery_id: str
    correlation_id: str
    filename: str | None = None
    status: JobStatus = "queued"
    attempts: int = Field(default=1, ge=1)
    error: JobError | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    variants: dict[str, VariantState] = Field(default_factory=dict)
    variant_count: int | None = None
    accepted: bool = Field(
        default=False, description="An accepted validated event of the current attempt was seen."
    )
    source_key: str | None = Field(
        default=None, description="The raster source rendered (the JPEG master for a RAW)."
    )
    original_key: str | None = None
    size_bytes: int | None = Field(default=None, description="The original's size (bytes).")
    content_type: str | None = None
    profile: str | None = Field(default=None, description="The profile the upload asked for.")
    deleted_at: datetime | None = Field(
        default=None, description="When the image was deleted; a deleted job never changes."
    )
    is_raw: bool = False
    derived_from: str | None = None
    metadata: ImageMetadata | None = None
    probe: ProbeInfo | None = None
    thumbhash: str | None = None
    dominant_colour: str | None = None
    duplicate_of: str | None = None
    provider_job_id: str | None = None
    recent_event_ids: list[str] = Field(default_factory=list)
    superseded_job_ids: list[str] = Field(default_factory=list)
    version: int = Field(
        default=0,
        ge=0,
        description=(
            "How many writes the jobs table took under this image_id (1 for the first). "
            "It travels in the changelog, so every worker that restores the row sees the "
            "same number: the SSE event id (see docs/failover.md)."
        ),
    )

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready dict stored in the ``jobs`` table."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobState:
        """Rebuild a job from :meth:`to_json` output.

        Raises:
            pydantic.ValidationError: ``data`` is not a stored job.
        """
        return cls.model_validate(data)

    @property
    def terminal(self) -> bool:
        """Whether the job is ``complete`` or ``failed``."""
        return self.status in TERMINAL

    def done_variants(self) -> dict[str, VariantState]:
        """Return the variants rendered in the current attempt, by name."""
        return {
            name: v
            for name, v in self.variants.items()
            if v.status == "done" and v.attempt == self.attempts
        }


def apply_deleted(job: JobState | None, event: ImageDeletedV1) -> JobState | None:
    """Mark the image's job deleted.

    Returns:
        The deleted job (a tombstone built from the event's ids when the
        catalog had none), or ``None`` when the job was already deleted or the
        event belongs to a job the current one replaced (idempotent).
    """
    if job is not None and (job.deleted_at is not None or event.job_id in job.superseded_job_ids):
        return None
    new = job.model_copy(deep=True) if job is not None else _new_job(event)
    new.deleted_at = event.occurred_at
    new.updated_at = max(new.updated_at, event.occurred_at)
    return new


def apply(job: JobState | None, event: JobEvent) -> tuple[JobState, list[CatalogedV1]]:
    """Apply one event to the job of its image.

    Args:
        job: the image's current job, or ``None`` if the catalog has none.
        event: an ``uploaded``, ``validated``, ``variant-requested`` or
            ``variant-done`` event of that image.

    Returns:
        ``(new_job, cataloged)``: ``new_job is job`` when the event was ignored
        (duplicate, stale, late or for a replaced job); ``cataloged`` holds one
        event exactly when the job just became ``complete`` or ``failed``.

    Raises:
        TypeError: ``event`` is not a job event.
    """
    if not isinstance(event, JOB_EVENTS):
        raise TypeError(f"{type(event).__name__} is not a job event")
    if job is not None and job.deleted_at is not None:
        return job, []
    if job is None:
        new = _new_job(event)
    elif event.job_id != job.job_id:
        if event.job_id in job.superseded_job_ids or event.occurred_at < job.created_at:
            return job, []
        new = _new_job(event)
        new.superseded_job_ids = [*job.superseded_job_ids, job.job_id][-SUPERSEDED_JOBS:]
    else:
        if str(event.event_id) in job.recent_event_ids or event.attempt < job.attempts:
            return job, []
        if job.terminal and not _is_retry(job, event):
            if isinstance(event, UploadedV1) and job.size_bytes is None:
                # A late uploaded still brings what a retry needs (key, name, size).
                filled = job.model_copy(deep=True)
                filled.recent_event_ids = [*filled.recent_event_ids, str(event.event_id)][
                    -RECENT_EVENT_IDS:
                ]
                _on_uploaded(filled, event)
                return filled, []
            return job, []
        new = job.model_copy(deep=True)
        if event.attempt > new.attempts:
            _start_attempt(new, event.attempt)
    new.recent_event_ids = [*new.recent_event_ids, str(event.event_id)][-RECENT_EVENT_IDS:]
    new.updated_at = max(new.updated_at, event.occurred_at)
    if isinstance(event, UploadedV1):
        _on_uploaded(new, event)
    elif isinstance(event, ValidatedV1):
        _on_validated(new, event)
    elif isinstance(event, VariantRequestedV1):
        _on_variant_requested(new, event)
    else:
        _on_variant_done(new, event)
    _maybe_complete(new, event)
    return new, ([cataloged_event(new)] if new.terminal else [])


STALLED = "stalled"
"""Reason code of a job the reconciler failed: processing, and no input left to apply."""


def apply_stalled(job: JobState, at: datetime, message: str) -> tuple[JobState, list[CatalogedV1]]:
    """Fail a ``processing`` job that can no longer finish (reason :data:`STALLED`).

    Args:
        job: the job, as the table holds it.
        at: when the reconciler gave up on it (its ``completed_at``).
        message: one sentence saying why.

    Returns:
        ``(new_job, [its cataloged])``; ``(job, [])`` unchanged when it is not
        ``processing`` or was deleted (idempotent: a second call changes nothing).
    """
    if job.status != "processing" or job.deleted_at is not None:
        return job, []
    new = job.model_copy(deep=True)
    _fail(new, STALLED, message, max(at, new.updated_at))
    new.updated_at = max(new.updated_at, at)
    return new, [cataloged_event(new)]


def cataloged_event(job: JobState) -> CatalogedV1:
    """Return the cataloged event of a terminal job.

    Its ``event_id`` is ``uuid5(CATALOGED_NAMESPACE, "<job_id>:<attempts>:<status>")``
    and its ``occurred_at`` the job's ``completed_at``, so re-sending it after a
    crash produces the same event.

    Raises:
        ValueError: the job is not terminal.
    """
    if not job.terminal or job.completed_at is None:
        raise ValueError(f"job {job.job_id} is {job.status}, not complete or failed")
    return CatalogedV1(
        event_id=uuid.uuid5(CATALOGED_NAMESPACE, f"{job.job_id}:{job.attempts}:{job.status}"),
        occurred_at=job.completed_at,
        job_id=job.job_id,
        gallery_id=job.gallery_id,
        image_id=job.image_id,
        correlation_id=job.correlation_id,
        status="complete" if job.status == "complete" else "failed",
        reason_code=job.error.code if job.error else None,
        reason_message=job.error.message if job.error else None,
        filename=job.filename,
        source_key=job.source_key,
        attempts=job.attempts,
        variants=summaries(job),
        metadata=job.metadata,
        thumbhash=job.thumbhash,
        dominant_colour=job.dominant_colour,
        duplicate_of=job.duplicate_of,
        completed_at=job.completed_at,
    )


def summaries(job: JobState) -> list[VariantSummary]:
    """Return the job's variants done in the current attempt, sorted by name."""
    return [
        VariantSummary(
            name=name,
            spec_hash=v.spec_hash,
            object_key=v.object_key,
            format=v.format,
            width=v.width,
            height=v.height,
            bytes=v.bytes,
        )
        for name, v in sorted(job.done_variants().items())
        if v.object_key and v.format and v.width and v.height and v.bytes is not None
    ]


def _new_job(event: CommandEvent) -> JobState:
    return JobState(
        job_id=event.job_id,
        image_id=event.image_id,
        gallery_id=event.gallery_id,
        correlation_id=event.correlation_id,
        attempts=getattr(event, "attempt", 1),
        created_at=event.occurred_at,
        updated_at=event.occurred_at,
    )


def _is_retry(job: JobState, event: JobEvent) -> bool:
    return job.status == "failed" and event.attempt > job.attempts


def _start_attempt(job: JobState, attempt: int) -> None:
    job.attempts = attempt
    job.variants = {}
    job.variant_count = None
    job.accepted = False
    job.error = None
    job.completed_at = None
    job.thumbhash = None
    job.dominant_colour = None
    job.duplicate_of = None
    if job.status == "failed":
        job.status = "queued"


def _start_processing(job: JobState) -> None:
    if job.status == "queued":
        job.status = "processing"


def _fail(job: JobState, code: str, message: str | None, at: datetime) -> None:
    job.status = "failed"
    job.error = JobError(code=code, message=message)
    job.completed_at = at


def _on_uploaded(job: JobState, event: UploadedV1) -> None:
    job.filename = event.filename
    job.original_key = event.object_key
    job.size_bytes = event.size_bytes
    job.content_type = event.content_type
    job.profile = event.profile
    job.created_at = min(job.created_at, event.occurred_at)


def _on_validated(job: JobState, event: ValidatedV1) -> None:
    if job.filename is None:
        job.filename = event.filename
    if event.derived_from:
        job.is_raw = True
        job.derived_from = event.derived_from
        job.original_key = job.original_key or event.derived_from
        job.source_key = job.source_key or event.object_key
    else:
        job.is_raw = job.is_raw or event.is_raw
        job.original_key = job.original_key or event.object_key
        if not event.is_raw:
            job.source_key = job.source_key or event.object_key
    # The original's EXIF is richer than the developed master's, so it wins.
    if event.metadata is not None and (job.metadata is None or not event.derived_from):
        job.metadata = event.metadata
    if event.probe is not None and (job.probe is None or not event.derived_from):
        job.probe = event.probe
    if event.provider_job_id:
        job.provider_job_id = event.provider_job_id
    if event.accepted:
        job.accepted = True
        _start_processing(job)
    else:
        job.duplicate_of = event.duplicate_of
        _fail(job, event.reason_code or "rejected", event.reason_message, event.occurred_at)


def _on_variant_requested(job: JobState, event: VariantRequestedV1) -> None:
    _start_processing(job)
    job.variant_count = event.variant_count
    job.source_key = event.source_key
    current = job.variants.get(event.variant)
    # variant-done may be consumed before its request (another topic): keep the outcome.
    if current is None or current.attempt != job.attempts or current.status == "requested":
        job.variants[event.variant] = VariantState(
            spec_hash=event.spec_hash, status="requested", attempt=job.attempts
        )


def _on_variant_done(job: JobState, event: VariantDoneV1) -> None:
    _start_processing(job)
    state = VariantState(
        spec_hash=event.spec_hash,
        status=event.status,
        attempt=job.attempts,
        object_key=event.object_key,
        format=event.format,
        width=event.width,
        height=event.height,
        bytes=event.bytes,
        duration_ms=event.duration_ms,
        thumbhash=event.thumbhash,
        dominant_colour=event.dominant_colour,
        reason_code=event.reason_code,
        reason_message=event.reason_message,
    )
    if state.status == "done" and not (
        state.object_key and state.format and state.width and state.height
    ):
        state.status = "failed"
        state.reason_code = "variant_incomplete"
        state.reason_message = "a done variant lacks its object key, format or size"
    elif state.status == "done" and state.bytes is None:
        state.status = "failed"
        state.reason_code = "variant_incomplete"
        state.reason_message = "a done variant lacks its byte count"
    job.variants[event.variant] = state
    if state.status == "failed":
        code = state.reason_code or "variant_failed"
        message = state.reason_message or f"variant {event.variant!r} failed"
        _fail(job, code, message, event.occurred_at)


def _maybe_complete(job: JobState, event: JobEvent) -> None:
    if job.status != "processing" or not job.accepted or job.variant_count is None:
        return
    done = job.done_variants()
    if len(done) < job.variant_count:
        return
    job.status = "complete"
    job.completed_at = event.occurred_at
    placeholder = done.get(THUMB_VARIANT) or min(
        done.values(), key=lambda v: (v.width or 0) * (v.height or 0)
    )
    job.thumbhash = placeholder.thumbhash
    job.dominant_colour = placeholder.dominant_colour
